package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Bulk is one one-way transfer, client → server.
//
// The sender writes as fast as the contender accepts for the measurement
// window; goodput is what the receiver got within that window. Afterwards
// the sender ends the stream and the receiver waits, bounded, for the rest:
// that proves a reliable contender delivers everything it accepted, and how
// long its buffers took to drain — without letting the size of a send
// buffer change the goodput figure.
type Bulk struct {
	// Window is the measurement window in seconds.
	Window float64 `json:"window_seconds"`
	// WindowBytes is what the receiver read within the window: for a
	// message contender, distinct messages × message size (duplicates and
	// lost messages never count).
	WindowBytes int64 `json:"window_bytes"`
	// MBps is WindowBytes / Window in 10^6 bytes per second.
	MBps float64 `json:"mb_per_s"`
	// Sent is what the sender's Writes accepted; Delivered what the
	// receiver got in total, after the drain.
	Sent      int64 `json:"sent_bytes"`
	Delivered int64 `json:"delivered_bytes"`
	// Fraction is Delivered / Sent.
	Fraction float64 `json:"delivered_fraction"`
	// Drained reports that a reliable contender delivered its last byte
	// within the drain timeout; DrainSeconds is how long after the window
	// that took.
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drain_seconds"`
	// CPUPerGB is process CPU seconds (user + system, both ends, and the
	// relay on impaired links) during the window per 10^9 bytes received
	// in it.
	CPUPerGB float64 `json:"cpu_s_per_gb"`
	// AllocsPerMB is heap allocations (both ends) during the window per
	// 10^6 bytes received in it.
	AllocsPerMB float64 `json:"allocs_per_mb"`
	// Stats holds the contender's and the relay's own counters.
	Stats any `json:"stats,omitempty"`
}

// bulkFrame is the unit a stream sender writes: flag byte (1 on the last
// frame), 8-byte sequence number, payload whose last byte repeats the
// sequence number. The receiver checks both, so a transport that delivers
// corrupted or misordered bytes fails loudly instead of scoring.
const bulkFrame = 32 << 10

// MeasureBulk sends for dur as fast as the contender accepts and reports
// the goodput within that window; it then waits at most drain for the rest
// to arrive. ctx bounds everything.
func MeasureBulk(ctx context.Context, c Contender, cond Condition, seed int64, dur, drain time.Duration) (Bulk, error) {
	// The receiving end runs in the link's handler for the first accepted
	// conn, from the moment it is accepted: some contenders complete their
	// handshake only when the server reads (crypto/tls), others make the
	// conn visible only when data arrives (quic-go).
	var first atomic.Bool
	ss := &streamSink{done: make(chan struct{})}
	ms := &msgSink{seen: make([]uint64, 1<<14)}
	l, err := openLink(c, cond, seed, func(conn net.Conn) {
		if !first.CompareAndSwap(false, true) {
			return
		}
		if c.Reliable() {
			ss.run(conn)
		} else {
			ms.run(conn, c.MaxMessage())
		}
	})
	if err != nil {
		return Bulk{}, err
	}
	defer l.Close()
	conn, err := l.dial(ctx)
	if err != nil {
		return Bulk{}, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	var b Bulk
	if c.Reliable() {
		b, err = bulkStream(ctx, conn, ss, dur, drain)
	} else {
		b, err = bulkMessages(ctx, c, cond, conn, ms, dur)
	}
	// Keep the transport's and the relay's own counters with the result:
	// they explain a surprising number (retransmissions, queue drops).
	st := map[string]any{}
	if sp, ok := c.(StatsProvider); ok {
		if v := sp.ConnStats(conn); v != nil {
			st["client"] = v
		}
	}
	if rc, ok := l.relay.(relayCloser); ok {
		st["relay"] = rc.stats()
	}
	if len(st) > 0 {
		b.Stats = st
	}
	return b, err
}

type resources struct {
	cpu     time.Duration
	mallocs uint64
}

func snapshot() resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return resources{
		cpu:     processCPU(),
		mallocs: ms.Mallocs,
	}
}

// window records what happened in the measurement window: a timer takes
// the snapshot at its end, while the sender may be blocked in a Write.
type window struct {
	r0, r1 resources
	bytes  int64
	done   chan struct{}
}

func startWindow(dur time.Duration, count func() int64) *window {
	runtime.GC()
	w := &window{done: make(chan struct{})}
	w.r0 = snapshot()
	time.AfterFunc(dur, func() {
		w.bytes = count()
		w.r1 = snapshot()
		close(w.done)
	})
	return w
}

