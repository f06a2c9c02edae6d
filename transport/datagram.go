package transport

import (
	"context"
	"net"

	"github.com/tlsgram/tlsgram/session"
)

// Unreliable datagrams beside the stream: see session/datagram.go for the rules.

// ErrDatagramTooLarge and ErrDatagramNotReady are what SendDatagram's errors unwrap to.
var (
	ErrDatagramTooLarge = session.ErrDatagramTooLarge
	ErrDatagramNotReady = session.ErrDatagramNotReady
)

// SendDatagram sends b once, unreliably, beside the stream: encrypted with a key from the TLS
// session, congestion-controlled, never retransmitted. It does not block. It fails with an
// error wrapping ErrDatagramTooLarge when b is larger than MaxDatagramPayload, and
// ErrDatagramNotReady before the handshake has completed. When the congestion window leaves
// too many datagrams waiting, b is dropped and counted in Stats().AppDatagramsDroppedSend.
func (c *Conn) SendDatagram(b []byte) error {
	c.mu.Lock()
	err := c.core.SendDatagram(b)
	c.mu.Unlock()
	if err != nil {
		return c.opError("send datagram", err)
	}
	c.poke()
	return nil
}

// MaxDatagramPayload is the largest datagram SendDatagram takes now. It follows the path MTU:
// about 1150 bytes at first, more once path MTU discovery has found room.
func (c *Conn) MaxDatagramPayload() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.MaxDatagramPayload()
}

// ReceiveDatagram returns the next datagram the peer sent with SendDatagram, waiting for one
// until ctx is done or the connection closes. Datagrams that arrive while nobody reads are kept
// up to a bound, then dropped and counted (Stats().AppDatagramsDroppedReceive). One goroutine
// at a time should call it.
func (c *Conn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	for {
		c.mu.Lock()
		var b []byte
		ok := false
		if n := c.core.NextDatagramLen(); n >= 0 {
			b = make([]byte, n) // the caller keeps it: one allocation of the datagram's size
			_, ok = c.core.ReceiveDatagram(b)
		}
		err := c.err
		c.mu.Unlock()
		if ok {
			return b, nil
		}
		if err != nil {
			return nil, c.opError("receive datagram", c.closedErr(err))
		}
		select {
		case <-c.datagrams:
		case <-c.done:
		case <-c.closing:
			return nil, c.opError("receive datagram", net.ErrClosed)
		case <-ctx.Done():
			return nil, c.opError("receive datagram", ctx.Err())
		}
	}
}
