package simnet

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/session/congestion"
)

const link50 = 50_000_000 / 8 // bytes per second

// sharedBottleneck is 50 Mbit/s with a one-BDP drop-tail queue at 20 ms RTT: the bench's
// rtt20-50mbit. Seed 0 is that path exactly, jitter-free: one trajectory, the one the scenarios
// were calibrated with. Other seeds add what a real path (and the bench's relay on a busy host)
// has: 1 ms of jitter each way, which scatters the delivery-rate samples by several percent as
// ACK batching does — so each seed takes a trajectory of its own.
func sharedBottleneck(seed int64) (up, down impair.Config) {
	up = impair.Config{Delay: 10 * time.Millisecond, Rate: 50_000_000, QueueBytes: 125_000}
	down = impair.Config{Delay: 10 * time.Millisecond}
	if seed != 0 {
		up.Jitter, down.Jitter = time.Millisecond, time.Millisecond
	}
	return up, down
}

// flowSeeds is the number of seeds of the multi-flow tests: 1 by default, none with -short (they
// simulate tens of megabytes), more with -simnet.seeds.
func flowSeeds(t *testing.T) int64 {
	if *flagSeeds > 0 {
		return int64(*flagSeeds)
	}
	if testing.Short() {
		t.Skip("long multi-flow simulation")
	}
	return 1
}

// withCC is a flow's config: the controller under test, and 1200-byte datagrams from the start
// (no path MTU search), the size these scenarios were calibrated with. On the jitter-free path
// (seed 0) one trajectory decides each figure; the MTU search once moved
// TestBBRFollowsAnRTTChange's 60 → 20 ms case from 94% to 58% of the link. With the controller
// of issue 9's second round it gives 95–97% either way, MTU search on or off; with jitter the
// 20 → 60 ms case gave 33–94% from 6 s to 9 s (the raised RTT read as a standing queue until
// ProbeRTT measured it) until bbr.probeRTTSoon: 93–96% over 30 seeds (TestBBRRouteChangeRTTRise).
func withCC(ctl func(int) congestion.Controller) *session.Config {
	return &session.Config{Congestion: ctl, MaxDatagramSize: 1200}
}

// twoFlows runs flows a and b (b starting 500 ms later) through the shared bottleneck and returns
// their shares of what was delivered from 3 s to 9 s, and the link's utilisation then.
func twoFlows(t *testing.T, name string, a, b func(int) congestion.Controller, seed int64) ([]float64, float64) {
	t.Helper()
	up, down := sharedBottleneck(seed)
	const n = 40 << 20
	s := FlowsScenario{Name: name, Up: up, Down: down, Limit: 120 * time.Second, Sample: 100 * time.Millisecond,
		Flows: []Flow{{Config: withCC(a), ClientBytes: n}, {Config: withCC(b), ClientBytes: n, Start: 500 * time.Millisecond}}}
	res, err := RunFlows(s, seed)
	require.NoError(t, err)
	shares, rate := res.Share(s.Sample, 3*time.Second, 9*time.Second)
	require.Len(t, shares, 2)
	t.Logf("%s seed %d: shares %.2f / %.2f, link %.0f%%", name, seed, shares[0], shares[1], 100*rate/link50)
	return shares, rate / link50
}

// TestFairnessTwoFlows: two flows through one 50 Mbit/s bottleneck with a one-BDP queue, the
// second starting 500 ms after the first, from 3 s to 9 s. Issue 9's goals are 40–60% for two BBR
// flows and at least 35% left to a CUBIC flow. Seed 0 is the jitter-free path, other seeds add
// jitter (sharedBottleneck). Over 50 seeds a CUBIC flow keeps 0.38–0.68 against BBR, either way
// round (BBR, yielding to CUBIC's queue, 0.30 at the least); of two BBR flows the smaller gets
// 0.35–0.47, median 0.44; of two CUBIC flows 0.33–0.47. Over seeds 0–29 with probeRTTSoon, the
// smaller of two BBR flows gets 0.38–0.50 (median 0.44; the late flow is the smaller one), the
// link 93–96%: issue 9's 40% is not reached on every seed yet. Why: each ProbeBW cycle forgets
// bwQueue, so the early flow cruises at its maximum of samples from when it had the link to
// itself, and the first standing queue of the cycle measures both flows' rates in the
// proportion of their estimates. Keeping the bound across cycles gave 0.41–0.50 but left BBR
// 0.22 against a CUBIC flow, which takes what BBR yields.
//
// BBR joining a CUBIC flow used to take about three quarters (0.26 left to CUBIC): CUBIC's queue
// was no signal to it, only the overflow's losses were, and its estimate of the bottleneck (a
// maximum of delivery-rate samples) stayed at the whole link's. Cruise now drains a standing
// queue, measuring its own rate while it does (bbr.drainStandingQueue), and so leaves room to a
// loss-based flow until that flow overflows the queue and backs off.
func TestFairnessTwoFlows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a, b     func(int) congestion.Controller
		minShare float64 // the smaller share, at least
		cubic    int     // the CUBIC flow against BBR, -1 if none: it keeps issue 9's 35%
		minLink  float64
	}{
		{"bbr-bbr", congestion.NewBBR, congestion.NewBBR, 0.36, -1, 0.90},
		{"bbr-then-cubic", congestion.NewBBR, congestion.NewCubic, 0.28, 1, 0.93},
		{"cubic-then-bbr", congestion.NewCubic, congestion.NewBBR, 0.28, 0, 0.93},
		{"cubic-cubic", congestion.NewCubic, congestion.NewCubic, 0.30, -1, 0.93},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := range flowSeeds(t) {
				shares, link := twoFlows(t, tc.name, tc.a, tc.b, seed)
				require.GreaterOrEqual(t, min(shares[0], shares[1]), tc.minShare, "seed %d", seed)
				if tc.cubic >= 0 {
					require.GreaterOrEqual(t, shares[tc.cubic], 0.35, "seed %d: CUBIC's share", seed)
				}
				require.GreaterOrEqual(t, link, tc.minLink, "seed %d", seed)
			}
		})
	}
}

// TestBBRUnderPolicer: behind a 20 Mbit/s policer (a token bucket that drops above the rate, with
// no queue to fill) on a 200 Mbit/s path, BBR settles near the policed rate and does not keep
// probing into it: issue 9 wants the loss at most 5%. A loss-based controller reads every drop
// as congestion; BBR's heavy-loss rule (20% of a sample) sees the policer only when it probes
// far past it, and before checkPolicer bounded the rate by what a lossy sample delivered, BBR
// cruised a little above the policed rate and lost 8–10% (86–90% of the rate). Seeds other
// than 0 add 1 ms of jitter each way.
func TestBBRUnderPolicer(t *testing.T) {
	const policed = 20_000_000 / 8
	var dropped []float64
	for seed := range flowSeeds(t) {
		up := impair.Config{Delay: 10 * time.Millisecond, Rate: 200_000_000, QueueBytes: 500_000, PoliceRate: policed * 8}
		down := impair.Config{Delay: 10 * time.Millisecond}
		if seed != 0 {
			up.Jitter, down.Jitter = time.Millisecond, time.Millisecond
		}
		s := FlowsScenario{Name: "policer", Up: up, Down: down, Limit: 120 * time.Second, Sample: 100 * time.Millisecond,
			Flows: []Flow{{Config: withCC(congestion.NewBBR), ClientBytes: 30 << 20}}}
		res, err := RunFlows(s, seed)
		require.NoError(t, err)
		_, rate := res.Share(s.Sample, 2*time.Second, 10*time.Second)
		drops := float64(res.Up.PoliceDrops) / float64(res.Up.Sent)
		t.Logf("seed %d: %.0f%% of the policed rate, the policer dropped %.1f%%", seed, 100*rate/policed, 100*drops)
		require.InDelta(t, 0.95, rate/policed, 0.05, "seed %d: goodput near the policed rate", seed)
		// The drops count the whole run, Startup's overshoot at 2.77 times the rate included.
		require.Less(t, drops, 0.07, "seed %d: what the policer dropped", seed)
		dropped = append(dropped, drops)
	}
	require.Less(t, median(dropped), 0.05, "what the policer dropped, median over the seeds")
}

