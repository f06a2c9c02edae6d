package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Metric names one measurement.
type Metric string

// Per-condition metrics, then the scale metrics that run on the clean link
// only: they measure what an implementation costs in CPU and memory per
// session, which a relay in the path would only blur.
const (
	MetricBulk      Metric = "bulk"
	MetricRR64      Metric = "rr64"
	MetricRR1K      Metric = "rr1k"
	MetricHandshake Metric = "handshake"
	// MetricLoadedPing is rr64 while a bulk upload shares the bottleneck (LoadedPing); it
	// applies to rate-limited conditions only.
	MetricLoadedPing Metric = "pingload"
	MetricIdle       Metric = "idle"
	MetricRate       Metric = "hsrate"
	MetricConcurrent Metric = "concurrent"
)

// AllMetrics lists every metric in run order.
var AllMetrics = []Metric{MetricBulk, MetricRR64, MetricRR1K, MetricHandshake, MetricLoadedPing, MetricIdle, MetricRate, MetricConcurrent}

func (m Metric) scale() bool { return m == MetricIdle || m == MetricRate || m == MetricConcurrent }

// Options configure a run. Quick and Full return the two presets.
type Options struct {
	Quick      bool
	Reps       int
	Contenders []Contender
	Conditions []Condition
	Metrics    []Metric

	BulkDuration    time.Duration
	DrainTimeout    time.Duration
	LatencyDuration time.Duration
	LatencySamples  int
	Handshakes      int
	HandshakeBudget time.Duration

	IdleSessions       int
	RateDuration       time.Duration
	RateWorkers        int
	ConcurrentSessions int
	ConcurrentTimeout  time.Duration

	// Budget bounds the whole run: measurements that would start after it
	// are reported as "skipped".
	Budget time.Duration
	Seed   int64
	Log    io.Writer
}

// Quick is the preset that .ci/run uses: every contender, metric and
// default condition, short enough to finish in about two minutes on two
// cores. Its numbers prove the suite works; they are noisy.
func Quick() Options {
	return Options{
		Quick:              true,
		Reps:               1,
		BulkDuration:       800 * time.Millisecond,
		DrainTimeout:       3 * time.Second,
		LatencyDuration:    300 * time.Millisecond,
		LatencySamples:     2000,
		Handshakes:         6,
		HandshakeBudget:    1500 * time.Millisecond,
		IdleSessions:       50,
		RateDuration:       400 * time.Millisecond,
		RateWorkers:        4,
		ConcurrentSessions: 200,
		ConcurrentTimeout:  20 * time.Second,
		Budget:             5 * time.Minute,
		Seed:               1,
	}
}

// Full is the preset for published numbers.
func Full() Options {
	return Options{
		Reps:               3,
		BulkDuration:       6 * time.Second,
		DrainTimeout:       15 * time.Second,
		LatencyDuration:    2 * time.Second,
		LatencySamples:     20000,
		Handshakes:         30,
		HandshakeBudget:    6 * time.Second,
		IdleSessions:       300,
		RateDuration:       2 * time.Second,
		RateWorkers:        8,
		ConcurrentSessions: 1000,
		ConcurrentTimeout:  60 * time.Second,
		Budget:             90 * time.Minute,
		Seed:               1,
	}
}

// Rep is the outcome of one repetition of one measurement.
type Rep struct {
	Status     string      `json:"status"` // ok, error, timeout
	Error      string      `json:"error,omitempty"`
	Warning    string      `json:"warning,omitempty"` // ok, but something to know (a reliable stream that did not drain in time)
	Seconds    float64     `json:"wall_seconds"`
	Bulk       *Bulk       `json:"bulk,omitempty"`
	Latency    *Latency    `json:"latency,omitempty"`
	Loaded     *LoadedPing `json:"loaded_ping,omitempty"`
	Idle       *Idle       `json:"idle,omitempty"`
	Rate       *Rate       `json:"rate,omitempty"`
	Concurrent *Concurrent `json:"concurrent,omitempty"`
}

