package transport

import (
	"errors"
	"net"
	"os"
)

// timeoutError is returned when a deadline passes. Like the standard library's
// os.ErrDeadlineExceeded it is a net.Error with Timeout() == true. Temporary() is true as well,
// and that matters: crypto/tls makes every error from the underlying connection's Read permanent
// unless it is a net.Error with Temporary() == true, so only this answer lets a tls.Conn whose
// Read deadline passed stay usable (nettest's FutureTimeout case).
type timeoutError struct{}

func (timeoutError) Error() string   { return "tlsgram: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Unwrap lets errors.Is(err, os.ErrDeadlineExceeded) hold, as it does for the standard
// library's net.Conn deadlines: code written against those keeps working.
func (timeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

var errTimeout net.Error = timeoutError{}

// Sentinel errors that callers can branch on with errors.Is.
var (
	// ErrNotAcknowledged is returned by Conn.Close when data written to the connection may not
	// have reached the peer: the peer did not acknowledge it within Config.CloseTimeout, or the
	// connection failed first.
	ErrNotAcknowledged = errors.New("tlsgram: close: peer did not acknowledge all written data")
)

// opError wraps err like the standard library's net package does, so callers see the operation
// and addresses. A nil err stays nil.
func (c *Conn) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
