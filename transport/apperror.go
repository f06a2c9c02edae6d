package transport

import (
	"fmt"
	"net"

	"github.com/tlsgram/tlsgram/session"
)

// ApplicationError is the error a connection ends with when an application closed it with
// CloseWithError: the peer's Read, Write and Err return it (Remote == true) once the data sent
// before it has been read, and so do this side's Err (Remote == false). Match it with
// errors.As; like every error that ends a connection it also matches net.ErrClosed.
type ApplicationError = session.ApplicationError

// MaxApplicationCode is the largest code CloseWithError accepts.
const MaxApplicationCode = session.MaxApplicationCode

// CloseWithError closes the connection with an application's code and reason, which the peer
// receives as an *ApplicationError (Read returns it after the data that arrived before it). Like
// Close it first waits, at most Config.CloseTimeout, until the peer has acknowledged what was
// written, and reports ErrNotAcknowledged if it did not; unlike Close it sends no TLS
// close_notify, so the peer's Read does not return io.EOF. The reason is cut to what fits in one
// datagram. A code above MaxApplicationCode is an error, and the connection stays open.
func (c *Conn) CloseWithError(code uint64, reason string) error {
	if code > MaxApplicationCode {
		return c.opError("close", fmt.Errorf("tlsgram: application code %d above the maximum %d", code, uint64(MaxApplicationCode)))
	}
	if isClosedChan(c.closing) {
		return c.opError("close", net.ErrClosed)
	}
	return c.close(&session.ApplicationError{Code: code, Reason: reason})
}