func (b *Bulk) finish(w *window, dur time.Duration) {
	b.Window = dur.Seconds()
	b.WindowBytes = w.bytes
	b.MBps = float64(w.bytes) / dur.Seconds() / 1e6
	if b.Sent > 0 {
		b.Fraction = float64(b.Delivered) / float64(b.Sent)
	}
	if w.bytes > 0 {
		b.CPUPerGB = (w.r1.cpu - w.r0.cpu).Seconds() / (float64(w.bytes) / 1e9)
		b.AllocsPerMB = float64(w.r1.mallocs-w.r0.mallocs) / (float64(w.bytes) / 1e6)
	}
}

func bulkStream(ctx context.Context, conn net.Conn, sink *streamSink, dur, drain time.Duration) (Bulk, error) {
	var sent atomic.Int64
	w := startWindow(dur, sink.bytes.Load)
	end := time.Now().Add(dur)
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, bulkFrame)
		for seq := uint64(0); ; seq++ {
			last := !time.Now().Before(end)
			buf[0] = 0
			if last {
				buf[0] = 1
			}
			binary.BigEndian.PutUint64(buf[1:9], seq)
			buf[len(buf)-1] = byte(seq)
			// Counted before the write: the receiver may have the frame (and the measurement
			// may read sent) before Write returns.
			sent.Add(bulkFrame)
			if _, err := conn.Write(buf); err != nil {
				writeErr <- err
				return
			}
			if last {
				writeErr <- nil
				return
			}
		}
	}()
	var b Bulk
	select {
	case <-w.done:
	case <-ctx.Done():
		return b, ctx.Err()
	}
	drainTimer := time.NewTimer(drain)
	defer drainTimer.Stop()
	var werr error
	select {
	case <-sink.done:
		b.Drained = sink.err == nil
		b.DrainSeconds = sink.end.Sub(end).Seconds()
	case werr = <-writeErr:
		if werr != nil {
			break
		}
		select {
		case <-sink.done:
			b.Drained = sink.err == nil
			b.DrainSeconds = sink.end.Sub(end).Seconds()
		case <-drainTimer.C:
		case <-ctx.Done():
		}
	case <-drainTimer.C:
	case <-ctx.Done():
	}
	b.Sent = sent.Load()
	b.Delivered = sink.bytes.Load()
	b.finish(w, dur)
	switch {
	case ctx.Err() != nil:
		return b, ctx.Err()
	case werr != nil:
		return b, fmt.Errorf("write: %w", werr)
	}
	select {
	case <-sink.done:
		if sink.err != nil {
			return b, fmt.Errorf("receiver: %w", sink.err)
		}
	default:
	}
	if w.bytes == 0 {
		return b, errors.New("nothing delivered within the window")
	}
	return b, nil
}

// streamSink reads frames, checks them, and counts bytes as they arrive.
type streamSink struct {
	bytes atomic.Int64
	done  chan struct{} // closed when the last frame arrived or reading failed
	end   time.Time     // set before done is closed
	err   error         // set before done is closed
}

func (s *streamSink) run(conn net.Conn) {
	defer close(s.done)
	buf := make([]byte, bulkFrame)
	for seq := uint64(0); ; seq++ {
		for off := 0; off < len(buf); {
			n, err := conn.Read(buf[off:])
			off += n
			s.bytes.Add(int64(n))
			if err != nil {
				s.err = err
				return
			}
		}
		if got := binary.BigEndian.Uint64(buf[1:9]); got != seq || buf[len(buf)-1] != byte(seq) {
			s.err = fmt.Errorf("stream corrupted: frame %d carries sequence %d", seq, got)
			return
		}
		if buf[0] == 1 {
			s.end = time.Now()
			return
		}
	}
}

// msgSink counts distinct messages by sequence number.
type msgSink struct {
	mu        sync.Mutex // guards seen
	seen      []uint64   // bitmap of sequence numbers
	distinct  atomic.Int64
	lastNanos atomic.Int64 // last arrival of a new message
}

func (s *msgSink) run(conn net.Conn, size int) {
	buf := make([]byte, size+1)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return
		}
		if n != size {
			continue // not one of ours (a transport must not merge or split messages)
		}
		seq := binary.BigEndian.Uint64(buf[:8])
		w := seq / 64
		if w >= 1<<26 {
			continue // an absurd sequence number (corruption): ignore rather than allocate
		}
		s.mu.Lock()
		for uint64(len(s.seen)) <= w {
			s.seen = append(s.seen, make([]uint64, len(s.seen)+1024)...)
		}
		fresh := s.seen[w]&(1<<(seq%64)) == 0
		s.seen[w] |= 1 << (seq % 64)
		s.mu.Unlock()
		if fresh {
			s.distinct.Add(1)
			s.lastNanos.Store(time.Now().UnixNano())
		}
	}
}