// rttChange runs a BBR upload over a 50 Mbit/s bottleneck (sharedBottleneck(seed), with a
// one-BDP queue) whose one-way delay moves from `from` to `to` 3 s in, and returns the link's
// utilisation from 2 s to 3 s and from 6 s to 9 s.
func rttChange(t *testing.T, from, to time.Duration, seed int64) (before, after float64) {
	t.Helper()
	up, down := sharedBottleneck(seed)
	up.Delay, down.Delay = from, from
	up.QueueBytes = 125_000 * int(from/(10*time.Millisecond))
	up2, down2 := up, down
	up2.Delay, down2.Delay = to, to
	up2.QueueBytes = 125_000 * int(to/(10*time.Millisecond))
	s := FlowsScenario{Name: "rtt-change", Up: up, Down: down, Limit: 120 * time.Second, Sample: 100 * time.Millisecond,
		ChangeAt: 3 * time.Second, UpAfter: up2, DownAfter: down2,
		Flows: []Flow{{Config: withCC(congestion.NewBBR), ClientBytes: 64 << 20}}}
	res, err := RunFlows(s, seed)
	require.NoError(t, err)
	_, b := res.Share(s.Sample, 2*time.Second, 3*time.Second)
	_, a := res.Share(s.Sample, 6*time.Second, 9*time.Second)
	t.Logf("seed %d: RTT %v → %v: %.0f%% of the link before, %.0f%% from 6 s to 9 s", seed, 2*from, 2*to, 100*b/link50, 100*a/link50)
	return b / link50, a / link50
}

// TestBBRFollowsAnRTTChange: a route change from 20 to 60 ms RTT (and back) 3 s into a transfer
// over a 50 Mbit/s bottleneck. BBR must not stay stuck on the old min_rtt: ProbeRTT measures the
// new one (or, when the RTT fell, the first sample does), and from 6 s on the link is mostly
// full again.
func TestBBRFollowsAnRTTChange(t *testing.T) {
	flowSeeds(t)
	for _, ch := range []struct{ from, to time.Duration }{{10 * time.Millisecond, 30 * time.Millisecond}, {30 * time.Millisecond, 10 * time.Millisecond}} {
		before, after := rttChange(t, ch.from, ch.to, 0)
		require.GreaterOrEqual(t, before, 0.85)
		require.GreaterOrEqual(t, after, 0.75)
	}
}

// TestBBRRouteChangeDoesNotCollapse: with jitter (seed 3), the RTT falling from 60 to 20 ms
// delivered the packets of both routes at once; the delivery-rate samples of that burst raised
// the estimate to twice the link, the next probe lost most of a round, and bw_lo, cut to 0.7 of
// the round's delivery rate — next to nothing — left the flow at 1% of the link for seconds.
// onCongestion now cuts a bound by at most half per sample.
func TestBBRRouteChangeDoesNotCollapse(t *testing.T) {
	flowSeeds(t)
	_, after := rttChange(t, 30*time.Millisecond, 10*time.Millisecond, 3)
	require.GreaterOrEqual(t, after, 0.75)
}

// TestBBRAppLimited: an application writing 1 MB/s through a 50 Mbit/s bottleneck gets its
// 1 MB/s, its delivery-rate samples (app-limited) do not hold the path, and a bulk flow
// that starts later takes the rest.
func TestBBRAppLimited(t *testing.T) {
	flowSeeds(t)
	up, down := sharedBottleneck(0)
	s := FlowsScenario{Name: "app-limited", Up: up, Down: down, Limit: 120 * time.Second, Sample: 100 * time.Millisecond,
		Flows: []Flow{
			{Config: withCC(congestion.NewBBR), ClientBytes: 12 << 20, AppRate: 1_000_000},
			{Config: withCC(congestion.NewBBR), ClientBytes: 40 << 20, Start: 2 * time.Second},
		}}
	res, err := RunFlows(s, 1)
	require.NoError(t, err)
	shares, rate := res.Share(s.Sample, 4*time.Second, 9*time.Second)
	t.Logf("app-limited flow %.2f MB/s, bulk flow %.2f MB/s, link %.0f%%", shares[0]*rate/1e6, shares[1]*rate/1e6, 100*rate/link50)
	require.InDelta(t, 1.0, shares[0]*rate/1e6, 0.1, "the application's rate")
	require.GreaterOrEqual(t, rate/link50, 0.85)
	// Full-sized datagrams: an app-limited sender does not fragment its data.
	require.Less(t, res.Client[0].DatagramsSent, uint64(12<<20)/1000)
}

