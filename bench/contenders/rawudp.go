package contenders

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tlsgram/tlsgram/bench"
)

// rawUDP is plain UDP without any crypto or reliability: the floor for
// latency and the ceiling for packets per second. The server side is a
// minimal demultiplexer (one socket, one queue per peer), the least any
// UDP server that serves several peers needs.
type rawUDP struct{}

func init() { bench.Register(90, rawUDP{}) }

const (
	udpMax        = 1452 // Internet-sized UDP payload: 1500 − 40 (IPv6) − 8
	udpSocketBuf  = 4 << 20
	udpPeerQueue  = 1024 // datagrams queued per peer before dropping
	udpAcceptWait = 128
)

func (rawUDP) Name() string    { return "raw-udp" }
func (rawUDP) Reliable() bool  { return false }
func (rawUDP) Network() string { return "udp" }
func (rawUDP) MaxMessage() int { return udpMax }
func (rawUDP) Info() bench.Info {
	return bench.Info{
		Label:         "UDP, no crypto, no reliability",
		HandshakeRTTs: 0,
		MaxDatagram:   udpMax,
		Settings:      "4 MiB socket buffers; server: one socket, 1024-datagram queue per peer",
		Baseline:      true,
	}
}

func (rawUDP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UDPConn)
	_ = uc.SetReadBuffer(udpSocketBuf)
	_ = uc.SetWriteBuffer(udpSocketBuf)
	return uc, nil
}

func (rawUDP) Listen(addr string) (bench.Listener, error) {
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	_ = pc.SetReadBuffer(udpSocketBuf)
	_ = pc.SetWriteBuffer(udpSocketBuf)
	l := &udpListener{
		pc:     pc,
		peers:  map[netip.AddrPort]*udpPeer{},
		accept: make(chan *udpPeer, udpAcceptWait),
		done:   make(chan struct{}),
	}
	l.pool.New = func() any { return new([udpMax + 1]byte) }
	go l.readLoop()
	return l, nil
}

type udpListener struct {
	pc     *net.UDPConn
	accept chan *udpPeer
	done   chan struct{}
	pool   sync.Pool // *[udpMax+1]byte

	mu     sync.Mutex // guards peers and closed
	peers  map[netip.AddrPort]*udpPeer
	closed bool
}

type udpDatagram struct {
	buf *[udpMax + 1]byte
	n   int
}

func (l *udpListener) readLoop() {
	for {
		buf := l.pool.Get().(*[udpMax + 1]byte)
		n, from, err := l.pc.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			l.pool.Put(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := l.peer(from)
		if p == nil {
			l.pool.Put(buf)
			continue
		}
		select {
		case p.in <- udpDatagram{buf, n}:
		default:
			l.pool.Put(buf) // queue full: dropped, as a kernel buffer would
		}
	}
}

// peer returns the conn for from, creating and announcing it on first
// contact; nil when the accept queue is full or the listener closed.
func (l *udpListener) peer(from netip.AddrPort) *udpPeer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.peers[from]; ok {
		return p
	}
	if l.closed {
		return nil
	}
	p := &udpPeer{l: l, remote: from, in: make(chan udpDatagram, udpPeerQueue), done: make(chan struct{})}
	select {
	case l.accept <- p:
	default:
		return nil
	}
	l.peers[from] = p
	return p
}

func (l *udpListener) Accept() (net.Conn, error) {
	select {
	case p := <-l.accept:
		return p, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *udpListener) Addr() net.Addr { return l.pc.LocalAddr() }

func (l *udpListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	return l.pc.Close()
}

// udpPeer is the server's conn to one client. Read and Write are not safe
// for concurrent use by several goroutines each (one reader, one writer is
// fine), like the measurements use them.
type udpPeer struct {
	l      *udpListener
	remote netip.AddrPort
	in     chan udpDatagram
	done   chan struct{}

	mu       sync.Mutex // guards deadline, timer and closed
	deadline time.Time
	timer    *time.Timer
	closed   bool
}

func (p *udpPeer) Read(b []byte) (int, error) {
	p.mu.Lock()
	dl := p.deadline
	var expired <-chan time.Time
	if !dl.IsZero() {
		if p.timer == nil {
			p.timer = time.NewTimer(time.Until(dl))
		} else {
			p.timer.Reset(time.Until(dl))
		}
		expired = p.timer.C
	}
	p.mu.Unlock()
	select {
	case d := <-p.in:
		n := copy(b, d.buf[:d.n])
		p.l.pool.Put(d.buf)
		return n, nil
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	case <-p.done:
		return 0, net.ErrClosed
	case <-p.l.done:
		return 0, net.ErrClosed
	}
}

func (p *udpPeer) Write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	return p.l.pc.WriteToUDPAddrPort(b, p.remote)
}

func (p *udpPeer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.done)
	p.l.mu.Lock()
	delete(p.l.peers, p.remote)
	p.l.mu.Unlock()
	return nil
}

func (p *udpPeer) LocalAddr() net.Addr  { return p.l.pc.LocalAddr() }
func (p *udpPeer) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(p.remote) }
func (p *udpPeer) SetDeadline(t time.Time) error {
	return p.SetReadDeadline(t)
}
func (p *udpPeer) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	return nil
}
func (p *udpPeer) SetWriteDeadline(time.Time) error { return nil }
