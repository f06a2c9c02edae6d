package session

import (
	"errors"
	"fmt"
	"net"
)

// Close codes carried in CLOSE frames. 0 is a graceful close; the others say why a connection was
// torn down. Applications see them through *CloseError.
const (
	CodeNoError           uint64 = 0x0
	CodeInternal          uint64 = 0x1
	CodeProtocolViolation uint64 = 0x2
	CodeFlowControl       uint64 = 0x3
	CodeFinalSize         uint64 = 0x4
	CodeHandshakeTimeout  uint64 = 0x5
	CodeIdleTimeout       uint64 = 0x6
	CodeTLS               uint64 = 0x7 // the TLS handshake or record layer failed; the reason says why
	CodeRefused           uint64 = 0x8 // the server takes no new connection (listener closed, accept queue full)
	CodeApplication       uint64 = 0x100
)

// CloseError is the terminal error of a connection closed by a CLOSE frame, sent or received.
// It unwraps to net.ErrClosed, so callers can test errors.Is(err, net.ErrClosed).
type CloseError struct {
	Remote bool   // the peer sent the CLOSE frame
	Code   uint64 // one of the Code* constants, or an application code
	Reason string
}

func (e *CloseError) Error() string {
	who := "this side"
	if e.Remote {
		who = "the peer"
	}
	what, ok := codeNames[e.Code]
	if !ok {
		what = "unknown error"
	}
	if e.Code == CodeNoError && e.Reason == "" {
		return fmt.Sprintf("tlsgram: %s closed the connection", who)
	}
	if e.Reason != "" {
		what += ": " + e.Reason
	}
	return fmt.Sprintf("tlsgram: %s closed the connection: %s (code 0x%x)", who, what, e.Code)
}

func (e *CloseError) Unwrap() error { return net.ErrClosed }

// TimeoutError is the terminal error of a connection that timed out (idle or handshake). It is a
// net.Error with Timeout() == true and unwraps to net.ErrClosed.
type TimeoutError struct{ Handshake bool }

func (e *TimeoutError) Error() string {
	if e.Handshake {
		return "tlsgram: handshake timeout"
	}
	return "tlsgram: idle timeout: no datagram from the peer"
}
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return false }
func (e *TimeoutError) Unwrap() error   { return net.ErrClosed }

// ResetError is the terminal error of a connection that the peer ended with a stateless reset
// (RFC 9000 §10.3): it had no state for the connection, typically because it restarted. It
// unwraps to net.ErrClosed.
type ResetError struct{}

func (*ResetError) Error() string {
	return "tlsgram: connection reset by peer: it has no state for this connection (stateless reset; did the server restart?)"
}
func (*ResetError) Unwrap() error { return net.ErrClosed }

// ErrWriteClosed is returned by Write after CloseWrite.
var ErrWriteClosed = errors.New("tlsgram: write after CloseWrite")