func bulkMessages(ctx context.Context, c Contender, cond Condition, conn net.Conn, sink *msgSink, dur time.Duration) (Bulk, error) {
	size := int64(c.MaxMessage())
	w := startWindow(dur, func() int64 { return sink.distinct.Load() * size })
	end := time.Now().Add(dur)
	msg := make([]byte, size)
	var b Bulk
	var sent, werrs int64
	for seq := uint64(0); time.Now().Before(end); seq++ {
		binary.BigEndian.PutUint64(msg[:8], seq)
		if _, err := conn.Write(msg); err != nil {
			// ICMP errors from a briefly unreachable port surface as write
			// errors on connected UDP sockets; a lost message is a lost
			// message, but a conn that only fails is broken.
			if werrs++; werrs > 1000 || errors.Is(err, net.ErrClosed) {
				return b, fmt.Errorf("write: %w", err)
			}
			continue
		}
		sent++
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return b, ctx.Err()
	}
	// Count what is still in the relay's queue and the socket buffers:
	// wait until nothing new has arrived for a while.
	sink.lastNanos.Store(time.Now().UnixNano())
	idle := 300*time.Millisecond + 4*cond.RTT()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case now := <-tick.C:
			if now.Sub(time.Unix(0, sink.lastNanos.Load())) > idle {
				break wait
			}
		}
	}
	b.Sent = sent * size
	b.Delivered = sink.distinct.Load() * size
	b.Drained = true
	b.finish(w, dur)
	if b.Delivered == 0 {
		return b, errors.New("nothing delivered")
	}
	return b, nil
}

