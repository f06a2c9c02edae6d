package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// TCP relay buffering bounds, per direction of each connection.
const (
	tcpInitialBuffer = 64 << 10
	// tcpMaxBuffer bounds the bytes held in flight: delay × throughput must fit, so 32 MiB
	// allows about 2.6 Gbit/s at 100 ms of delay. Beyond it the relay stops reading and TCP flow
	// control slows the sender.
	tcpMaxBuffer = 32 << 20
	// tcpMaxMarks bounds the delivery-time marks held (one per read that got a new time).
	tcpMaxMarks = 1 << 16
	// tcpRateChunk caps one read when Rate is set, so that serialisation is modelled at about
	// the granularity of packets rather than of 64 KiB reads.
	tcpRateChunk = 16 << 10
)

// TCPRelayStats is a snapshot of a TCPRelay's counters.
type TCPRelayStats struct {
	Conns      int    // connections relayed now
	ConnsTotal uint64 // connections accepted
	DialErrors uint64 // connections dropped because the target could not be reached
	UpBytes    uint64 // bytes delivered client → target
	DownBytes  uint64 // bytes delivered target → client
}

// TCPRelay relays TCP connections to one target, delaying (and optionally rate-limiting) each
// direction's bytes as a [Link] with the same Config would delay datagrams, so that a benchmark
// can give TLS over TCP the same path as the UDP contenders. Each accepted connection gets its
// own connection to the target; half-closes are passed on.
//
// Bytes read at time t are written at t + Delay ± Jitter (never before bytes read earlier).
// With Rate, bytes are first serialised at Rate, and the relay stops reading while more than the
// queue bound waits for serialisation: TCP then sees a bottleneck that queues but never drops,
// and the sender's socket buffers add their own queueing. All methods are safe for concurrent
// use.
type TCPRelay struct {
	ln       *net.TCPListener
	target   string
	up, down impair.Config

	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup

	upBytes, downBytes atomic.Uint64
	dialErrors         atomic.Uint64

	mu      sync.Mutex // guards the fields below
	closed  bool
	serving bool
	conns   map[*tcpPair]struct{}
	nconns  uint64
}

// NewTCPRelay listens on the TCP address listen and returns a relay to target that applies up to
// client → target bytes and down to target → client bytes. It fails if a Config is invalid or
// holds an impairment a TCP relay cannot apply (see [impair.TCPApplicable] and [impair.TCPSubset]).
func NewTCPRelay(listen, target string, up, down impair.Config) (*TCPRelay, error) {
	for _, c := range []struct {
		name string
		cfg  impair.Config
	}{{"up", up}, {"down", down}} {
		if err := c.cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		if ok, why := impair.TCPApplicable(c.cfg); !ok {
			return nil, fmt.Errorf("relay: TCP relay %s: %s (use impair.TCPSubset)", c.name, why)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("relay: TCP relay: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &TCPRelay{
		ln:     ln.(*net.TCPListener),
		target: target,
		up:     up,
		down:   down,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*tcpPair]struct{}),
	}, nil
}

// Addr returns the address clients should connect to.
func (r *TCPRelay) Addr() net.Addr { return r.ln.Addr() }

// Start starts accepting in the background. It fails if the relay is closed or already running.
func (r *TCPRelay) Start() error {
	if err := r.begin(); err != nil {
		return err
	}
	go func() {
		defer r.wg.Done()
		r.accept()
	}()
	return nil
}

// Serve accepts connections in the calling goroutine until Close, then returns nil.
func (r *TCPRelay) Serve() error {
	if err := r.begin(); err != nil {
		return err
	}
	defer r.wg.Done()
	r.accept()
	return nil
}

func (r *TCPRelay) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	if r.serving {
		return errors.New("relay: TCP relay already running")
	}
	r.serving = true
	r.wg.Add(1)
	return nil
}

// Close stops accepting, closes every relayed connection and waits for the relay's goroutines
// to end. It may be called more than once.
func (r *TCPRelay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	pairs := make([]*tcpPair, 0, len(r.conns))
	for p := range r.conns {
		pairs = append(pairs, p)
	}
	r.mu.Unlock()
	r.cancel()
	err := r.ln.Close()
	for _, p := range pairs {
		p.abort()
	}
	r.wg.Wait()
	return err
}

// Stats returns a snapshot of the relay's counters.
func (r *TCPRelay) Stats() TCPRelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return TCPRelayStats{
		Conns:      len(r.conns),
		ConnsTotal: r.nconns,
		DialErrors: r.dialErrors.Load(),
		UpBytes:    r.upBytes.Load(),
		DownBytes:  r.downBytes.Load(),
	}
}