// Summary holds the medians over the successful repetitions of a cell.
// Only the fields of the cell's metric are set.
type Summary struct {
	MBps        float64 `json:"mb_per_s,omitempty"`
	Fraction    float64 `json:"delivered_fraction,omitempty"`
	CPUPerGB    float64 `json:"cpu_s_per_gb,omitempty"`
	AllocsPerMB float64 `json:"allocs_per_mb,omitempty"`

	P50  float64 `json:"p50_ms,omitempty"`
	P99  float64 `json:"p99_ms,omitempty"`
	P999 float64 `json:"p999_ms,omitempty"`
	// CPUPerRT is the median CPU µs per request/response, both ends.
	CPUPerRT float64 `json:"cpu_us_per_rt,omitempty"`
	N        int     `json:"samples,omitempty"` // summed over repetitions
	Lost     int     `json:"lost,omitempty"`    // summed over repetitions
	// IdleP50 and Utilisation are a loaded ping's idle median and its upload's share of the
	// bottleneck (P50 and P99 are then the ping's while loaded).
	IdleP50     float64 `json:"idle_p50_ms,omitempty"`
	Utilisation float64 `json:"utilisation,omitempty"`

	IdleBytes      float64 `json:"idle_bytes_per_session,omitempty"`
	IdleGoroutines float64 `json:"idle_goroutines_per_session,omitempty"`
	IdleSessions   int     `json:"idle_sessions,omitempty"`
	RateSeq        float64 `json:"handshakes_per_s_sequential,omitempty"`
	RatePar        float64 `json:"handshakes_per_s_parallel,omitempty"`
	RateWorkers    int     `json:"parallel_workers,omitempty"`
	ConcTarget     int     `json:"concurrent_target,omitempty"`
	ConcOK         int     `json:"concurrent_ok,omitempty"` // minimum over repetitions
	ConcSeconds    float64 `json:"concurrent_seconds,omitempty"`
	ConcP50        float64 `json:"concurrent_p50_ms,omitempty"`
	ConcP99        float64 `json:"concurrent_p99_ms,omitempty"`
}

