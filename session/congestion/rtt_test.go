package congestion

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

func TestRTTZeroValue(t *testing.T) {
	var r RTT
	require.False(t, r.HasSample())
	require.Equal(t, InitialRTT, r.SmoothedRTT())
	require.Equal(t, InitialRTT/2, r.RTTVar())
	require.Zero(t, r.MinRTT())
	require.Zero(t, r.LatestRTT())
	// RFC 9002 §6.2.2: 333ms + 4·166.5ms (+ max_ack_delay).
	require.Equal(t, 999*ms, r.PTO(0))
	require.Equal(t, 1024*ms, r.PTO(25*ms))
}

func TestRTTFirstSampleIgnoresAckDelay(t *testing.T) {
	var r RTT
	r.Update(100*ms, 20*ms, 25*ms, true)
	require.True(t, r.HasSample())
	require.Equal(t, 100*ms, r.LatestRTT())
	require.Equal(t, 100*ms, r.MinRTT())
	require.Equal(t, 100*ms, r.SmoothedRTT())
	require.Equal(t, 50*ms, r.RTTVar())
	require.Equal(t, 100*ms+200*ms+25*ms, r.PTO(25*ms))
}

func TestRTTSubsequentSamples(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		sample, ackDelay      time.Duration
		confirmed             bool
		wantSmoothed, wantVar time.Duration
		wantMin               time.Duration
	}{
		// Handshake confirmed: the 30ms delay is capped at max_ack_delay = 25ms; 140−25 = 115.
		// rttvar = (3·50 + |100−115|)/4 = 41.25; srtt = (7·100 + 115)/8 = 101.875.
		{"capped ack delay", 140 * ms, 30 * ms, true, 101875 * time.Microsecond, 41250 * time.Microsecond, 100 * ms},
		// Not confirmed: the full 30ms is subtracted; adjusted = 110.
		{"uncapped before confirmation", 140 * ms, 30 * ms, false, 101250 * time.Microsecond, 40 * ms, 100 * ms},
		// 110−25 would fall below min_rtt = 100, so the delay is not subtracted at all.
		{"min_rtt floor", 110 * ms, 30 * ms, true, 101250 * time.Microsecond, 40 * ms, 100 * ms},
		// Subtracting exactly down to min_rtt is allowed: 125−25 = 100.
		{"down to min_rtt", 125 * ms, 25 * ms, true, 100 * ms, 37500 * time.Microsecond, 100 * ms},
		// A smaller sample lowers min_rtt (ack delay ignored for min_rtt); the adjustment never
		// goes below the new minimum: 80−10 < 80.
		{"new min", 80 * ms, 10 * ms, true, 97500 * time.Microsecond, 42500 * time.Microsecond, 80 * ms},
		// Negative ack delay counts as zero.
		{"negative delay", 120 * ms, -5 * ms, true, 102500 * time.Microsecond, 42500 * time.Microsecond, 100 * ms},
		// An absurd peer-supplied delay must neither overflow nor drag the sample below min_rtt.
		{"huge delay unconfirmed", 120 * ms, math.MaxInt64, false, 102500 * time.Microsecond, 42500 * time.Microsecond, 100 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r RTT
			r.Update(100*ms, 0, 25*ms, true)
			r.Update(tc.sample, tc.ackDelay, 25*ms, tc.confirmed)
			require.Equal(t, tc.wantSmoothed, r.SmoothedRTT())
			require.Equal(t, tc.wantVar, r.RTTVar())
			require.Equal(t, tc.wantMin, r.MinRTT())
			require.Equal(t, tc.sample, r.LatestRTT())
		})
	}
}

func TestRTTIgnoresNegativeSample(t *testing.T) {
	var r RTT
	r.Update(-time.Millisecond, 0, 0, true)
	require.False(t, r.HasSample())
	r.Update(0, 0, 0, true) // a zero-delay simulated link
	require.True(t, r.HasSample())
	require.Zero(t, r.SmoothedRTT())
	// PTO never drops below kGranularity (RFC 9002 §6.2.1).
	require.Equal(t, TimerGranularity, r.PTO(0))
}

func TestRTTPTOGranularityFloor(t *testing.T) {
	var r RTT
	for range 100 {
		r.Update(10*ms, 0, 25*ms, true)
	}
	require.Equal(t, 10*ms, r.SmoothedRTT())
	require.Less(t, 4*r.RTTVar(), TimerGranularity)
	require.Equal(t, 10*ms+TimerGranularity+25*ms, r.PTO(25*ms))
	// A hostile max_ack_delay is clamped to the RFC 9000 §18.2 limit instead of overflowing.
	require.Equal(t, 10*ms+TimerGranularity+maxAckDelayLimit, r.PTO(math.MaxInt64))
}

func TestRTTResetMinRTT(t *testing.T) {
	var r RTT
	r.ResetMinRTT() // no sample: nothing to do
	require.Zero(t, r.MinRTT())
	r.Update(50*ms, 0, 0, true)
	r.Update(200*ms, 0, 0, true)
	require.Equal(t, 50*ms, r.MinRTT())
	r.ResetMinRTT()
	require.Equal(t, 200*ms, r.MinRTT())
}

// TestRTTAgainstReference replays random samples through a float64 transcription of RFC 9002
// Appendix A.7 and requires the fixed-point estimator to stay within rounding distance.
func TestRTTAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var r RTT
	var first = true
	var minRTT, srtt, rttvar float64
	const maxAckDelay = 25e6
	for i := range 10000 {
		sample := time.Duration(rng.Int63n(int64(300 * ms)))
		delay := time.Duration(rng.Int63n(int64(40 * ms)))
		confirmed := i > 100
		r.Update(sample, delay, maxAckDelay, confirmed)

		s, d := float64(sample), float64(delay)
		if first {
			first = false
			minRTT, srtt, rttvar = s, s, s/2
			continue
		}
		minRTT = math.Min(minRTT, s)
		if confirmed {
			d = math.Min(d, maxAckDelay)
		}
		adj := s
		if s >= minRTT+d {
			adj = s - d
		}
		rttvar = 0.75*rttvar + 0.25*math.Abs(srtt-adj)
		srtt = 0.875*srtt + 0.125*adj

		require.InDelta(t, srtt, float64(r.SmoothedRTT()), 10, "sample %d", i)
		require.InDelta(t, rttvar, float64(r.RTTVar()), 10, "sample %d", i)
		require.Equal(t, time.Duration(minRTT), r.MinRTT())
	}
}
