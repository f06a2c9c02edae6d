package contenders

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tlsgram/tlsgram/bench"
)

// quicGo is quic-go with one bidirectional stream per connection, wrapped
// as a net.Conn (quic-go itself has none). quic-go caps every packet at
// 1452 bytes of UDP payload (protocol.MaxPacketBufferSize), so its path MTU
// discovery stays within the Internet-sized budget; it starts at 1280.
type quicGo struct{}

func init() { bench.Register(40, quicGo{}) }

const quicALPN = "tlsgram-bench"

func (quicGo) Name() string    { return "quic-go" }
func (quicGo) Reliable() bool  { return true }
func (quicGo) Network() string { return "udp" }
func (quicGo) MaxMessage() int { return 0 }
func (quicGo) Info() bench.Info {
	return bench.Info{
		Label:         "quic-go, one stream (TLS 1.3 in QUIC)",
		HandshakeRTTs: 1,
		MaxDatagram:   1452,
		Settings:      "defaults: NewReno (quic-go uses Reno mode of its cubic sender), pacing, GSO, DPLPMTUD 1280→≤1452, windows 512 KB→6 MB (stream); no 0-RTT, no resumption",
	}
}

func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: 10 * time.Second,
		MaxIdleTimeout:       30 * time.Second,
	}
}

func (quicGo) Listen(addr string) (bench.Listener, error) {
	conf, err := bench.ServerTLS(quicALPN)
	if err != nil {
		return nil, err
	}
	ln, err := quic.ListenAddr(addr, conf, quicConfig())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &quicListener{ln: ln, ctx: ctx, cancel: cancel, conns: make(chan net.Conn, 1024)}
	go l.acceptLoop()
	return l, nil
}

// quicListener accepts QUIC connections and their first stream. A peer's
// stream becomes visible only when it sends on it, so each connection
// waits for its stream in its own goroutine and never holds up the next.
type quicListener struct {
	ln     *quic.Listener
	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
}

func (l *quicListener) acceptLoop() {
	for {
		c, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
			defer cancel()
			s, err := c.AcceptStream(ctx)
			if err != nil {
				c.CloseWithError(0, "")
				return
			}
			select {
			case l.conns <- &quicConn{Stream: s, conn: c}:
			case <-l.ctx.Done():
				c.CloseWithError(0, "")
			}
		}()
	}
}

func (l *quicListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *quicListener) Addr() net.Addr { return l.ln.Addr() }

func (l *quicListener) Close() error {
	l.cancel()
	return l.ln.Close()
}

func (quicGo) Dial(ctx context.Context, addr string) (net.Conn, error) {
	conf, err := bench.ClientTLS(quicALPN)
	if err != nil {
		return nil, err
	}
	c, err := quic.DialAddr(ctx, addr, conf, quicConfig())
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		c.CloseWithError(0, "")
		return nil, err
	}
	return &quicConn{Stream: s, conn: c}, nil
}

func (quicGo) ConnStats(c net.Conn) any {
	if qc, ok := c.(*quicConn); ok {
		return qc.conn.ConnectionStats()
	}
	return nil
}

// quicConn is one stream as a net.Conn; Close ends the whole connection.
type quicConn struct {
	*quic.Stream
	conn *quic.Conn
	once sync.Once
}

func (c *quicConn) Close() error {
	var err error
	c.once.Do(func() {
		c.Stream.CancelRead(0)
		err = errors.Join(c.Stream.Close(), c.conn.CloseWithError(0, ""))
	})
	return err
}

func (c *quicConn) LocalAddr() net.Addr  { return c.conn.LocalAddr() }
func (c *quicConn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }
