package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// link is the set-up of one measurement: a contender's listener, the relay
// that impairs the path (none on a clean link), and a handler run for every
// accepted conn. Closing the link closes everything it started, including
// accepted conns, so a measurement leaves nothing running behind it.
type link struct {
	c        Contender
	ln       Listener
	relay    io.Closer
	dialAddr string

	wg sync.WaitGroup // accept loop and handlers

	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
}

// relayStarter starts an impairing relay in front of target and returns the
// address to dial. relay.go installs the implementation backed by
// internal/impair/relay; tests may replace it.
var relayStarter func(network, target string, cond Condition, seed int64) (string, io.Closer, error)

// errNoRelay is returned for impaired conditions when no relay is available.
var errNoRelay = errors.New("impairment relay not available")

func openLink(c Contender, cond Condition, seed int64, handler func(net.Conn)) (*link, error) {
	ln, err := c.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{c: c, ln: ln, dialAddr: ln.Addr().String()}
	if !cond.Clean() {
		if relayStarter == nil {
			ln.Close()
			return nil, errNoRelay
		}
		addr, r, err := relayStarter(c.Network(), l.dialAddr, cond, seed)
		if err != nil {
			ln.Close()
			return nil, err
		}
		l.relay, l.dialAddr = r, addr
	}
	l.wg.Add(1)
	go l.acceptLoop(handler)
	return l, nil
}

func (l *link) acceptLoop(handler func(net.Conn)) {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		if !l.track(conn) {
			conn.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			handler(conn)
		}()
	}
}

// track remembers conn so Close can close it; false once the link is closed.
func (l *link) track(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns = append(l.conns, conn)
	return true
}

// dial connects a client through the relay (if any).
func (l *link) dial(ctx context.Context) (net.Conn, error) {
	return l.c.Dial(ctx, l.dialAddr)
}

// closeAsync closes a client conn in the background: a graceful close may
// wait a round trip (or a timeout, on a lossy link) for the peer's
// acknowledgement, which is not part of what the caller measures. Close
// waits for it, bounded.
func (l *link) closeAsync(c net.Conn) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		c.Close()
	}()
}

// Close tears the link down. Server conns close in parallel while the relay
// still runs, so a graceful close can complete its exchange with the
// client; then the relay goes. It waits a bounded time: a contender whose
// Close does not unblock its Read must not hang the run (the leaked
// goroutine is the contender's bug, and the watchdog reports the cell).
func (l *link) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()

	l.ln.Close()
	for _, c := range conns {
		l.closeAsync(c)
	}
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	if l.relay != nil {
		l.relay.Close()
	}
}

// closeOnDone closes c when ctx ends, which unblocks any Read or Write on
// it: the one mechanism that bounds every blocking call in a measurement,
// whatever deadline support the contender has. The returned stop function
// detaches it.
func closeOnDone(ctx context.Context, c io.Closer) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// echoHandler echoes every byte (stream) or message (message contenders)
// until the conn fails or is closed.
func echoHandler(c Contender) func(net.Conn) {
	return func(conn net.Conn) {
		defer conn.Close()
		size := c.MaxMessage()
		if size == 0 {
			size = 64 << 10
		}
		buf := make([]byte, size)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil && c.Reliable() {
					return
				}
			}
			if err != nil {
				if isTimeout(err) && !c.Reliable() {
					continue
				}
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
