package congestion

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// growCubic takes a fresh CUBIC controller to a window of w bytes in slow start (no RTT samples, so
// HyStart++ stays out of the way).
func growCubic(t *testing.T, w int) *cubic {
	t.Helper()
	c := NewCubic(mds).(*cubic)
	for c.CongestionWindow() < w {
		c.OnPacketSent(epoch, mds)
		ackOne(c, epoch, mds, epoch, nil)
	}
	require.Equal(t, w, c.CongestionWindow())
	require.True(t, c.InSlowStart())
	return c
}

// ackClock drives a controller in congestion avoidance from start for dur: each acknowledgement
// covers one MDS-sized packet sent one srtt earlier, spaced so that a window's worth arrives per
// round trip. observe is called after each acknowledgement. It returns the first acknowledgement's
// time (the start of the CUBIC epoch).
func ackClock(c Controller, rtt *RTT, start time.Time, srtt, dur time.Duration, observe func(now time.Time)) time.Time {
	now := start
	for now.Before(start.Add(dur)) {
		c.OnPacketSent(now, mds)
		ackOne(c, now, mds, now.Add(-srtt), rtt)
		if observe != nil {
			observe(now)
		}
		now = now.Add(srtt * mds / time.Duration(c.CongestionWindow()))
	}
	return start
}

func fixedRTT(d time.Duration) *RTT {
	var r RTT
	r.Update(d, 0, 0, true)
	return &r
}

// wCubicRef is RFC 9438 Figure 1 in bytes: W_cubic(t) = C·(t−K)³ + W_max, K = ∛((W_max−cwnd_epoch)/C).
func wCubicRef(wMax, cwndEpoch, t float64) float64 {
	k := math.Cbrt((wMax - cwndEpoch) / mds / 0.4)
	return 0.4*math.Pow(t-k, 3)*mds + wMax
}

func TestCubicLossReduction(t *testing.T) {
	c := growCubic(t, 100*mds)
	lossAt := epoch.Add(time.Second)
	lossOne(c, lossAt, mds, lossAt.Add(-ms))
	// RFC 9438 §4.6: cwnd = ssthresh = β·W with β = 0.7.
	require.Equal(t, 70*mds, c.CongestionWindow())
	require.Equal(t, 70*mds, c.ssthresh)
	require.True(t, c.InRecovery())
	require.False(t, c.InSlowStart())
	require.Equal(t, float64(100*mds), c.wMax)

	// Once per recovery period.
	lossOne(c, lossAt.Add(ms), mds, lossAt)
	require.Equal(t, 70*mds, c.CongestionWindow())
	// No growth for packets sent before the recovery start.
	ackOne(c, lossAt.Add(2*ms), mds, lossAt, fixedRTT(100*ms))
	require.Equal(t, 70*mds, c.CongestionWindow())
	require.True(t, c.InRecovery())
	// A packet sent after it ends recovery.
	ackOne(c, lossAt.Add(100*ms), mds, lossAt.Add(ms), fixedRTT(100*ms))
	require.False(t, c.InRecovery())

	// A loss of a packet sent after the recovery start is a new event: 0.7 of the window again.
	w := c.CongestionWindow()
	require.Greater(t, w, 70*mds, "the ack that ended recovery grew the window a little")
	lossOne(c, lossAt.Add(200*ms), mds, lossAt.Add(ms))
	require.Equal(t, w*7/10, c.CongestionWindow())

	// Never below the minimum window.
	now := lossAt
	for range 20 {
		now = now.Add(time.Second)
		lossOne(c, now, mds, now.Add(-ms))
	}
	require.Equal(t, 2*mds, c.CongestionWindow())
}

func TestCubicFastConvergence(t *testing.T) {
	c := growCubic(t, 100*mds)
	lossAt := epoch.Add(time.Second)
	lossOne(c, lossAt, mds, lossAt)
	require.Equal(t, float64(100*mds), c.wMax)
	// The window is at 70 MDS < W_max when the next loss comes: RFC 9438 §4.7 remembers
	// W_max = cwnd·(1+β)/2 to release bandwidth to newer flows.
	lossOne(c, lossAt.Add(time.Second), mds, lossAt.Add(500*ms))
	require.InDelta(t, 70*mds*0.85, c.wMax, 1e-6)
	require.Equal(t, 70*mds*7/10, c.CongestionWindow())
}

// TestCubicFollowsWCubic checks that in congestion avoidance the window follows
// W_cubic(t) = C·(t−K)³ + W_max over virtual time (RFC 9438 §4.2): concave up to W_max at t = K,
// convex after it. The RTT is long enough for the cubic curve to stay above the Reno estimate.
func TestCubicFollowsWCubic(t *testing.T) {
	const srtt = 100 * ms
	wMax := 1000 * mds
	c := growCubic(t, wMax)
	lossAt := epoch.Add(time.Second)
	lossOne(c, lossAt, mds, lossAt)
	cwndEpoch := float64(c.CongestionWindow())
	require.Equal(t, 700*mds, c.CongestionWindow())
	k := math.Cbrt(300 / 0.4) // ≈ 9.09 s

	start := lossAt.Add(srtt + time.Microsecond)
	checked := 0
	nextCheck := 0.5 // at t = 0 W_cubic = W_est = cwnd_epoch
	prev := c.CongestionWindow()
	ackClock(c, fixedRTT(srtt), start, srtt, 14*time.Second, func(now time.Time) {
		require.GreaterOrEqual(t, c.CongestionWindow(), prev, "the window never shrinks on an ACK")
		prev = c.CongestionWindow()
		tt := now.Sub(start).Seconds()
		if tt < nextCheck {
			return
		}
		nextCheck += 0.5
		checked++
		want := wCubicRef(float64(wMax), cwndEpoch, tt)
		require.InEpsilon(t, want, float64(c.CongestionWindow()), 0.001, "t=%.2fs", tt)
		require.Greater(t, want, c.wEst, "cubic region, not Reno-friendly, at t=%.2fs", tt)
	})
	require.Equal(t, 27, checked)
	require.InDelta(t, k, c.k, 1e-9)

	// The plateau: around t = K the window is W_max.
	c2 := growCubic(t, wMax)
	lossOne(c2, lossAt, mds, lossAt)
	ackClock(c2, fixedRTT(srtt), start, srtt, time.Duration(k*float64(time.Second)), nil)
	require.InEpsilon(t, float64(wMax), float64(c2.CongestionWindow()), 0.001)
}

