package session

import (
	"fmt"
	"net"
	"time"
)

// Application close codes share the CLOSE frame's Error Code with the session's own: codes below
// CodeApplication are the session's (the Code* constants), and application code n travels as
// CodeApplication+n (header/README.md §9.9). So a peer learns whether the application or the
// protocol ended the connection, as QUIC's two CONNECTION_CLOSE frame types tell it
// (RFC 9000 §19.19), without a frame type of our own.
const MaxApplicationCode = 1<<62 - 1 - CodeApplication // the largest varint minus the offset

// ApplicationError is the terminal error of a connection the application closed with a code and
// reason of its own: CloseApplication on this side (Remote == false) or on the peer's. It
// unwraps to net.ErrClosed, like every error that ends a connection.
type ApplicationError struct {
	Remote bool   // the peer's application closed the connection
	Code   uint64 // the application's code, 0..MaxApplicationCode
	Reason string
}

func (e *ApplicationError) Error() string {
	who := "this side"
	if e.Remote {
		who = "the peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("tlsgram: %s closed the connection with application code %d", who, e.Code)
	}
	return fmt.Sprintf("tlsgram: %s closed the connection with application code %d: %s", who, e.Code, e.Reason)
}

func (e *ApplicationError) Unwrap() error { return net.ErrClosed }

// CloseApplication is Close with an application's code (at most MaxApplicationCode; larger
// codes are clamped) and reason: the peer's terminal error becomes an *ApplicationError
// carrying them.
func (c *Conn) CloseApplication(now time.Time, code uint64, reason string) {
	if c.state != stateOpen {
		return
	}
	code = min(code, MaxApplicationCode)
	c.setErr(&ApplicationError{Code: code, Reason: reason})
	c.enterClosing(now, CodeApplication+code, reason)
}

// peerCloseError is the terminal error for a CLOSE frame received with code and reason.
func peerCloseError(code uint64, reason string) error {
	if code >= CodeApplication {
		return &ApplicationError{Remote: true, Code: code - CodeApplication, Reason: reason}
	}
	return &CloseError{Remote: true, Code: code, Reason: reason}
}

// codeNames says in words what the session's close codes mean, for error messages.
var codeNames = map[uint64]string{
	CodeNoError:           "no error",
	CodeInternal:          "internal error",
	CodeProtocolViolation: "protocol violation",
	CodeFlowControl:       "flow-control violation",
	CodeFinalSize:         "inconsistent end of stream",
	CodeHandshakeTimeout:  "handshake timeout",
	CodeIdleTimeout:       "idle timeout",
	CodeTLS:               "TLS failure",
}