func (r *TCPRelay) accept() {
	var backoff *time.Timer
	for {
		c, err := r.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: pause instead of spinning, as net/http does.
			if backoff == nil {
				backoff = time.NewTimer(5 * time.Millisecond)
			} else {
				backoff.Reset(5 * time.Millisecond)
			}
			select {
			case <-r.ctx.Done():
				return
			case <-backoff.C:
			}
			continue
		}
		p := &tcpPair{client: c, done: make(chan struct{})}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return
		}
		k := r.nconns
		r.nconns++
		r.conns[p] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.handle(p, k)
	}
}

// tcpPair is one relayed connection: the client's and ours to the target.
type tcpPair struct {
	client *net.TCPConn
	done   chan struct{} // closed by abort

	mu      sync.Mutex // guards target and aborted
	target  *net.TCPConn
	aborted bool
}

// abort closes both connections, which ends every goroutine of the pair.
func (p *tcpPair) abort() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aborted {
		return
	}
	p.aborted = true
	close(p.done)
	p.client.Close()
	if p.target != nil {
		p.target.Close()
	}
}

// handle dials the target for connection k and runs the pair's four pumps until both directions
// are finished or one fails.
func (r *TCPRelay) handle(p *tcpPair, k uint64) {
	defer r.wg.Done()
	defer func() {
		p.abort()
		r.mu.Lock()
		delete(r.conns, p)
		r.mu.Unlock()
	}()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	t, err := d.DialContext(ctx, "tcp", r.target)
	cancel()
	if err != nil {
		r.dialErrors.Add(1)
		return
	}
	p.mu.Lock()
	if p.aborted {
		p.mu.Unlock()
		t.Close()
		return
	}
	p.target = t.(*net.TCPConn)
	p.mu.Unlock()

	up, down := r.up, r.down
	up.Seed = impair.DeriveSeed(r.up.Seed, 2*k)
	down.Seed = impair.DeriveSeed(r.down.Seed, 2*k+1)
	pipes := [2]*pipe{
		newPipe(up, p, p.client, p.target, &r.upBytes),
		newPipe(down, p, p.target, p.client, &r.downBytes),
	}
	var wg sync.WaitGroup
	for _, pp := range pipes {
		wg.Add(2)
		go func() {
			defer wg.Done()
			pp.readLoop()
		}()
		go func() {
			defer wg.Done()
			pp.writeLoop()
		}()
	}
	wg.Wait()
}

// pipe is one direction of a relayed connection: a reader that stamps the bytes it reads with
// their delivery time, a ring buffer, and a writer that writes them out when due.
type pipe struct {
	cfg        impair.Config
	seed       int64         // the path seed, for jitter
	start      time.Time     // origin of the jitter path
	queueLimit time.Duration // longest backlog of the rate limiter before the reader pauses
	pair       *tcpPair
	src, dst   *net.TCPConn
	delivered  *atomic.Uint64

	dataCh  chan struct{} // 1-slot: the reader added a mark
	spaceCh chan struct{} // 1-slot: the writer freed space

	// mu guards the fields below. The reader writes only into the free part of buf and the
	// writer reads only [head, tail), so neither holds mu during I/O.
	mu         sync.Mutex
	buf        []byte // ring; len is a power of two
	head, tail uint64 // stream offsets: [head, tail) is buffered
	marks      []mark // marks[mhead:] are pending, in stream order
	mhead      int
	busy       time.Time // the rate limiter serialises until then
	last       time.Time // latest delivery time handed out
}

// mark says that stream bytes up to end are due at at; eof marks the end of the stream.
type mark struct {
	end uint64
	at  time.Time
	eof bool
}

func newPipe(cfg impair.Config, p *tcpPair, src, dst *net.TCPConn, delivered *atomic.Uint64) *pipe {
	return &pipe{
		cfg:        cfg,
		seed:       cfg.Seed,
		start:      time.Now(),
		queueLimit: cfg.QueueLimit(),
		pair:       p,
		src:        src,
		dst:        dst,
		delivered:  delivered,
		dataCh:     make(chan struct{}, 1),
		spaceCh:    make(chan struct{}, 1),
		buf:        make([]byte, tcpInitialBuffer),
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *pipe) readLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		region, ok := p.waitSpace(timer)
		if !ok {
			return
		}
		n, err := p.src.Read(region)
		now := time.Now()
		if n > 0 {
			p.commit(now, n, false)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.commit(now, 0, true) // pass the half-close on, after the data
			} else {
				p.pair.abort()
			}
			return
		}
	}
}