// TestCubicRenoFriendly checks the Reno-friendly region (RFC 9438 §4.3): on a short RTT the cubic
// curve grows more slowly than Reno would, and the window follows W_est instead, growing by
// α_cubic = 3(1−β)/(1+β) MDS per RTT until it reaches the window before the loss, then by 1 MDS.
func TestCubicRenoFriendly(t *testing.T) {
	const srtt = ms
	c := growCubic(t, 1000*mds)
	lossAt := epoch.Add(time.Second)
	lossOne(c, lossAt, mds, lossAt)
	start := lossAt.Add(srtt + time.Microsecond)

	alpha := 3 * (1 - 0.7) / (1 + 0.7)
	require.InDelta(t, alpha, cubicAlpha, 1e-12)
	rounds := 0.0
	ackClock(c, fixedRTT(srtt), start, srtt, 200*srtt, func(now time.Time) {
		rounds += float64(mds) / float64(c.CongestionWindow())
	})
	wantReno := 700*mds + alpha*mds*rounds
	require.InEpsilon(t, wantReno, float64(c.CongestionWindow()), 0.002)
	require.Less(t, wCubicRef(1000*mds, 700*mds, 0.2), float64(c.CongestionWindow())-50*mds,
		"well above the cubic curve")

	// After W_est reached the pre-loss window (≈567 RTTs), α is 1.
	c2 := growCubic(t, 1000*mds)
	lossOne(c2, lossAt, mds, lossAt)
	ackClock(c2, fixedRTT(srtt), start, srtt, time.Second, nil)
	roundsToPrior := 300 / alpha
	want := 1000*mds + (1000-roundsToPrior)*mds
	require.InEpsilon(t, want, float64(c2.CongestionWindow()), 0.005)
}

func TestCubicPersistentCongestion(t *testing.T) {
	c := growCubic(t, 100*mds)
	now := epoch.Add(time.Second)
	lossOne(c, now, 10*mds, now.Add(-ms))
	persistentOne(c, now)
	require.Equal(t, 2*mds, c.CongestionWindow())
	require.False(t, c.InRecovery())
	require.True(t, c.InSlowStart())
	require.Equal(t, 70*mds, c.ssthresh)

	// Slow start (no HyStart++ after the first loss) up to ssthresh, then congestion avoidance
	// with K = 0 and W_max = the window at its start (RFC 9438 §4.8).
	r := fixedRTT(50 * ms)
	later := now.Add(time.Second)
	for c.InSlowStart() {
		ackOne(c, later, mds, later, r)
	}
	require.Equal(t, 70*mds, c.CongestionWindow())
	ackOne(c, later, mds, later, r)
	require.Equal(t, float64(70*mds), c.wMax)
	require.Zero(t, c.k)
}

func TestCubicAppLimited(t *testing.T) {
	c := growCubic(t, 100*mds)
	lossAt := epoch.Add(time.Second)
	lossOne(c, lossAt, mds, lossAt)
	r := fixedRTT(100 * ms)
	start := lossAt.Add(101 * ms)
	ackClock(c, r, start, 100*ms, time.Second, nil)
	grown := c.CongestionWindow()
	require.Greater(t, grown, 70*mds)

	c.SetAppLimited(true)
	ackClock(c, r, start.Add(time.Second), 100*ms, 10*time.Second, nil)
	require.Equal(t, grown, c.CongestionWindow(), "RFC 9438 §5.8: no growth while app-limited")
	require.False(t, c.inEpoch)

	// Afterwards a new epoch starts; the 10 idle seconds do not count as probing time, so the
	// window does not jump to where W_cubic(11s) would be.
	c.SetAppLimited(false)
	resume := start.Add(11 * time.Second)
	ackOne(c, resume, mds, resume.Add(-100*ms), r)
	require.True(t, c.inEpoch)
	require.Equal(t, resume, c.epochStart)
	require.Less(t, c.CongestionWindow(), grown+mds)

	// Slow start does not grow while app-limited either.
	s := NewCubic(mds)
	s.(AppLimitedSetter).SetAppLimited(true)
	ackOne(s, epoch, mds, epoch, r)
	require.Equal(t, 12000, s.CongestionWindow())
}

func TestCubicZeroTimeClock(t *testing.T) {
	c := NewCubic(mds)
	var zero time.Time
	c.OnPacketSent(zero, mds)
	ackOne(c, zero, mds, zero, nil)
	require.Equal(t, 12000+mds, c.CongestionWindow())
	require.False(t, c.InRecovery())
}
