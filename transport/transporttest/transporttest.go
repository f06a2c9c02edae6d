// Package transporttest is an in-memory datagram network for tests of package transport and of
// code built on it. Its PacketConns deliver through bounded queues, with an optional one-way
// latency and a drop hook, and use no sockets: every goroutine blocked on one is durably blocked
// in the sense of testing/synctest, so whole TLS sessions run inside a synctest bubble on
// virtual time (handshake and idle timeouts take no real time).
//
// Like UDP, delivery is best effort: a datagram to an address nobody listens on, or to a full
// queue, is dropped silently.
package transporttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tlsgram/tlsgram/transport/internal/deadline"
)

// DefaultQueueLen is the receive queue of a PacketConn, in datagrams, when Network.QueueLen is 0.
const DefaultQueueLen = 1024

// Addr is an address on a Network.
type Addr struct {
	Host string
	Port int
}

// Network returns "mem".
func (a Addr) Network() string { return "mem" }

func (a Addr) String() string { return fmt.Sprintf("%s:%d", a.Host, a.Port) }

// Network is a set of in-memory PacketConns that can reach each other. Set the exported fields
// before the first Listen; Drop may be changed at any time through SetDrop.
type Network struct {
	// QueueLen is each PacketConn's receive queue length. Default DefaultQueueLen.
	QueueLen int
	// Latency delays every datagram by this much (one way). Default 0: delivered at once.
	// Datagrams with the same latency arrive in the order they were sent.
	Latency time.Duration
	// Jitter adds a random delay in [0, Jitter) to each datagram, which reorders datagrams sent
	// closer together than the jitter. Default 0.
	Jitter time.Duration

	mu    sync.Mutex
	conns map[Addr]*PacketConn
	port  int
	drop  func(from, to net.Addr, b []byte) bool
}

// SetDrop installs a function that decides, for each datagram sent, whether it is lost; nil
// (the default) loses nothing. It may be called at any time.
func (n *Network) SetDrop(drop func(from, to net.Addr, b []byte) bool) {
	n.mu.Lock()
	n.drop = drop
	n.mu.Unlock()
}

// Listen returns a PacketConn at host with a fresh port.
func (n *Network) Listen(host string) *PacketConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = make(map[Addr]*PacketConn)
	}
	n.port++
	ql := n.QueueLen
	if ql <= 0 {
		ql = DefaultQueueLen
	}
	pc := &PacketConn{
		net:    n,
		addr:   Addr{Host: host, Port: n.port},
		in:     make(chan datagram, ql),
		closed: make(chan struct{}),
	}
	pc.deadline = deadline.Make()
	n.conns[pc.addr] = pc
	return pc
}

type datagram struct {
	b      []byte
	from   Addr
	due    time.Time   // delivery time when the network has latency
	sender *PacketConn // for drop counts
}

// PacketConn is one endpoint of a Network. It implements net.PacketConn.
type PacketConn struct {
	net       *Network
	addr      Addr
	in        chan datagram
	closed    chan struct{}
	closeOnce sync.Once
	deadline  deadline.Deadline

	delayOnce sync.Once
	delayed   chan datagram // in flight to c when the network has latency

	mu      sync.Mutex // guards the counters
	sent    int
	dropped int
}

// ReadFrom blocks until a datagram arrives, the read deadline passes, or the conn is closed.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, c.opErr("read", net.ErrClosed)
	default:
	}
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, nil, c.opErr("read", net.ErrClosed)
	case <-c.deadline.Wait():
		return 0, nil, c.opErr("read", os.ErrDeadlineExceeded)
	}
}

// WriteTo sends a copy of b to addr. It never blocks.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opErr("write", net.ErrClosed)
	default:
	}
	to, ok := addr.(Addr)
	if !ok {
		return 0, c.opErr("write", errors.New("transporttest: not a transporttest.Addr"))
	}
	n := c.net
	n.mu.Lock()
	dst := n.conns[to]
	drop := n.drop
	latency, jitter := n.Latency, n.Jitter
	n.mu.Unlock()
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	if dst == nil || (drop != nil && drop(c.addr, to, b)) {
		c.countDrop()
		return len(b), nil
	}
	d := datagram{b: append([]byte(nil), b...), from: c.addr}
	if jitter > 0 {
		time.AfterFunc(latency+rand.N(jitter), func() { dst.enqueue(d, c) })
		return len(b), nil
	}
	if latency <= 0 {
		dst.enqueue(d, c)
		return len(b), nil
	}
	d.due = time.Now().Add(latency)
	d.sender = c
	dst.delayOnce.Do(func() {
		dst.delayed = make(chan datagram, cap(dst.in))
		go dst.delayLine()
	})
	select {
	case dst.delayed <- d:
	default:
		c.countDrop()
	}
	return len(b), nil
}

// delayLine delivers delayed datagrams in the order they were sent: the latency is the same for
// all, so due times are monotonic and FIFO order is send order (one timer per datagram would
// fire in random order for equal deadlines, reordering the path).
func (c *PacketConn) delayLine() {
	for {
		select {
		case d := <-c.delayed:
			if wait := time.Until(d.due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-c.closed:
					t.Stop()
					return
				}
			}
			c.enqueue(d, d.sender)
		case <-c.closed:
			return
		}
	}
}

func (c *PacketConn) enqueue(d datagram, from *PacketConn) {
	select {
	case <-c.closed:
		from.countDrop()
		return
	default:
	}
	select {
	case c.in <- d:
	default:
		from.countDrop()
	}
}

func (c *PacketConn) countDrop() {
	c.mu.Lock()
	c.dropped++
	c.mu.Unlock()
}

// Counts returns how many datagrams c sent and how many of them were lost (dropped by the drop
// function, a full queue, or no receiver).
func (c *PacketConn) Counts() (sent, dropped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent, c.dropped
}

// Close closes c; its address becomes free of a receiver.
func (c *PacketConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.net.mu.Lock()
		delete(c.net.conns, c.addr)
		c.net.mu.Unlock()
		c.deadline.Set(time.Time{})
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

// LocalAddr returns c's address.
func (c *PacketConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read deadline; writes never block.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the deadline for pending and future ReadFrom calls.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.deadline.Set(t)
	return nil
}

// SetWriteDeadline is a no-op: writes never block.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return nil }

func (c *PacketConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Addr: c.addr, Err: err}
}