// pingUnderLoad runs a ping flow (64 B, closed loop) alone for a second, then with a bulk upload
// under controller cc through the same 50 Mbit/s bottleneck queue, and returns the ping's
// median round trip while idle and its p50 and p99 while loaded (from 1 s after the upload
// started until it is nearly done), and the link's utilisation then.
func pingUnderLoad(t *testing.T, cc func(int) congestion.Controller, seed int64) (idle, p50, p99 time.Duration, link float64) {
	t.Helper()
	up, down := sharedBottleneck(seed)
	const bulkStart, from, to = time.Second, 2 * time.Second, 8 * time.Second
	s := FlowsScenario{Name: "ping-under-load", Up: up, Down: down, Limit: 60 * time.Second, Sample: 100 * time.Millisecond,
		Flows: []Flow{
			{Config: withCC(cc), ClientBytes: 48 << 20, Start: bulkStart},
			{Config: withCC(congestion.NewBBR), Pings: 450},
		}}
	res, err := RunFlows(s, seed)
	require.NoError(t, err)
	var idleRTT, loaded []time.Duration
	for _, p := range res.Pings[1] {
		switch {
		case p.At+p.RTT < bulkStart:
			idleRTT = append(idleRTT, p.RTT)
		case p.At >= from && p.At < to:
			loaded = append(loaded, p.RTT)
		}
	}
	require.NotEmpty(t, idleRTT)
	require.Greater(t, len(loaded), 100, "pings while loaded")
	_, rate := res.Share(s.Sample, from, to)
	return percentile(idleRTT, 50), percentile(loaded, 50), percentile(loaded, 99), rate / link50
}

// percentile returns the p-th percentile of d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// TestPingUnderLoad: a second session pings through the 50 Mbit/s bottleneck while a BBR upload
// fills it. Issue 9's goal for the bench's rtt20-50mbit (base ≈ 21.5 ms): ping p50 ≤ 25 ms and
// p99 ≤ 30 ms, that is base + 3.5 and base + 8.5 ms, where base is the idle ping measured in the
// same run, with the upload at ≥ 95% of the link. Seeds 1 and 2 add jitter, which scatters the
// delivery-rate samples as a real host does: the estimate then runs a few percent above the
// bottleneck, and before Cruise drained standing queues the ping rose by 6–10 ms (p50) and
// 14–18 ms (p99) on them. CUBIC, filling the queue until it overflows, must show the difference.
func TestPingUnderLoad(t *testing.T) {
	seeds := flowSeeds(t)
	if *flagSeeds == 0 {
		seeds = 3
	}
	var p99s []float64
	for seed := range seeds {
		idle, p50, p99, link := pingUnderLoad(t, congestion.NewBBR, seed)
		t.Logf("BBR seed %d: idle ping %v, under load p50 %v p99 %v, link %.1f%%", seed, idle, p50, p99, 100*link)
		require.LessOrEqual(t, p50, idle+3500*time.Microsecond, "seed %d: ping p50 under load", seed)
		// A p99 of a few hundred pings is their third or fourth highest: one probe's queue on
		// top of the jitter. The goal is asserted on the median over the seeds; each seed
		// stays well below where it was before Cruise drained standing queues (14–18 ms).
		require.LessOrEqual(t, p99, idle+11*time.Millisecond, "seed %d: ping p99 under load", seed)
		require.GreaterOrEqual(t, link, 0.95, "seed %d: the upload fills the link (issue 9: ≥ 95%%)", seed)
		p99s = append(p99s, float64(p99-idle))
	}
	require.LessOrEqual(t, median(p99s), float64(8500*time.Microsecond), "ping p99 under load, median over the seeds")
	idle, p50, p99, link := pingUnderLoad(t, congestion.NewCubic, 0)
	t.Logf("CUBIC: idle ping %v, under load p50 %v p99 %v, link %.1f%%", idle, p50, p99, 100*link)
	require.Greater(t, p50, idle+8*time.Millisecond, "the test must tell a full queue from a short one")
}

// TestBBRRouteChangeRTTRise: the RTT rising from 20 to 60 ms 3 s into a transfer over the 50
// Mbit/s bottleneck, with jitter (seeds 1 and up; sharedBottleneck). The higher RTT first looks
// like a standing queue; BBR must learn it as the new min_rtt rather than drain an empty queue
// until ProbeRTT, and fill the link from 6 s to 9 s.
func TestBBRRouteChangeRTTRise(t *testing.T) {
	seeds := flowSeeds(t)
	if *flagSeeds == 0 {
		seeds = 3
	}
	var afters []float64
	for seed := int64(1); seed <= seeds; seed++ {
		_, after := rttChange(t, 10*time.Millisecond, 30*time.Millisecond, seed)
		// Before ProbeRTT was brought forward: 0.33–0.94 (median 0.58) over 30 seeds; now
		// 0.93–0.96.
		require.GreaterOrEqual(t, after, 0.85, "seed %d", seed)
		afters = append(afters, after)
	}
	t.Logf("20 → 60 ms with jitter, link from 6 s to 9 s: min %.2f median %.2f max %.2f", slices.Min(afters), median(afters), slices.Max(afters))
}
