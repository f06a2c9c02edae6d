package congestion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slowStartRound sends a whole window at start and acknowledges it rtt later, one packet per
// microsecond, feeding each RTT sample to r first. It returns when the last acknowledgement
// arrived, which is when the next round is sent.
func slowStartRound(c Controller, r *RTT, start time.Time, rtt time.Duration) time.Time {
	n := c.CongestionWindow() / mds
	for range n {
		c.OnPacketSent(start, mds)
	}
	now := start
	for i := range n {
		now = start.Add(rtt + time.Duration(i)*time.Microsecond)
		r.Update(now.Sub(start), 0, 25*ms, true)
		ackOne(c, now, mds, start, r)
	}
	return now
}

func TestHyStartNoExitOnStableRTT(t *testing.T) {
	c := NewCubic(mds).(*cubic)
	var r RTT
	now := epoch
	for range 8 {
		now = slowStartRound(c, &r, now, 100*ms)
	}
	require.Equal(t, 10<<8*mds, c.CongestionWindow(), "doubling every round")
	require.True(t, c.InSlowStart())
	require.False(t, c.hs.css)
}

func TestHyStartExitsOnRTTIncrease(t *testing.T) {
	c := NewCubic(mds).(*cubic)
	var r RTT
	now := epoch
	for range 3 {
		now = slowStartRound(c, &r, now, 100*ms)
	}
	require.Equal(t, 80*mds, c.CongestionWindow())

	// Round 4: the minimum RTT rises by 20ms, above max(4ms, min(100ms/8, 16ms)) = 12.5ms. After
	// N_RTT_SAMPLE = 8 samples HyStart++ enters Conservative Slow Start (RFC 9406 §4.2): the first 8
	// acknowledgements grew the window fully, the other 72 by a quarter.
	now = slowStartRound(c, &r, now, 120*ms)
	require.True(t, c.hs.css)
	require.Equal(t, 120*ms, c.hs.cssBaselineMinRTT)
	require.True(t, c.InSlowStart(), "CSS is still slow start")
	require.Equal(t, (80+8+72/4)*mds, c.CongestionWindow())

	// CSS lasts CSS_ROUNDS = 5 rounds, then congestion avoidance with ssthresh = cwnd.
	for range 4 {
		before := c.CongestionWindow()
		now = slowStartRound(c, &r, now, 120*ms)
		require.Equal(t, before+(before/mds)*mds/4, c.CongestionWindow(), "CSS grows by a quarter of the acked bytes")
		require.True(t, c.InSlowStart())
	}
	cwnd := c.CongestionWindow()
	c.OnPacketSent(now, mds)
	r.Update(120*ms, 0, 25*ms, true)
	ackOne(c, now.Add(120*ms), mds, now, &r)
	require.False(t, c.InSlowStart())
	require.Equal(t, cwnd, c.ssthresh)
	require.True(t, c.hsDone)
	// RFC 9438 §4.10: the first epoch after HyStart++ has W_max = cwnd and K = 0.
	require.True(t, c.inEpoch)
	require.Equal(t, float64(cwnd), c.wMax)
	require.Zero(t, c.k)
}

func TestHyStartSpuriousCSS(t *testing.T) {
	c := NewCubic(mds).(*cubic)
	var r RTT
	now := intoCSS(t, c, &r)
	// The RTT falls back below the CSS baseline: the rise was noise, standard slow start resumes
	// (RFC 9406 §4.2) after 8 samples of this round.
	before := c.CongestionWindow()
	slowStartRound(c, &r, now, 100*ms)
	require.False(t, c.hs.css)
	n := before / mds
	require.Equal(t, before+(8*mds)/4+(n-8)*mds, c.CongestionWindow())
	require.True(t, c.InSlowStart())
}

func TestHyStartThreshold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, inc time.Duration
		css       bool
	}{
		{"below lastRoundMinRTT/8", 100 * ms, 12 * ms, false},
		{"above lastRoundMinRTT/8", 100 * ms, 13 * ms, true},
		{"MIN_RTT_THRESH floor, below", 10 * ms, 3900 * time.Microsecond, false},
		{"MIN_RTT_THRESH floor, at", 10 * ms, 4 * ms, true},
		{"MAX_RTT_THRESH cap, below", 400 * ms, 15 * ms, false},
		{"MAX_RTT_THRESH cap, at", 400 * ms, 16 * ms, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCubic(mds).(*cubic)
			var r RTT
			now := epoch
			for range 2 {
				now = slowStartRound(c, &r, now, tc.base)
			}
			slowStartRound(c, &r, now, tc.base+tc.inc)
			require.Equal(t, tc.css, c.hs.css)
		})
	}
}

func TestHyStartOnlyInInitialSlowStart(t *testing.T) {
	c := NewCubic(mds).(*cubic)
	var r RTT
	now := slowStartRound(c, &r, epoch, 100*ms)
	lossOne(c, now, mds, now)
	persistentOne(c, now)
	require.True(t, c.InSlowStart())
	// RFC 9406 §4.3: later slow starts are standard; ssthresh already bounds them.
	for _, rtt := range []time.Duration{100 * ms, 100 * ms, 200 * ms} {
		if !c.InSlowStart() {
			break
		}
		now = slowStartRound(c, &r, now.Add(ms), rtt)
	}
	require.False(t, c.hs.css)
}

func TestHyStartLossEndsIt(t *testing.T) {
	c := NewCubic(mds).(*cubic)
	var r RTT
	now := intoCSS(t, c, &r)
	w := c.CongestionWindow()
	lossOne(c, now, mds, now)
	require.Equal(t, w*7/10, c.CongestionWindow())
	require.False(t, c.InSlowStart())
	require.True(t, c.hsDone)
}

// intoCSS runs three slow-start rounds at 100 ms and one at 120 ms, which puts HyStart++ into
// Conservative Slow Start, and returns the time after them.
func intoCSS(t *testing.T, c *cubic, r *RTT) time.Time {
	t.Helper()
	now := epoch
	for range 3 {
		now = slowStartRound(c, r, now, 100*ms)
	}
	now = slowStartRound(c, r, now, 120*ms)
	require.True(t, c.hs.css)
	return now
}