// waitSpace returns the free part of the ring the reader may read into, waiting for the writer
// to free space or for the rate limiter's backlog to drain. ok is false if the pair is aborted.
func (p *pipe) waitSpace(timer *time.Timer) (region []byte, ok bool) {
	for {
		p.mu.Lock()
		used := p.tail - p.head
		if used == uint64(len(p.buf)) && len(p.buf) < tcpMaxBuffer {
			p.growLocked()
		}
		free := uint64(len(p.buf)) - used
		var wait time.Duration
		if p.cfg.Rate > 0 {
			if backlog := time.Until(p.busy); backlog > p.queueLimit {
				wait = backlog - p.queueLimit
			}
		}
		if free > 0 && len(p.marks)-p.mhead < tcpMaxMarks && wait == 0 {
			off := p.tail % uint64(len(p.buf))
			end := min(off+free, uint64(len(p.buf)))
			if p.cfg.Rate > 0 {
				end = min(end, off+tcpRateChunk)
			}
			region = p.buf[off:end]
			p.mu.Unlock()
			return region, true
		}
		p.mu.Unlock()
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.pair.done:
				return nil, false
			case <-timer.C:
			}
			continue
		}
		select {
		case <-p.pair.done:
			return nil, false
		case <-p.spaceCh:
		}
	}
}

// growLocked doubles the ring. The writer may be writing from the old array meanwhile: that is
// fine, the bytes it writes are copied unchanged and it advances head only.
func (p *pipe) growLocked() {
	nb := make([]byte, 2*len(p.buf))
	for off := p.head; off < p.tail; {
		s := off % uint64(len(p.buf))
		d := off % uint64(len(nb))
		n := min(p.tail-off, uint64(len(p.buf))-s, uint64(len(nb))-d)
		copy(nb[d:d+n], p.buf[s:s+n])
		off += n
	}
	p.buf = nb
}

// commit records n bytes read at now (or the end of the stream) with their delivery time.
func (p *pipe) commit(now time.Time, n int, eof bool) {
	p.mu.Lock()
	p.tail += uint64(n)
	depart := now
	if p.cfg.Rate > 0 && n > 0 {
		p.busy = laterOf(now, p.busy).Add(impair.TxTime(n, p.cfg.Rate))
		depart = p.busy
	}
	at := depart.Add(p.cfg.Delay)
	if p.cfg.Jitter > 0 {
		at = laterOf(at.Add(impair.JitterAt(p.seed, p.cfg.Jitter, depart.Sub(p.start))), depart)
	}
	at = laterOf(at, p.last)
	p.last = at
	if k := len(p.marks); !eof && k > p.mhead && !p.marks[k-1].eof && p.marks[k-1].at.Equal(at) {
		p.marks[k-1].end = p.tail
	} else {
		p.marks = append(p.marks, mark{end: p.tail, at: at, eof: eof})
	}
	p.mu.Unlock()
	notify(p.dataCh)
}

func (p *pipe) writeLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Wait for the earliest mark and for its time.
		p.mu.Lock()
		for p.mhead == len(p.marks) {
			p.mu.Unlock()
			select {
			case <-p.pair.done:
				return
			case <-p.dataCh:
			}
			p.mu.Lock()
		}
		at := p.marks[p.mhead].at
		p.mu.Unlock()
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-p.pair.done:
				return
			case <-timer.C:
			}
		}

		// Take every mark due by now, and write their bytes in one go.
		p.mu.Lock()
		now := time.Now()
		end, eof := p.head, false
		for p.mhead < len(p.marks) && !p.marks[p.mhead].at.After(now) && !eof {
			m := p.marks[p.mhead]
			p.mhead++
			end, eof = m.end, m.eof
		}
		if p.mhead == len(p.marks) {
			p.marks, p.mhead = p.marks[:0], 0
		} else if p.mhead >= 1024 && 2*p.mhead >= len(p.marks) {
			p.marks = p.marks[:copy(p.marks, p.marks[p.mhead:])]
			p.mhead = 0
		}
		p.mu.Unlock()
		if !p.writeUpTo(end) {
			return
		}
		if eof {
			_ = p.dst.CloseWrite() // if this fails, the connection is gone and the other pumps see it
			return
		}
	}
}

// writeUpTo writes the buffered bytes up to stream offset end. It reports false (after aborting
// the pair) if writing failed.
func (p *pipe) writeUpTo(end uint64) bool {
	for {
		p.mu.Lock()
		head := p.head
		if head >= end {
			p.mu.Unlock()
			return true
		}
		off := head % uint64(len(p.buf))
		chunk := p.buf[off:min(off+(end-head), uint64(len(p.buf)))]
		p.mu.Unlock()
		n, err := p.dst.Write(chunk)
		p.mu.Lock()
		p.head += uint64(n)
		p.mu.Unlock()
		p.delivered.Add(uint64(n))
		notify(p.spaceCh)
		if err != nil {
			p.pair.abort()
			return false
		}
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
