package congestion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const mds = 1200

// epoch is an arbitrary virtual-clock origin. Tests also use the zero time.Time, which a virtual
// clock may start at.
var epoch = time.Unix(1_700_000_000, 0)

func TestInitialAndMinimumWindow(t *testing.T) {
	for _, tc := range []struct{ mds, initial, minimum int }{
		{1200, 12000, 2400},  // 10·MDS
		{1452, 14520, 2904},  // 10·MDS
		{1472, 14720, 2944},  // both bounds meet
		{1500, 14720, 3000},  // 14720 bytes
		{9000, 18000, 18000}, // 2·MDS
		{0, 12000, 2400},     // default size
		{-5, 12000, 2400},    // default size
		{100, 1000, 200},     // tiny datagrams: 10·MDS
		{65527, 131054, 131054},
	} {
		require.Equal(t, tc.initial, InitialWindow(tc.mds), "mds %d", tc.mds)
		require.Equal(t, tc.minimum, MinimumWindow(tc.mds), "mds %d", tc.mds)
		require.Equal(t, tc.initial, NewNewReno(tc.mds).CongestionWindow(), "mds %d", tc.mds)
		require.Equal(t, tc.initial, NewCubic(tc.mds).CongestionWindow(), "mds %d", tc.mds)
	}
}

func TestNewRenoSlowStart(t *testing.T) {
	c := NewNewReno(mds)
	require.True(t, c.InSlowStart())
	require.False(t, c.InRecovery())
	var rtt RTT
	now := epoch
	for i := range 20 {
		c.OnPacketSent(now, mds)
		before := c.CongestionWindow()
		ackOne(c, now.Add(100*ms), mds, now, &rtt)
		// RFC 9002 §7.3.1: the window grows by the acknowledged bytes.
		require.Equal(t, before+mds, c.CongestionWindow(), "ack %d", i)
		now = now.Add(ms)
	}
	require.Equal(t, 12000+20*mds, c.CongestionWindow())
	require.True(t, c.InSlowStart())
	// Zero and negative sizes are ignored.
	ackOne(c, now, 0, now, &rtt)
	ackOne(c, now, -1, now, &rtt)
	require.Equal(t, 12000+20*mds, c.CongestionWindow())
}

func TestNewRenoRecoveryPeriod(t *testing.T) {
	c := NewNewReno(mds)
	var rtt RTT
	t0 := epoch
	// Grow to 24000 in slow start.
	for range 10 {
		ackOne(c, t0, mds, t0, &rtt)
	}
	require.Equal(t, 24000, c.CongestionWindow())

	// Loss of a packet sent at t0+1s, detected at t0+2s: halve (RFC 9002 §7.3.2).
	lossAt := t0.Add(2 * time.Second)
	lossOne(c, lossAt, mds, t0.Add(time.Second))
	require.Equal(t, 12000, c.CongestionWindow())
	require.True(t, c.InRecovery())
	require.False(t, c.InSlowStart())

	// More losses of packets sent before (or exactly at) the recovery start are the same event.
	lossOne(c, lossAt.Add(ms), mds, t0.Add(1500*ms))
	lossOne(c, lossAt.Add(2*ms), mds, lossAt)
	require.Equal(t, 12000, c.CongestionWindow())

	// Acknowledgements of packets sent before the recovery start neither grow the window nor
	// end recovery.
	ackOne(c, lossAt.Add(3*ms), mds, lossAt.Add(-ms), &rtt)
	ackOne(c, lossAt.Add(3*ms), mds, lossAt, &rtt)
	require.Equal(t, 12000, c.CongestionWindow())
	require.True(t, c.InRecovery())

	// A loss of a packet sent after the recovery start is a new congestion event.
	second := lossAt.Add(100 * ms)
	lossOne(c, second, mds, lossAt.Add(ms))
	require.Equal(t, 6000, c.CongestionWindow())
	require.True(t, c.InRecovery())

	// The first acknowledgement of a packet sent during recovery ends it (§7.3.2) and counts for
	// congestion avoidance.
	ackOne(c, second.Add(200*ms), mds, second.Add(ms), &rtt)
	require.False(t, c.InRecovery())
	require.False(t, c.InSlowStart())
	// A late acknowledgement of an old packet still does not grow the window (Appendix B.5).
	ackOne(c, second.Add(201*ms), 5*mds, second.Add(-ms), &rtt)
	// A loss of a packet sent before the last recovery start still does not reduce.
	lossOne(c, second.Add(300*ms), mds, second)
	require.Equal(t, 6000, c.CongestionWindow())
}

