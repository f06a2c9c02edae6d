package contenders

import (
	"context"
	"net"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/tlsgram/tlsgram/bench"
)

// kcpGo is kcp-go in its "fast" mode with AES encryption. KCP has no
// handshake and no key exchange: both ends hold a pre-shared key, and its
// AES-CFB plus CRC-32 is encryption without authentication. It is here
// because latency-sensitive Go users pick it; it is not a like-for-like
// security comparison.
type kcpGo struct{}

func init() { bench.Register(50, kcpGo{}) }

// kcpKey is the pre-shared AES-128 key; a real deployment derives it from
// a passphrase (kcptun uses PBKDF2).
var kcpKey = []byte("tlsgram-bench-k!")

const (
	kcpMTU    = 1452 // UDP payload, including kcp-go's 20-byte nonce+CRC header
	kcpWindow = 1024 // packets; the 32-packet default caps a 20 ms path at ~2 MB/s
)

func (kcpGo) Name() string    { return "kcp-go" }
func (kcpGo) Reliable() bool  { return true }
func (kcpGo) Network() string { return "udp" }
func (kcpGo) MaxMessage() int { return 0 }
func (kcpGo) Info() bench.Info {
	return bench.Info{
		Label:         "kcp-go fast mode, AES (pre-shared key, unauthenticated)",
		HandshakeRTTs: 0,
		MaxDatagram:   kcpMTU,
		Settings:      "NoDelay(1, 10, 2, 1) (no congestion control), windows 1024/1024 packets, MTU 1452, AES-128-CFB block crypt, no FEC, 4 MiB socket buffers",
	}
}

func tuneKCP(s *kcp.UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(kcpWindow, kcpWindow)
	s.SetMtu(kcpMTU)
	_ = s.SetReadBuffer(udpSocketBuf)
	_ = s.SetWriteBuffer(udpSocketBuf)
}

func (kcpGo) Listen(addr string) (bench.Listener, error) {
	block, err := kcp.NewAESBlockCrypt(kcpKey)
	if err != nil {
		return nil, err
	}
	ln, err := kcp.ListenWithOptions(addr, block, 0, 0)
	if err != nil {
		return nil, err
	}
	_ = ln.SetReadBuffer(udpSocketBuf)
	_ = ln.SetWriteBuffer(udpSocketBuf)
	return kcpListener{ln}, nil
}

type kcpListener struct{ ln *kcp.Listener }

func (l kcpListener) Accept() (net.Conn, error) {
	s, err := l.ln.AcceptKCP()
	if err != nil {
		return nil, err
	}
	tuneKCP(s)
	return s, nil
}

func (l kcpListener) Addr() net.Addr { return l.ln.Addr() }
func (l kcpListener) Close() error   { return l.ln.Close() }

func (kcpGo) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	block, err := kcp.NewAESBlockCrypt(kcpKey)
	if err != nil {
		return nil, err
	}
	s, err := kcp.DialWithOptions(addr, block, 0, 0)
	if err != nil {
		return nil, err
	}
	tuneKCP(s)
	return s, nil
}
