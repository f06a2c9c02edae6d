package simnet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// pmtuStep is session's search granularity (session/pmtud.go): the search ends with the largest
// size that fits known to within one step.
const pmtuStep = 16

// TestPathMTUDiscoveryFindsLimit: on a path that silently drops datagrams above N bytes, both
// ends find N to within one probe step, lose no data, and never treat the lost probes as
// congestion.
func TestPathMTUDiscoveryFindsLimit(t *testing.T) {
	for _, limit := range []int{1250, 1300, 1400, 1452} {
		link := impair.Config{Delay: 10 * time.Millisecond, MaxSize: limit}
		if limit == 1452 {
			link.MaxSize = 0 // the whole range fits
		}
		// CUBIC, because the test shows that a lost probe is not congestion: under a loss-based
		// controller any loss counted as congestion would show in CongestionEvents. (BBR, the
		// default, would also end 512 KiB on this unlimited link before the search does.)
		sc := Scenario{Name: "pmtu", Up: link, Down: link, ClientBytes: 512 << 10, ServerBytes: 512 << 10,
			Limit: 30 * time.Second, Config: &session.Config{MaxDatagramSize: 1452, Congestion: congestion.NewCubic}}
		free := sc
		free.Up.MaxSize, free.Down.MaxSize = 0, 0
		for seed := range int64(3) {
			res, err := Run(sc, seed)
			require.NoError(t, err)
			base, err := Run(free, seed)
			require.NoError(t, err)
			for i, st := range []session.Stats{res.Client, res.Server} {
				require.LessOrEqual(t, st.PathMTU, limit, "limit %d seed %d", limit, seed)
				require.Greater(t, st.PathMTU, limit-pmtuStep, "limit %d seed %d", limit, seed)
				require.NotZero(t, st.PMTUSearchTime, "limit %d seed %d: search never completed", limit, seed)
				require.Zero(t, st.PMTUBlackHoles, "limit %d seed %d", limit, seed)
				// Only probes were too big, and their loss is not congestion: the run loses and
				// backs off exactly as often as on the path without the limit (the handshake
				// of the simulation loses a stale untagged packet or two either way).
				baseSt := [2]session.Stats{base.Client, base.Server}[i]
				require.Equal(t, baseSt.PacketsLost, st.PacketsLost, "limit %d seed %d side %d", limit, seed, i)
				require.Equal(t, baseSt.CongestionEvents, st.CongestionEvents, "limit %d seed %d side %d", limit, seed, i)
			}
			require.Equal(t, res.Up.TooBig, res.Client.PMTUProbesLost, "every datagram the path dropped was a probe")
			require.Equal(t, res.Down.TooBig, res.Server.PMTUProbesLost, "every datagram the path dropped was a probe")
			if seed == 0 {
				t.Logf("limit %d: client found %d in %v (%d probes, %d lost), server %d in %v; transfer %v",
					limit, res.Client.PathMTU, res.Client.PMTUSearchTime, res.Client.PMTUProbesSent, res.Client.PMTUProbesLost,
					res.Server.PathMTU, res.Server.PMTUSearchTime, res.Elapsed)
			}
		}
	}
}

// TestPathMTUBlackHole: the path's MTU falls from 1452 to 1280 in the middle of a bulk transfer,
// and datagrams above it vanish without a word. The sender notices, falls back to 1200, finds
// the new limit and completes the transfer.
func TestPathMTUBlackHole(t *testing.T) {
	// A 50 Mbit/s bottleneck keeps the transfer going past the black hole whatever the
	// controller (BBR, the default, would finish 8 MiB on an unlimited link before it).
	link := impair.Config{Delay: 10 * time.Millisecond, MaxSize: 1280, MaxSizeAt: 500 * time.Millisecond, Rate: 50_000_000, QueueBytes: 125_000}
	sc := Scenario{Name: "pmtu-blackhole", Up: link, Down: link, ClientBytes: 8 << 20, ServerBytes: 64 << 10,
		Limit: 60 * time.Second, Config: &session.Config{MaxDatagramSize: 1452}}
	for seed := range int64(3) {
		res, err := Run(sc, seed)
		require.NoError(t, err)
		require.False(t, res.NetworkDead)
		c := res.Client
		require.GreaterOrEqual(t, c.PMTUBlackHoles, uint64(1), "seed %d: the black hole went unnoticed", seed)
		require.LessOrEqual(t, c.PathMTU, 1280, "seed %d", seed)
		require.Greater(t, c.PathMTU, 1280-pmtuStep, "seed %d", seed)
		require.NotZero(t, res.Up.TooBig, "seed %d: the transfer did not reach the black hole", seed)
		if seed == 0 {
			t.Logf("black hole at 500ms: %d fallback(s), path MTU now %d, transfer of 8 MiB took %v (%d too-big drops)",
				c.PMTUBlackHoles, c.PathMTU, res.Elapsed, res.Up.TooBig)
		}
	}
	// The same transfer on a path whose MTU stays 1452, for the cost of the black hole.
	clean := sc
	clean.Up.MaxSize, clean.Up.MaxSizeAt = 0, 0
	clean.Down = clean.Up
	res, err := Run(clean, 0)
	require.NoError(t, err)
	t.Logf("without the black hole: %v", res.Elapsed)
}