func TestNewRenoCongestionAvoidance(t *testing.T) {
	c := NewNewReno(mds)
	var rtt RTT
	now := epoch
	lossOne(c, now, mds, now) // 12000 → 6000, ssthresh 6000
	require.Equal(t, 6000, c.CongestionWindow())
	now = now.Add(ms)
	// RFC 9002 §7.3.3: one MDS per window of acknowledged bytes. The first window's worth of
	// acks (6000 bytes) adds exactly 1200.
	for range 5 {
		ackOne(c, now, mds, now, &rtt)
	}
	require.Equal(t, 7200, c.CongestionWindow())
	for range 5 {
		ackOne(c, now, mds, now, &rtt)
	}
	require.Equal(t, 7200, c.CongestionWindow(), "leftover of 6000 plus 6000 is below 7200")
	ackOne(c, now, mds, now, &rtt)
	require.Equal(t, 8400, c.CongestionWindow())

	// Growth is exact even for windows where MDS·acked/cwnd rounds to zero.
	big := NewNewReno(mds).(*newReno)
	big.ssthresh, big.cwnd = 10_000_000, 10_000_000
	for range 10_000_000 / mds {
		ackOne(big, now, mds, now, &rtt)
	}
	require.Equal(t, 10_000_000, big.CongestionWindow())
	ackOne(big, now, mds, now, &rtt)
	require.Equal(t, 10_000_000+mds, big.CongestionWindow())
}

func TestNewRenoMinimumWindow(t *testing.T) {
	c := NewNewReno(mds)
	now := epoch
	for i := range 10 {
		now = now.Add(time.Second)
		lossOne(c, now, mds, now.Add(-ms)) // each loss is of a packet sent after the last event
		require.GreaterOrEqual(t, c.CongestionWindow(), 2*mds, "event %d", i)
	}
	require.Equal(t, 2*mds, c.CongestionWindow())
}

func TestNewRenoPersistentCongestion(t *testing.T) {
	c := NewNewReno(mds)
	var rtt RTT
	now := epoch
	for range 30 {
		ackOne(c, now, mds, now, &rtt)
	}
	require.Equal(t, 48000, c.CongestionWindow())
	now = now.Add(time.Second)
	// Appendix B.8: the congestion event first, then persistent congestion.
	lossOne(c, now, 10*mds, now.Add(-500*ms))
	persistentOne(c, now)
	require.Equal(t, 2*mds, c.CongestionWindow())
	require.False(t, c.InRecovery())
	require.True(t, c.InSlowStart(), "slow start back toward ssthresh = 24000")

	// Recovery was reset: even a loss of a packet sent before now starts a new event.
	lossOne(c, now.Add(ms), mds, now.Add(-ms))
	require.True(t, c.InRecovery())
	require.Equal(t, 2*mds, c.CongestionWindow())

	// Slow start runs up to the threshold (1200 → 2400 → … by acked bytes).
	c2 := NewNewReno(mds)
	for range 30 {
		ackOne(c2, epoch, mds, epoch, &rtt)
	}
	lossOne(c2, now, mds, now)
	persistentOne(c2, now)
	for range 17 {
		ackOne(c2, now.Add(ms), mds, now.Add(ms), &rtt)
	}
	require.Equal(t, 2*mds+17*mds, c2.CongestionWindow())
	require.True(t, c2.InSlowStart())
	ackOne(c2, now.Add(ms), mds, now.Add(ms), &rtt)
	require.Equal(t, 24000, c2.CongestionWindow())
	require.False(t, c2.InSlowStart())
}

func TestNewRenoZeroTimeClock(t *testing.T) {
	// A virtual clock starting at the zero time must not look like "in recovery" from the start.
	c := NewNewReno(mds)
	var zero time.Time
	ackOne(c, zero, mds, zero, nil)
	require.Equal(t, 12000+mds, c.CongestionWindow())
	lossOne(c, zero, mds, zero)
	require.Equal(t, (12000+mds)/2, c.CongestionWindow())
	require.True(t, c.InRecovery())
}

func TestNewRenoAppLimited(t *testing.T) {
	c := NewNewReno(mds)
	var rtt RTT
	s, ok := c.(AppLimitedSetter)
	require.True(t, ok)
	s.SetAppLimited(true)
	for range 100 {
		ackOne(c, epoch, mds, epoch, &rtt)
	}
	require.Equal(t, 12000, c.CongestionWindow(), "RFC 9002 §7.8: no growth while app-limited")
	// Losses still reduce the window.
	lossOne(c, epoch, mds, epoch)
	require.Equal(t, 6000, c.CongestionWindow())
	s.SetAppLimited(false)
	for range 5 {
		ackOne(c, epoch.Add(ms), mds, epoch.Add(ms), &rtt)
	}
	require.Equal(t, 7200, c.CongestionWindow())
}
