package simnet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// ccSeeds is the number of seeds of the controller comparisons: 2 by default (they are long
// transfers), more with -simnet.seeds or $TLSGRAM_SIM_SEEDS.
func ccSeeds() int {
	if *flagSeeds > 0 {
		return *flagSeeds
	}
	if testing.Short() {
		return 1
	}
	return 2
}

// goodput runs a one-way upload of n bytes over path (both directions) with controller cc and
// returns its median goodput in bytes per second over the seeds, and the results.
func goodput(t *testing.T, name string, path impair.Config, n int, cc func(int) congestion.Controller) (float64, []Result) {
	t.Helper()
	sc := Scenario{Name: name, Up: path, Down: path, ClientBytes: n, Limit: 600 * time.Second,
		Config: &session.Config{Congestion: cc}}
	var rates []float64
	var results []Result
	for seed := range ccSeeds() {
		res, err := Run(sc, int64(seed))
		require.NoError(t, err)
		rates = append(rates, float64(n)/res.Elapsed.Seconds())
		results = append(results, res)
	}
	return median(rates), results
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBBRKeepsItsRateUnderRandomLoss: on a 20 ms, 100 Mbit/s path with random loss each way, BBR
// must not read the loss as congestion. Its goodput stays a large fraction of the link — where
// CUBIC, correctly for a loss-based controller, falls to the Mathis bound.
func TestBBRKeepsItsRateUnderRandomLoss(t *testing.T) {
	const link = 100_000_000 / 8 // bytes per second
	for _, tc := range []struct {
		loss     float64
		minLink  float64 // BBR's goodput as a fraction of the link, at least
		minCubic float64 // and as a multiple of CUBIC's, at least
	}{
		{0.01, 0.50, 6},
		{0.02, 0.35, 6},
		{0.05, 0.20, 6},
		{0.10, 0.10, 6},
	} {
		path := impair.Config{Delay: 10 * time.Millisecond, Loss: tc.loss, Rate: link * 8, QueueBytes: 250_000}
		bbr, _ := goodput(t, "bbr-loss", path, 8<<20, congestion.NewBBR)
		cubic, _ := goodput(t, "cubic-loss", path, 8<<20, congestion.NewCubic)
		t.Logf("loss %v: BBR %.2f MB/s (%.0f%% of the link), CUBIC %.2f MB/s: %.1f×", tc.loss, bbr/1e6, 100*bbr/link, cubic/1e6, bbr/cubic)
		require.GreaterOrEqual(t, bbr/link, tc.minLink, "loss %v", tc.loss)
		require.GreaterOrEqual(t, bbr/cubic, tc.minCubic, "loss %v", tc.loss)
	}
}

// TestBBRKeepsTheQueueShort: through a 50 Mbit/s bottleneck with a one-BDP drop-tail queue
// (20 ms RTT), BBR fills the link while the queue it keeps adds little to the RTT — where CUBIC
// fills the queue until it overflows.
func TestBBRKeepsTheQueueShort(t *testing.T) {
	const link = 50_000_000 / 8
	path := impair.Config{Delay: 10 * time.Millisecond, Rate: link * 8, QueueBytes: link / 50}
	bbr, br := goodput(t, "bbr-bottleneck", path, 16<<20, congestion.NewBBR)
	cubic, cr := goodput(t, "cubic-bottleneck", path, 16<<20, congestion.NewCubic)
	t.Logf("BBR %.2f MB/s (%.0f%% of the link), mean RTT %v; CUBIC %.2f MB/s, mean RTT %v",
		bbr/1e6, 100*bbr/link, br[0].MeanRTT, cubic/1e6, cr[0].MeanRTT)
	require.GreaterOrEqual(t, bbr/link, 0.80)
	for _, r := range br {
		require.Less(t, r.MeanRTT, 26*time.Millisecond, "BBR's queue")
	}
	require.Greater(t, cr[0].MeanRTT, br[0].MeanRTT+5*time.Millisecond, "the test must tell a full queue from a short one")
}

// TestBBRStartupReachesThePathRate: issue 9 wants BBR's startup to reach the path's rate within
// about 10 RTTs. A single upload through the 50 Mbit/s, 20 ms bottleneck: from the first
// application data the server reads, the delivery rate over one RTT (20 ms) must reach 90% of
// the link within 10 RTTs. Startup doubles the rate every round from the initial window (10
// datagrams, an eighth of the BDP), so it needs about four.
func TestBBRStartupReachesThePathRate(t *testing.T) {
	const rtt = 20 * time.Millisecond
	for seed := range int64(ccSeeds()) + 1 {
		up, down := sharedBottleneck(seed)
		s := FlowsScenario{Name: "startup", Up: up, Down: down, Limit: 60 * time.Second, Sample: time.Millisecond,
			Flows: []Flow{{Config: withCC(congestion.NewBBR), ClientBytes: 4 << 20}}}
		res, err := RunFlows(s, seed)
		require.NoError(t, err)
		got := func(k int) int { return res.Delivered[k][0] }
		first := -1 // the first sample with application data read
		for k := range res.Delivered {
			if got(k) > simClientHello+simFinished {
				first = k
				break
			}
		}
		require.GreaterOrEqual(t, first, 0)
		per := int(rtt / s.Sample)
		reached := -1
		for k := first; k+per < len(res.Delivered); k++ {
			if float64(got(k+per)-got(k)) >= 0.9*link50*rtt.Seconds() {
				reached = k
				break
			}
		}
		require.GreaterOrEqual(t, reached, 0, "seed %d: never at 90%% of the link", seed)
		rtts := float64(reached+per-first) * float64(s.Sample) / float64(rtt)
		t.Logf("seed %d: 90%% of the link over the RTT ending %.1f RTTs after the first data", seed, rtts)
		require.LessOrEqual(t, rtts, 10.0, "seed %d", seed)
	}
}
