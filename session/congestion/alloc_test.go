package congestion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The per-packet calls run for every datagram; they must not allocate.
func TestPerPacketCallsDoNotAllocate(t *testing.T) {
	for name, newCC := range map[string]func(int) Controller{"newreno": NewNewReno, "cubic": NewCubic} {
		t.Run(name, func(t *testing.T) {
			c := newCC(mds)
			r := fixedRTT(50 * ms)
			now := epoch
			require.Zero(t, testing.AllocsPerRun(1000, func() {
				now = now.Add(time.Microsecond)
				c.OnPacketSent(now, mds)
			}))
			// Slow start, then congestion avoidance after a loss.
			require.Zero(t, testing.AllocsPerRun(1000, func() {
				now = now.Add(time.Microsecond)
				ackOne(c, now, mds, now.Add(-50*ms), r)
			}))
			lossOne(c, now, mds, now)
			now = now.Add(100 * ms)
			require.Zero(t, testing.AllocsPerRun(1000, func() {
				now = now.Add(time.Microsecond)
				ackOne(c, now, mds, now.Add(-50*ms), r)
			}))
			require.False(t, c.InSlowStart())
		})
	}
	t.Run("rtt", func(t *testing.T) {
		var r RTT
		require.Zero(t, testing.AllocsPerRun(1000, func() {
			r.Update(50*ms, 5*ms, 25*ms, true)
		}))
	})
	t.Run("pacer", func(t *testing.T) {
		p := NewPacer(mds)
		p.SetRate(100*mds, 20*ms)
		now := epoch
		require.Zero(t, testing.AllocsPerRun(1000, func() {
			now = p.TimeUntilSend(now, mds)
			p.OnSent(now, mds)
		}))
	})
}

func benchmarkAcked(b *testing.B, newCC func(int) Controller, avoidance bool) {
	c := newCC(mds)
	r := fixedRTT(50 * ms)
	now := epoch
	if avoidance {
		lossOne(c, now, mds, now)
		now = now.Add(time.Second)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		c.OnPacketSent(now, mds)
		ackOne(c, now, mds, now.Add(-50*ms), r)
	}
}

func BenchmarkNewRenoSentAcked(b *testing.B) {
	b.Run("slowstart", func(b *testing.B) { benchmarkAcked(b, NewNewReno, false) })
	b.Run("avoidance", func(b *testing.B) { benchmarkAcked(b, NewNewReno, true) })
}

func BenchmarkCubicSentAcked(b *testing.B) {
	b.Run("slowstart", func(b *testing.B) { benchmarkAcked(b, NewCubic, false) })
	b.Run("avoidance", func(b *testing.B) { benchmarkAcked(b, NewCubic, true) })
}

func BenchmarkRTTUpdate(b *testing.B) {
	var r RTT
	b.ReportAllocs()
	for b.Loop() {
		r.Update(50*ms, 5*ms, 25*ms, true)
	}
}

func BenchmarkPacer(b *testing.B) {
	p := NewPacer(mds)
	p.SetRate(100*mds, 20*ms)
	now := epoch
	b.ReportAllocs()
	for b.Loop() {
		now = p.TimeUntilSend(now, mds)
		p.OnSent(now, mds)
	}
}

// TestExtremeInputs feeds values no sane session produces; nothing may panic, overflow or run away.
func TestExtremeInputs(t *testing.T) {
	for name, newCC := range map[string]func(int) Controller{"newreno": NewNewReno, "cubic": NewCubic} {
		t.Run(name, func(t *testing.T) {
			c := newCC(mds)
			for range 3000 {
				ackOne(c, epoch, 1<<29, epoch, nil)
			}
			require.Equal(t, maxWindow, c.CongestionWindow())
			lossOne(c, epoch, mds, epoch)
			later := epoch.Add(time.Hour)
			for range 100 {
				later = later.Add(time.Hour)
				ackOne(c, later, 1<<29, later, nil) // nil RTT: InitialRTT is assumed
			}
			require.LessOrEqual(t, c.CongestionWindow(), maxWindow)
			require.GreaterOrEqual(t, c.CongestionWindow(), MinimumWindow(mds))
		})
	}

	p := NewPacer(mds)
	p.SetRate(1, time.Duration(1<<63-1)) // one byte per ~292 years
	require.Equal(t, epoch, p.TimeUntilSend(epoch, mds))
	p.OnSent(epoch, mds)
	require.True(t, p.TimeUntilSend(epoch, mds).After(epoch))
	p.SetRate(1<<62, time.Nanosecond) // absurdly fast: effectively unpaced once the old debt is paid
	require.Equal(t, epoch.Add(ms), p.TimeUntilSend(epoch.Add(ms), 1<<40))
	p.OnSent(epoch, -5)
}