// Cell is one measurement of one contender on one condition.
type Cell struct {
	Contender string `json:"contender"`
	Condition string `json:"condition"`
	Metric    Metric `json:"metric"`
	// Status: ok (every repetition succeeded), partial (some did), error,
	// timeout, n/a (the condition cannot apply) or skipped (run budget
	// exhausted).
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
	// Warning is set when some repetition succeeded with a caveat.
	Warning string   `json:"warning,omitempty"`
	Reps    []Rep    `json:"reps,omitempty"`
	Median  *Summary `json:"median,omitempty"`
	// Ratios maps a baseline contender to the median, over repetitions,
	// of this cell's headline value divided by the baseline's value in the
	// same repetition (MB/s for bulk, p50 for latency and handshake).
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

// Meta describes the run and the machine it came from.
type Meta struct {
	Date       time.Time         `json:"date"`
	Mode       string            `json:"mode"`
	Reps       int               `json:"reps"`
	Seconds    float64           `json:"wall_seconds"`
	CPU        string            `json:"cpu"`
	Cores      int               `json:"cores"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	OS         string            `json:"os"`
	Kernel     string            `json:"kernel"`
	Go         string            `json:"go"`
	Modules    map[string]string `json:"modules"`
	Options    map[string]string `json:"options"`
}

// ContenderInfo is a contender's description as stored in the results.
type ContenderInfo struct {
	Name     string `json:"name"`
	Reliable bool   `json:"reliable"`
	Network  string `json:"network"`
	Message  int    `json:"max_message,omitempty"`
	Info
}

// Results is everything a run produced; it is what results.json holds.
type Results struct {
	Meta       Meta            `json:"meta"`
	Contenders []ContenderInfo `json:"contenders"`
	Conditions []Condition     `json:"conditions"`
	Metrics    []Metric        `json:"metrics"`
	Cells      []*Cell         `json:"cells"`
}

// Cell returns the cell for (contender, condition, metric), or nil.
func (r *Results) Cell(contender, condition string, m Metric) *Cell {
	for _, c := range r.Cells {
		if c.Contender == contender && c.Condition == condition && c.Metric == m {
			return c
		}
	}
	return nil
}

// Baselines returns the names of the baseline contenders in the run.
func (r *Results) Baselines() []string {
	var out []string
	for _, c := range r.Contenders {
		if c.Baseline {
			out = append(out, c.Name)
		}
	}
	return out
}

// Run executes every measurement and returns the results. It never blocks
// longer than opts.Budget plus one measurement's timeout.
func Run(ctx context.Context, opts Options) *Results {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Reps < 1 {
		opts.Reps = 1
	}
	if len(opts.Metrics) == 0 {
		opts.Metrics = AllMetrics
	}
	start := time.Now()
	res := &Results{Meta: meta(opts), Conditions: opts.Conditions, Metrics: opts.Metrics}
	for _, c := range opts.Contenders {
		res.Contenders = append(res.Contenders, ContenderInfo{
			Name: c.Name(), Reliable: c.Reliable(), Network: c.Network(), Message: c.MaxMessage(), Info: c.Info(),
		})
	}
	cells := map[string]*Cell{}
	cell := func(c Contender, cond Condition, m Metric) *Cell {
		k := c.Name() + "|" + cond.Name + "|" + string(m)
		if x, ok := cells[k]; ok {
			return x
		}
		x := &Cell{Contender: c.Name(), Condition: cond.Name, Metric: m}
		cells[k] = x
		res.Cells = append(res.Cells, x)
		return x
	}
	// Create cells in report order so the JSON reads naturally.
	for _, m := range opts.Metrics {
		for _, cond := range opts.Conditions {
			if m.scale() && !cond.Clean() {
				continue
			}
			for _, c := range opts.Contenders {
				cell(c, cond, m)
			}
		}
	}
	deadline := start.Add(opts.Budget)
	for rep := 0; rep < opts.Reps; rep++ {
		// Rotate the contender order each repetition so that slow drift
		// of the machine (thermal, other load) is not always charged to
		// the same contender.
		order := make([]Contender, len(opts.Contenders))
		for i := range opts.Contenders {
			order[i] = opts.Contenders[(i+rep)%len(opts.Contenders)]
		}
		for _, cond := range opts.Conditions {
			for _, c := range order {
				for _, m := range opts.Metrics {
					if m.scale() && !cond.Clean() {
						continue
					}
					x := cell(c, cond, m)
					if ok, why := applicable(c, cond, m); !ok {
						x.Status, x.Note = "n/a", why
						continue
					}
					if time.Now().After(deadline) || ctx.Err() != nil {
						continue // reported as skipped below if nothing ran
					}
					seed := opts.Seed + int64(rep)*7919
					r := guarded(ctx, timeoutFor(m, opts, cond), func(ctx context.Context) Rep {
						return measure(ctx, c, cond, m, seed, opts)
					})
					x.Reps = append(x.Reps, r)
					fmt.Fprintf(opts.Log, "rep %d/%d %-20s %-14s %-10s %s\n", rep+1, opts.Reps, cond.Name, c.Name(), m, describeRep(r))
				}
			}
		}
	}
	for _, x := range res.Cells {
		finishCell(x)
	}
	computeRatios(res)
	res.Meta.Seconds = time.Since(start).Seconds()
	return res
}

// applicable reports whether metric m can be measured for contender c on cond, and why not.
func applicable(c Contender, cond Condition, m Metric) (bool, string) {
	if m == MetricLoadedPing {
		return loadedApplicable(c, cond)
	}
	return cond.ApplicableTo(c.Network())
}

// loadedTimes are a loaded ping's phases: alone on the path, the upload's warm-up, loaded.
func loadedTimes(o Options) (idle, warmup, dur time.Duration) {
	return min(o.LatencyDuration, time.Second), time.Second, o.BulkDuration
}

func timeoutFor(m Metric, o Options, cond Condition) time.Duration {
	switch m {
	case MetricBulk:
		return o.BulkDuration + o.DrainTimeout + 15*time.Second
	case MetricRR64, MetricRR1K:
		return o.LatencyDuration + 15*time.Second
	case MetricHandshake:
		return o.HandshakeBudget + handshakeTimeout + 5*time.Second
	case MetricLoadedPing:
		idle, warmup, dur := loadedTimes(o)
		return idle + warmup + dur + 20*time.Second
	case MetricIdle:
		return 60 * time.Second
	case MetricRate:
		return 2*o.RateDuration + handshakeTimeout + 10*time.Second
	case MetricConcurrent:
		return o.ConcurrentTimeout + 10*time.Second
	}
	return time.Minute
}

// guarded runs fn under a deadline and returns even if fn never does: a
// contender that ignores its conn being closed leaks a goroutine but
// cannot stall the run. Panics inside third-party code become errors.
func guarded(parent context.Context, timeout time.Duration, fn func(context.Context) Rep) Rep {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	t0 := time.Now()
	ch := make(chan Rep, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- Rep{Status: "error", Error: fmt.Sprintf("panic: %v", p)}
			}
		}()
		ch <- fn(ctx)
	}()
	var r Rep
	select {
	case r = <-ch:
	case <-time.After(timeout + 5*time.Second):
		r = Rep{Status: "timeout", Error: "measurement did not return 5 s after its deadline"}
	}
	r.Seconds = time.Since(t0).Seconds()
	// Let conns closed by this measurement finish their goodbyes before
	// the next one measures CPU and memory.
	runtime.GC()
	return r
}

func measure(ctx context.Context, c Contender, cond Condition, m Metric, seed int64, o Options) Rep {
	var r Rep
	var err error
	switch m {
	case MetricBulk:
		var b Bulk
		b, err = MeasureBulk(ctx, c, cond, seed, o.BulkDuration, o.DrainTimeout)
		r.Bulk = &b
		if err == nil && c.Reliable() && !b.Drained {
			r.Warning = fmt.Sprintf("stream not drained: %d of %d bytes delivered %s after the window",
				b.Delivered, b.Sent, o.DrainTimeout)
		}
	case MetricRR64, MetricRR1K:
		size := 64
		if m == MetricRR1K {
			size = 1024
		}
		var l Latency
		l, err = MeasureLatency(ctx, c, cond, seed, size, o.LatencyDuration, o.LatencySamples)
		r.Latency = &l
	case MetricHandshake:
		var l Latency
		l, err = MeasureHandshake(ctx, c, cond, seed, o.Handshakes, o.HandshakeBudget)
		r.Latency = &l
	case MetricLoadedPing:
		var l LoadedPing
		idle, warmup, dur := loadedTimes(o)
		l, err = MeasureLoadedPing(ctx, c, cond, seed, idle, warmup, dur)
		r.Loaded = &l
	case MetricIdle:
		var i Idle
		i, err = MeasureIdle(ctx, c, o.IdleSessions)
		r.Idle = &i
	case MetricRate:
		var x Rate
		x, err = MeasureRate(ctx, c, o.RateDuration, o.RateWorkers)
		r.Rate = &x
	case MetricConcurrent:
		var x Concurrent
		x, err = MeasureConcurrent(ctx, c, o.ConcurrentSessions, o.ConcurrentTimeout)
		r.Concurrent = &x
	default:
		err = fmt.Errorf("unknown metric %q", m)
	}
	r.Status = "ok"
	if err != nil {
		r.Error = err.Error()
		r.Status = "error"
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			r.Status = "timeout"
		}
	}
	return r
}

func describeRep(r Rep) string {
	if r.Status != "ok" {
		return fmt.Sprintf("%s: %s (%.1fs)", r.Status, r.Error, r.Seconds)
	}
	if r.Warning != "" {
		defer func() {}()
	}
	switch {
	case r.Bulk != nil:
		return fmt.Sprintf("%.1f MB/s, delivered %.1f%% (drained %v in %.1fs), %.1f CPU s/GB (%.1fs)", r.Bulk.MBps, 100*r.Bulk.Fraction, r.Bulk.Drained, r.Bulk.DrainSeconds, r.Bulk.CPUPerGB, r.Seconds)
	case r.Latency != nil:
		return fmt.Sprintf("p50 %.3f p99 %.3f p99.9 %.3f ms, %.1f CPU µs/rt, n=%d lost=%d (%.1fs)", r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.CPUPerRT, r.Latency.N, r.Latency.Lost, r.Seconds)
	case r.Loaded != nil:
		return fmt.Sprintf("ping idle p50 %.2f, loaded p50 %.2f p99 %.2f ms (n=%d), upload %.2f MB/s = %.1f%% of the link (%.1fs)", r.Loaded.Idle.P50, r.Loaded.Loaded.P50, r.Loaded.Loaded.P99, r.Loaded.Loaded.N, r.Loaded.MBps, 100*r.Loaded.Utilisation, r.Seconds)
	case r.Idle != nil:
		return fmt.Sprintf("%.1f KiB/session, %.1f goroutines (%.1fs)", r.Idle.BytesPerSession/1024, r.Idle.GoroutinesPerSession, r.Seconds)
	case r.Rate != nil:
		return fmt.Sprintf("%.0f/s sequential, %.0f/s ×%d (%.1fs)", r.Rate.Sequential, r.Rate.Parallel, r.Rate.Workers, r.Seconds)
	case r.Concurrent != nil:
		return fmt.Sprintf("%d/%d in %.2fs (%.1fs)", r.Concurrent.OK, r.Concurrent.Target, r.Concurrent.Seconds, r.Seconds)
	}
	return "ok"
}

// finishCell sets the status and the medians of a cell.
func finishCell(x *Cell) {
	if x.Status == "n/a" {
		x.Reps = nil
		return
	}
	if len(x.Reps) == 0 {
		x.Status, x.Note = "skipped", "run budget exhausted"
		return
	}
	var ok []Rep
	var firstErr *Rep
	for _, r := range x.Reps {
		if r.Warning != "" && x.Warning == "" {
			x.Warning = r.Warning
		}
	}
	for i, r := range x.Reps {
		if r.Status == "ok" {
			ok = append(ok, r)
		} else if firstErr == nil {
			firstErr = &x.Reps[i]
		}
	}
	switch {
	case len(ok) == len(x.Reps):
		x.Status = "ok"
	case len(ok) > 0:
		x.Status = "partial"
		x.Note = fmt.Sprintf("%d of %d repetitions failed: %s", len(x.Reps)-len(ok), len(x.Reps), firstErr.Error)
	default:
		x.Status = firstErr.Status
		x.Note = firstErr.Error
		return
	}
	med := func(f func(Rep) float64) float64 {
		v := make([]float64, len(ok))
		for i, r := range ok {
			v[i] = f(r)
		}
		return Median(v)
	}
	s := &Summary{}
	switch {
	case ok[0].Bulk != nil:
		s.MBps = med(func(r Rep) float64 { return r.Bulk.MBps })
		s.Fraction = med(func(r Rep) float64 { return r.Bulk.Fraction })
		s.CPUPerGB = med(func(r Rep) float64 { return r.Bulk.CPUPerGB })
		s.AllocsPerMB = med(func(r Rep) float64 { return r.Bulk.AllocsPerMB })
	case ok[0].Latency != nil:
		s.P50 = med(func(r Rep) float64 { return r.Latency.P50 })
		s.P99 = med(func(r Rep) float64 { return r.Latency.P99 })
		s.P999 = med(func(r Rep) float64 { return r.Latency.P999 })
		s.CPUPerRT = med(func(r Rep) float64 { return r.Latency.CPUPerRT })
		for _, r := range ok {
			s.N += r.Latency.N
			s.Lost += r.Latency.Lost
		}
	case ok[0].Loaded != nil:
		s.P50 = med(func(r Rep) float64 { return r.Loaded.Loaded.P50 })
		s.P99 = med(func(r Rep) float64 { return r.Loaded.Loaded.P99 })
		s.IdleP50 = med(func(r Rep) float64 { return r.Loaded.Idle.P50 })
		s.Utilisation = med(func(r Rep) float64 { return r.Loaded.Utilisation })
		s.MBps = med(func(r Rep) float64 { return r.Loaded.MBps })
		for _, r := range ok {
			s.N += r.Loaded.Loaded.N
		}
	case ok[0].Idle != nil:
		s.IdleBytes = med(func(r Rep) float64 { return r.Idle.BytesPerSession })
		s.IdleGoroutines = med(func(r Rep) float64 { return r.Idle.GoroutinesPerSession })
		s.IdleSessions = ok[0].Idle.Sessions
	case ok[0].Rate != nil:
		s.RateSeq = med(func(r Rep) float64 { return r.Rate.Sequential })
		s.RatePar = med(func(r Rep) float64 { return r.Rate.Parallel })
		s.RateWorkers = ok[0].Rate.Workers
	case ok[0].Concurrent != nil:
		s.ConcTarget = ok[0].Concurrent.Target
		s.ConcOK = ok[0].Concurrent.OK
		for _, r := range ok {
			s.ConcOK = min(s.ConcOK, r.Concurrent.OK)
		}
		s.ConcSeconds = med(func(r Rep) float64 { return r.Concurrent.Seconds })
		s.ConcP50 = med(func(r Rep) float64 { return r.Concurrent.P50 })
		s.ConcP99 = med(func(r Rep) float64 { return r.Concurrent.P99 })
	}
	x.Median = s
}

// headline is the value a ratio compares: higher is better for bulk and
// handshake rate, lower for latencies.
func headline(m Metric, r Rep) (float64, bool) {
	if r.Status != "ok" {
		return 0, false
	}
	switch {
	case r.Bulk != nil:
		return r.Bulk.MBps, r.Bulk.MBps > 0
	case r.Latency != nil:
		return r.Latency.P50, r.Latency.N > 0 && r.Latency.P50 > 0
	case r.Loaded != nil:
		return r.Loaded.Loaded.P50, r.Loaded.Loaded.N > 0 && r.Loaded.Loaded.P50 > 0
	case r.Rate != nil:
		return r.Rate.Sequential, r.Rate.Sequential > 0
	case r.Idle != nil:
		return r.Idle.BytesPerSession, r.Idle.BytesPerSession > 0
	}
	return 0, false
}

// computeRatios fills Cell.Ratios pair by pair: repetition i of a cell is
// divided by repetition i of the baseline's cell on the same condition,
// and the median of those quotients is kept. Pairing within a repetition
// cancels drift between repetitions.
func computeRatios(res *Results) {
	for _, base := range res.Baselines() {
		for _, x := range res.Cells {
			if x.Contender == base || x.Metric == MetricConcurrent {
				continue
			}
			b := res.Cell(base, x.Condition, x.Metric)
			if b == nil {
				continue
			}
			var q []float64
			for i := 0; i < len(x.Reps) && i < len(b.Reps); i++ {
				xv, ok1 := headline(x.Metric, x.Reps[i])
				bv, ok2 := headline(b.Metric, b.Reps[i])
				if ok1 && ok2 {
					q = append(q, xv/bv)
				}
			}
			if v := Median(q); !math.IsNaN(v) {
				if x.Ratios == nil {
					x.Ratios = map[string]float64{}
				}
				x.Ratios[base] = v
			}
		}
	}
}

func meta(o Options) Meta {
	m := Meta{
		Date:       time.Now().UTC().Truncate(time.Second),
		Mode:       "full",
		Reps:       o.Reps,
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Go:         runtime.Version(),
		Modules:    map[string]string{},
		Options: map[string]string{
			"bulk_window": o.BulkDuration.String(),
			"bulk_drain":  o.DrainTimeout.String(),
			"latency":     fmt.Sprintf("%s or %d samples", o.LatencyDuration, o.LatencySamples),
			"handshakes":  fmt.Sprintf("%d within %s", o.Handshakes, o.HandshakeBudget),
			"idle":        fmt.Sprintf("%d sessions", o.IdleSessions),
			"hsrate":      fmt.Sprintf("%s sequential, %s with %d workers", o.RateDuration, o.RateDuration, o.RateWorkers),
			"concurrent":  fmt.Sprintf("%d sessions within %s", o.ConcurrentSessions, o.ConcurrentTimeout),
			"seed":        fmt.Sprint(o.Seed),
		},
	}
	if o.Quick {
		m.Mode = "quick"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/pion/dtls/v2", "github.com/quic-go/quic-go", "github.com/xtaci/kcp-go/v5":
				m.Modules[d.Path] = d.Version
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m.Modules["tlsgram"] = s.Value
			}
		}
	}
	return m
}