// MeasureLatency runs closed-loop request/response exchanges of size bytes
// for dur (at most maxSamples) on one conn and summarises the round-trip
// times. For a message contender a request whose echo does not come back
// within the per-request timeout is counted as lost, not as a latency.
func MeasureLatency(ctx context.Context, c Contender, cond Condition, seed int64, size int, dur time.Duration, maxSamples int) (Latency, error) {
	if !c.Reliable() && size > c.MaxMessage() {
		return Latency{}, fmt.Errorf("message of %d bytes exceeds %s's %d", size, c.Name(), c.MaxMessage())
	}
	if size < 8 {
		return Latency{}, fmt.Errorf("message of %d bytes too small", size)
	}
	l, err := openLink(c, cond, seed, echoHandler(c))
	if err != nil {
		return Latency{}, err
	}
	defer l.Close()
	conn, err := l.dial(ctx)
	if err != nil {
		return Latency{}, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()

	rt := newRoundTripper(c, cond, conn, size)
	// Warm up: the first exchanges pay for slow start, lazy allocations
	// and the server's end of the handshake.
	for i := 0; i < 5; i++ {
		if _, ok, err := rt.do(ctx); err != nil {
			return Latency{}, err
		} else if !ok && ctx.Err() != nil {
			return Latency{}, ctx.Err()
		}
	}
	samples := make([]time.Duration, 0, min(maxSamples, 1<<16))
	lost := 0
	cpu := startCPU()
	end := time.Now().Add(dur)
	for len(samples) < maxSamples && time.Now().Before(end) {
		d, ok, err := rt.do(ctx)
		if err != nil {
			return Summarize(samples, lost), err
		}
		if !ok {
			if ctx.Err() != nil {
				return Summarize(samples, lost), ctx.Err()
			}
			lost++
			continue
		}
		samples = append(samples, d)
	}
	if len(samples) == 0 {
		return Summarize(samples, lost), errors.New("no request was answered")
	}
	lat := Summarize(samples, lost)
	lat.CPUPerRT = cpu.perExchange(len(samples) + lost)
	return lat, nil
}

// roundTripper sends one request and waits for its echo.
type roundTripper struct {
	c       Contender
	conn    net.Conn
	req     []byte
	resp    []byte
	seq     uint64
	timeout time.Duration
}

func newRoundTripper(c Contender, cond Condition, conn net.Conn, size int) *roundTripper {
	respSize := size
	if !c.Reliable() {
		respSize = c.MaxMessage() + 1
	}
	return &roundTripper{
		c: c, conn: conn,
		req:  make([]byte, size),
		resp: make([]byte, respSize),
		// A reply later than this is counted as lost. 250 ms is ~10× the
		// slowest RTT in the table and far above any clean-path latency.
		timeout: max(250*time.Millisecond, 10*cond.RTT()),
	}
}

// do returns the round-trip time, ok=false when a message contender's
// request or reply was lost, and an error when the conn broke.
func (r *roundTripper) do(ctx context.Context) (time.Duration, bool, error) {
	r.seq++
	binary.BigEndian.PutUint64(r.req[:8], r.seq)
	t0 := time.Now()
	if r.c.Reliable() {
		if _, err := r.conn.Write(r.req); err != nil {
			return 0, false, err
		}
		if _, err := io.ReadFull(r.conn, r.resp); err != nil {
			return 0, false, err
		}
		if binary.BigEndian.Uint64(r.resp[:8]) != r.seq {
			return 0, false, errors.New("echo out of order")
		}
		return time.Since(t0), true, nil
	}
	if _, err := r.conn.Write(r.req); err != nil && errors.Is(err, net.ErrClosed) {
		return 0, false, err
	}
	deadline := t0.Add(r.timeout)
	if err := r.conn.SetReadDeadline(deadline); err != nil {
		return 0, false, err
	}
	defer r.conn.SetReadDeadline(time.Time{})
	for {
		n, err := r.conn.Read(r.resp)
		if err != nil {
			if isTimeout(err) {
				return 0, false, nil
			}
			if ctx.Err() != nil {
				return 0, false, ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return 0, false, err
			}
			// Connected UDP reports ICMP errors on Read; treat as a loss.
			if time.Now().After(deadline) {
				return 0, false, nil
			}
			continue
		}
		if n == len(r.req) && binary.BigEndian.Uint64(r.resp[:8]) == r.seq {
			return time.Since(t0), true, nil
		}
		// A late echo of an earlier request (already counted lost) or a
		// duplicate: keep waiting for ours.
	}
}

// MeasureHandshake measures, count times (within budget), the time from
// starting to dial a new conn to reading the first echoed byte. Dials
// that fail or time out are counted in Latency.Lost.
func MeasureHandshake(ctx context.Context, c Contender, cond Condition, seed int64, count int, budget time.Duration) (Latency, error) {
	l, err := openLink(c, cond, seed, echoHandler(c))
	if err != nil {
		return Latency{}, err
	}
	defer l.Close()
	var samples []time.Duration
	failed := 0
	var lastErr error
	end := time.Now().Add(budget)
	for i := 0; i < count && time.Now().Before(end) && ctx.Err() == nil; i++ {
		d, err := handshakeOnce(ctx, l, cond)
		if err != nil {
			failed++
			lastErr = err
			continue
		}
		samples = append(samples, d)
	}
	lat := Summarize(samples, failed)
	if len(samples) == 0 {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		return lat, fmt.Errorf("no handshake completed: %w", lastErr)
	}
	return lat, nil
}

// handshakeTimeout bounds one dial-and-echo.
const handshakeTimeout = 10 * time.Second

func handshakeOnce(ctx context.Context, l *link, cond Condition) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	t0 := time.Now()
	conn, err := l.dial(ctx)
	if err != nil {
		return 0, err
	}
	stop := closeOnDone(ctx, conn)
	err = firstEcho(ctx, l.c, cond, conn)
	d := time.Since(t0)
	stop()
	l.closeAsync(conn)
	return d, err
}

// firstEcho sends one byte (a message contender retries until its echo
// arrives or ctx ends: losing the first message is part of what it costs
// to get going on a lossy link) and waits for it to come back.
func firstEcho(ctx context.Context, c Contender, cond Condition, conn net.Conn) error {
	if c.Reliable() {
		if _, err := conn.Write([]byte{'x'}); err != nil {
			return err
		}
		var b [1]byte
		_, err := io.ReadFull(conn, b[:])
		return err
	}
	retry := max(250*time.Millisecond, 10*cond.RTT())
	buf := make([]byte, c.MaxMessage()+1)
	for ctx.Err() == nil {
		if _, err := conn.Write([]byte{'x'}); err != nil && errors.Is(err, net.ErrClosed) {
			return err
		}
		if err := conn.SetReadDeadline(time.Now().Add(retry)); err != nil {
			return err
		}
		n, err := conn.Read(buf)
		if err == nil && n == 1 {
			return nil
		}
		if err != nil && !isTimeout(err) && (errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)) {
			return err
		}
	}
	return ctx.Err()
}
