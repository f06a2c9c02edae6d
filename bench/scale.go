package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Idle is the memory cost of established, idle sessions.
type Idle struct {
	Sessions int `json:"sessions"`
	// BytesPerSession is the growth of live heap plus goroutine stacks per
	// session, counting both the client and the server end (they share
	// this process). Kernel socket buffers are not included.
	BytesPerSession      float64 `json:"bytes_per_session"`
	GoroutinesPerSession float64 `json:"goroutines_per_session"`
}

func liveBytes() (uint64, int) {
	// Two collections: the first may only finish sweeping what the
	// previous cycle found dead, and sync.Pools keep a victim cache for
	// one cycle.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse, runtime.NumGoroutine()
}

// settle waits (at most 3 s) until the number of goroutines stops
// changing: conns of the previous measurement may still be in their
// closing period, and would otherwise be freed in the middle of this one.
func settle() {
	last := runtime.NumGoroutine()
	stable := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && stable < 3; {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
	}
}

// idleQuiet is how long MeasureIdle leaves sessions quiet before it measures them.
const idleQuiet = 2500 * time.Millisecond

// MeasureIdle opens 2n sessions against one listener, each proven
// established by one echo, and reports what the second n cost while idle.
// Taking the slope between n and 2n sessions leaves out one-time costs
// (listener buffers, pools, lazily initialised globals) that the first
// sessions would otherwise be charged with.
func MeasureIdle(ctx context.Context, c Contender, n int) (Idle, error) {
	settle()
	l, err := openLink(c, Conditions[0], 1, echoHandler(c))
	if err != nil {
		return Idle{}, err
	}
	defer l.Close()
	conns := make([]net.Conn, 0, 2*n)
	defer func() {
		for _, conn := range conns {
			l.closeAsync(conn)
		}
	}()
	open := func() error {
		for i := 0; i < n; i++ {
			conn, err := dialEcho(ctx, l, Conditions[0])
			if err != nil {
				return fmt.Errorf("session %d: %w", len(conns), err)
			}
			conns = append(conns, conn)
		}
		// Idle means quiet for a while: an implementation may give back what a session
		// holds once it has been quiet (tlsgram's dialled sockets park their readers after
		// 1-2 s), and what is measured is the steady idle state, not the last echo's wake.
		quiet := time.NewTimer(idleQuiet)
		<-quiet.C
		settle()
		return nil
	}
	if err := open(); err != nil {
		return Idle{}, err
	}
	mem0, g0 := liveBytes()
	if err := open(); err != nil {
		return Idle{}, err
	}
	mem1, g1 := liveBytes()
	return Idle{
		Sessions:             n,
		BytesPerSession:      (float64(mem1) - float64(mem0)) / float64(n),
		GoroutinesPerSession: float64(g1-g0) / float64(n),
	}, nil
}

func dialEcho(ctx context.Context, l *link, cond Condition) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := closeOnDone(ctx, conn)
	err = firstEcho(ctx, l.c, cond, conn)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return conn, nil
}

// Rate is the number of full handshakes (dial, one echoed byte, close) a
// listener completes per second, with the clients in the same process.
type Rate struct {
	Sequential float64 `json:"sequential_per_s"`
	Parallel   float64 `json:"parallel_per_s"`
	Workers    int     `json:"parallel_workers"`
	Failed     int     `json:"failed"`
}

// MeasureRate runs handshakes for dur one after another, then for dur
// from workers concurrent clients.
func MeasureRate(ctx context.Context, c Contender, dur time.Duration, workers int) (Rate, error) {
	l, err := openLink(c, Conditions[0], 1, echoHandler(c))
	if err != nil {
		return Rate{}, err
	}
	defer l.Close()
	r := Rate{Workers: workers}
	// Only handshakes completed within the window count, and the rate is
	// per window: one client stuck in a retransmission timeout delays the
	// end of the run but does not dilute the others' rate.
	run := func(w int) float64 {
		var ok, failed atomic.Int64
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		for i := 0; i < w; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) && ctx.Err() == nil {
					conn, err := dialEcho(ctx, l, Conditions[0])
					if err != nil {
						failed.Add(1)
						continue
					}
					l.closeAsync(conn)
					if !time.Now().After(end) {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		r.Failed += int(failed.Load())
		return float64(ok.Load()) / dur.Seconds()
	}
	r.Sequential = run(1)
	r.Parallel = run(workers)
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if r.Sequential == 0 {
		return r, errors.New("no handshake completed")
	}
	return r, nil
}

// Concurrent is the outcome of many clients connecting at once.
type Concurrent struct {
	Target int `json:"target"`
	OK     int `json:"ok"`
	// Seconds is the time until the last successful client had its echo.
	Seconds float64 `json:"seconds"`
	// P50 and P99 are per-client times from dial to echo, in milliseconds.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	// FirstError is the first failure, for the report.
	FirstError string `json:"first_error,omitempty"`
	// Listener holds the listener's counters, if it keeps any.
	Listener any `json:"listener_stats,omitempty"`
}

// MeasureConcurrent starts n clients at once against one listener; each
// dials, echoes 64 bytes and stays open until all are done, so n sessions
// are alive together at the end.
func MeasureConcurrent(ctx context.Context, c Contender, n int, timeout time.Duration) (Concurrent, error) {
	l, err := openLink(c, Conditions[0], 1, echoHandler(c))
	if err != nil {
		return Concurrent{}, err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu       sync.Mutex // guards times, conns, firstErr
		times    []time.Duration
		conns    []net.Conn
		firstErr error
		lastOK   time.Time
		wg       sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			conn, err := l.dial(ctx)
			if err == nil {
				stop := closeOnDone(ctx, conn)
				rt := newRoundTripper(c, Conditions[0], conn, 64)
				var ok bool
				// A message contender may lose the datagram in a full
				// socket buffer: retry like a real client would.
				for tries := 0; tries < 20 && err == nil && !ok && ctx.Err() == nil; tries++ {
					_, ok, err = rt.do(ctx)
				}
				if err == nil && !ok {
					err = errors.New("echo lost 20 times")
				}
				if err == nil && !stop() {
					err = ctx.Err()
				}
				if err != nil {
					conn.Close()
				}
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			times = append(times, d)
			conns = append(conns, conn)
			lastOK = time.Now()
		}()
	}
	wg.Wait()
	res := Concurrent{Target: n, OK: len(times)}
	if sp, ok := l.ln.(ListenerStatsProvider); ok {
		res.Listener = sp.ListenerStats()
	}
	for _, conn := range conns {
		l.closeAsync(conn)
	}
	if len(times) > 0 {
		slices.Sort(times)
		res.Seconds = lastOK.Sub(start).Seconds()
		res.P50 = float64(Percentile(times, 0.5)) / float64(time.Millisecond)
		res.P99 = float64(Percentile(times, 0.99)) / float64(time.Millisecond)
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if res.OK == 0 {
		return res, fmt.Errorf("no session succeeded: %v", firstErr)
	}
	return res, nil
}
