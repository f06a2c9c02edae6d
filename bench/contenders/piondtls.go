package contenders

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/protocol"
	"github.com/pion/dtls/v2/pkg/protocol/recordlayer"
	"github.com/pion/transport/v2/udp"

	"github.com/tlsgram/tlsgram/bench"
)

// pionDTLS is pion/dtls v2 (DTLS 1.2), the required baseline. Application
// data is unreliable and message-oriented: one Write is one record in one
// datagram, and the bench credits it only with what arrives.
//
// The server runs each handshake in its own goroutine (dtls.Listen's
// Accept would run them one at a time, so one stalled client would hold
// up every other): that is how a server with many clients uses pion.
type pionDTLS struct{}

func init() { bench.Register(60, pionDTLS{}) }

// dtlsOverhead is what a record adds to a message with
// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 13-byte DTLS record header,
// 8-byte explicit nonce, 16-byte tag (RFC 6347 §4.1, RFC 5288 §3).
const dtlsOverhead = 13 + 8 + 16

func (pionDTLS) Name() string    { return "pion-dtls" }
func (pionDTLS) Reliable() bool  { return false }
func (pionDTLS) Network() string { return "udp" }
func (pionDTLS) MaxMessage() int { return udpMax - dtlsOverhead }
func (pionDTLS) Info() bench.Info {
	return bench.Info{
		Label:         "pion/dtls v2, DTLS 1.2 (unreliable messages)",
		HandshakeRTTs: 3, // HelloVerifyRequest cookie exchange, then the 2-RTT DTLS 1.2 full handshake
		MaxDatagram:   udpMax,
		Settings:      "ECDHE-ECDSA-AES128-GCM-SHA256, extended master secret required, handshake MTU 1452, flight interval 1 s (default), 4 MiB socket buffers, handshakes in parallel",
		Baseline:      true,
	}
}

func dtlsConfig() (*dtls.Config, error) {
	cert, pool, err := bench.Certificate()
	if err != nil {
		return nil, err
	}
	return &dtls.Config{
		Certificates:         []tls.Certificate{cert},
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		RootCAs:              pool,
		ServerName:           bench.ServerName,
		MTU:                  udpMax,
		ConnectContextMaker: func() (context.Context, func()) {
			return context.WithTimeout(context.Background(), 10*time.Second)
		},
	}, nil
}

func (pionDTLS) Listen(addr string) (bench.Listener, error) {
	conf, err := dtlsConfig()
	if err != nil {
		return nil, err
	}
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	// The same filter dtls.Listen installs: only a handshake record may
	// create a new server-side conn.
	lc := udp.ListenConfig{
		AcceptFilter: func(packet []byte) bool {
			pkts, err := recordlayer.UnpackDatagram(packet)
			if err != nil || len(pkts) < 1 {
				return false
			}
			h := &recordlayer.Header{}
			if err := h.Unmarshal(pkts[0]); err != nil {
				return false
			}
			return h.ContentType == protocol.ContentTypeHandshake
		},
		ReadBufferSize:  udpSocketBuf,
		WriteBufferSize: udpSocketBuf,
		Backlog:         2048,
	}
	parent, err := lc.Listen("udp", la)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &dtlsListener{parent: parent, conf: conf, ctx: ctx, cancel: cancel, conns: make(chan net.Conn, 2048)}
	go l.acceptLoop()
	return l, nil
}

type dtlsListener struct {
	parent net.Listener
	conf   *dtls.Config
	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
	wg     sync.WaitGroup
}

func (l *dtlsListener) acceptLoop() {
	for {
		c, err := l.parent.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
			defer cancel()
			dc, err := dtls.ServerWithContext(ctx, c, l.conf)
			if err != nil {
				c.Close()
				return
			}
			select {
			case l.conns <- dc:
			case <-l.ctx.Done():
				dc.Close()
			}
		}()
	}
}

func (l *dtlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *dtlsListener) Addr() net.Addr { return l.parent.Addr() }

func (l *dtlsListener) Close() error {
	l.cancel()
	return l.parent.Close()
}

func (pionDTLS) Dial(ctx context.Context, addr string) (net.Conn, error) {
	conf, err := dtlsConfig()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UDPConn)
	_ = uc.SetReadBuffer(udpSocketBuf)
	_ = uc.SetWriteBuffer(udpSocketBuf)
	dc, err := dtls.ClientWithContext(ctx, uc, conf)
	if err != nil {
		uc.Close()
		return nil, err
	}
	return dc, nil
}
