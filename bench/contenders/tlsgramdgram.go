package contenders

import (
	"context"
	"net"
	"time"

	"github.com/tlsgram/tlsgram/bench"
	"github.com/tlsgram/tlsgram/transport"
)

// tlsgramDatagram is tlsgram's unreliable datagrams beside the stream (Conn.SendDatagram and
// ReceiveDatagram) as a message contender: each Write is one encrypted datagram, each Read
// returns one. It is what pion/dtls is for, so the datagram-echo latency rows compare the two,
// with raw UDP as the floor.
type tlsgramDatagram struct{}

func init() { bench.Register(14, tlsgramDatagram{}) }

func (tlsgramDatagram) Name() string    { return "tlsgram-datagram" }
func (tlsgramDatagram) Reliable() bool  { return false }
func (tlsgramDatagram) Network() string { return "udp" }

// MaxMessage is what one datagram carries before path MTU discovery has found more room.
func (tlsgramDatagram) MaxMessage() int { return 1100 }
func (tlsgramDatagram) Info() bench.Info {
	return bench.Info{
		Label:         "tlsgram datagrams: AES-GCM-sealed DATAGRAM frames beside the TLS stream",
		HandshakeRTTs: 1,
		MaxDatagram:   transport.DefaultMaxDatagramSize,
		Settings:      "defaults; Conn.SendDatagram / ReceiveDatagram, one message per datagram",
	}
}

func (t tlsgramDatagram) Listen(addr string) (bench.Listener, error) {
	ln, err := tlsgram{}.Listen(addr)
	if err != nil {
		return nil, err
	}
	return dgramListener{ln.(tlsgramListener)}, nil
}

type dgramListener struct{ tlsgramListener }

func (l dgramListener) Accept() (net.Conn, error) {
	c, err := l.tlsgramListener.Accept()
	if err != nil {
		return nil, err
	}
	return newDgramConn(c.(*transport.Conn)), nil
}

func (tlsgramDatagram) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := tlsgram{}.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return newDgramConn(c.(*transport.Conn)), nil
}

// dgramConn maps net.Conn's Read and Write to whole datagrams. The read deadline is honoured
// through a context.
type dgramConn struct {
	*transport.Conn
	deadline chan time.Time // 1 slot: the read deadline
}

func newDgramConn(c *transport.Conn) *dgramConn {
	d := &dgramConn{Conn: c, deadline: make(chan time.Time, 1)}
	d.deadline <- time.Time{}
	return d
}

func (d *dgramConn) Write(b []byte) (int, error) {
	if err := d.SendDatagram(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (d *dgramConn) Read(b []byte) (int, error) {
	t := <-d.deadline
	d.deadline <- t
	ctx := context.Background()
	if !t.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, t)
		defer cancel()
	}
	m, err := d.ReceiveDatagram(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0, timeoutError{}
		}
		return 0, err
	}
	return copy(b, m), nil
}

func (d *dgramConn) SetReadDeadline(t time.Time) error {
	<-d.deadline
	d.deadline <- t
	return nil
}

func (d *dgramConn) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

// ConnStats: the transport's counters, datagram counts included.
func (tlsgramDatagram) ConnStats(c net.Conn) any {
	if d, ok := c.(*dgramConn); ok {
		return d.Stats()
	}
	return nil
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
