package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// LoadedPing is one ping-under-load measurement (issue 9): while a bulk upload of the
// contender fills a bottleneck, a second session of the same contender pings through the same
// queue. A controller that keeps the queue short keeps the ping near the idle figure.
type LoadedPing struct {
	// Idle is the ping alone on the path, before the upload starts; Loaded is the ping
	// while the upload runs (after its warm-up).
	Idle   Latency `json:"idle"`
	Loaded Latency `json:"loaded"`
	// MBps is the upload's goodput while Loaded was measured, and Utilisation that goodput
	// as a fraction of the bottleneck's rate.
	MBps        float64 `json:"mb_per_s"`
	Utilisation float64 `json:"utilisation"`
}

// loadedPingSize is the ping's request and response: rr64's.
const loadedPingSize = 64

// loadedApplicable reports whether the ping-under-load metric applies: a bottleneck to queue
// in, and a contender the shared relay can carry.
func loadedApplicable(c Contender, cond Condition) (bool, string) {
	if cond.Up.RateBits <= 0 {
		return false, "n/a: no bottleneck (ping under load needs a rate-limited link)"
	}
	return sharedApplicable(c, cond)
}

// MeasureLoadedPing pings (64 B, closed loop, as rr64) for idle through cond's links shared
// by two sessions of c, then starts a bulk upload on the other session and, after warmup,
// pings for dur more. The ping's p50/p99 while loaded against the idle figure is the queue the
// upload's congestion controller keeps.
func MeasureLoadedPing(ctx context.Context, c Contender, cond Condition, seed int64, idle, warmup, dur time.Duration) (LoadedPing, error) {
	var res LoadedPing
	sink := &streamSink{done: make(chan struct{})}
	sp, err := openSharedPath([]Contender{c, c}, cond, seed, []func(net.Conn){sink.run, echoHandler(c)})
	if err != nil {
		return res, err
	}
	defer sp.Close()
	pingConn, err := sp.dial(ctx, 1)
	if err != nil {
		return res, fmt.Errorf("dial the ping session: %w", err)
	}
	defer pingConn.Close()
	defer closeOnDone(ctx, pingConn)()
	rt := newRoundTripper(c, cond, pingConn, loadedPingSize)
	ping := func(d time.Duration) ([]time.Duration, error) {
		var samples []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			rtt, ok, err := rt.do(ctx)
			if err != nil {
				return samples, err
			}
			if !ok {
				return samples, errors.New("ping not answered")
			}
			samples = append(samples, rtt)
		}
		return samples, nil
	}
	if _, err := ping(5 * cond.RTT()); err != nil { // warm-up, as MeasureLatency's
		return res, err
	}
	idleRTTs, err := ping(idle)
	if err != nil {
		return res, err
	}
	res.Idle = Summarize(idleRTTs, 0)

	bulkConn, err := sp.dial(ctx, 0)
	if err != nil {
		return res, fmt.Errorf("dial the bulk session: %w", err)
	}
	stop := make(chan struct{})
	go writeBulk(bulkConn, stop)
	defer func() {
		// Closing unblocks a writer stuck on a full window; it is not waited for: some
		// contenders (quic-go) return from a blocked Write only later.
		close(stop)
		bulkConn.Close()
	}()
	if _, err := ping(warmup); err != nil {
		return res, err
	}
	t0, b0 := time.Now(), sink.bytes.Load()
	loaded, err := ping(dur)
	if err != nil {
		return res, err
	}
	res.Loaded = Summarize(loaded, 0)
	res.MBps = float64(sink.bytes.Load()-b0) / time.Since(t0).Seconds() / 1e6
	res.Utilisation = res.MBps * 1e6 * 8 / float64(cond.Up.RateBits)
	if len(idleRTTs) == 0 || len(loaded) == 0 {
		return res, errors.New("no ping was answered")
	}
	return res, nil
}

// writeLoadedPing writes the ping-under-load table: one column per rate-limited condition.
func writeLoadedPing(b *strings.Builder, r *Results) {
	var conds []Condition
	for _, c := range r.Conditions {
		if c.Up.RateBits > 0 {
			conds = append(conds, c)
		}
	}
	if len(conds) == 0 {
		return
	}
	fmt.Fprintf(b, "## Ping under load: 64 B p50 / p99 ms (idle p50), upload's share of the link\n\n")
	fmt.Fprintf(b, "Two sessions of the contender share the bottleneck: one pings (closed loop, as rr64) alone for a while, then while the other uploads as fast as it can (after 1 s of warm-up, for the bulk window). The ping's rise over its idle figure is the queue the upload's congestion control keeps.\n\n| contender |")
	for _, c := range conds {
		fmt.Fprintf(b, " %s |", c.Name)
	}
	fmt.Fprintf(b, "\n|---|%s\n", strings.Repeat("---:|", len(conds)))
	for _, c := range r.Contenders {
		fmt.Fprintf(b, "| %s |", c.Name)
		for _, cond := range conds {
			fmt.Fprintf(b, " %s |", cellText(r.Cell(c.Name, cond.Name, MetricLoadedPing), func(s *Summary) string {
				return fmt.Sprintf("%s / %s (%s), %s", fms(s.P50), fms(s.P99), fms(s.IdleP50), pct(s.Utilisation))
			}))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
