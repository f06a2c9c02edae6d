package congestion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSamplerHandWorked follows draft-cheng-iccrg-delivery-rate-estimation §3 by hand: three
// 1000-byte packets A, B, C and the samples their ACKs give.
func TestSamplerHandWorked(t *testing.T) {
	var s Sampler
	at := func(d time.Duration) time.Time { return epoch.Add(d) }

	// A leaves with nothing in flight: the flight (and the ACK interval) start at 0.
	a := s.OnSent(at(0), 0, 1000)
	require.Equal(t, PacketState{Delivered: 0, DeliveredTime: at(0), FirstSentTime: at(0), SentTime: at(0), TxInFlight: 1000}, a)
	b := s.OnSent(at(10*ms), 1000, 1000)
	require.Equal(t, at(0), b.FirstSentTime)
	require.Equal(t, 2000, b.TxInFlight)

	// A's ACK at 100 ms: 1000 bytes over max(send 0, ack 100 ms) = 10 000 B/s.
	s.OnAcked(at(100*ms), &a, 1000)
	rs := s.Sample(0)
	require.Equal(t, RateSample{Rate: 10_000, Delivered: 1000, Interval: 100 * ms, PriorDelivered: 0, TotalDelivered: 1000, RTT: 100 * ms, TxInFlight: 1000}, rs)

	// C leaves after A's ACK: it remembers 1000 delivered at 100 ms, and the flight's first send
	// is A's (the newest packet acknowledged so far).
	c := s.OnSent(at(100*ms), 1000, 1000)
	require.Equal(t, uint64(1000), c.Delivered)
	require.Equal(t, at(100*ms), c.DeliveredTime)
	require.Equal(t, at(0), c.FirstSentTime)

	// B's ACK at 110 ms: 2000 bytes since B was sent (delivered 0 at 0) over
	// max(send 10 ms, ack 110 ms) = 18 181 B/s.
	s.OnAcked(at(110*ms), &b, 1000)
	rs = s.Sample(0)
	require.Equal(t, uint64(2000), rs.Delivered)
	require.Equal(t, 110*ms, rs.Interval)
	require.Equal(t, uint64(18_181), rs.Rate)
	require.Equal(t, 100*ms, rs.RTT)

	// C's ACK at 200 ms: 2000 bytes since C was sent (1000 delivered then) over
	// max(send 100 ms − 0, ack 200 − 100 ms) = 20 000 B/s. With a minimum RTT longer than the
	// interval the sample is discarded (ACK compression would overestimate).
	s2 := s
	s.OnAcked(at(200*ms), &c, 1000)
	rs = s.Sample(0)
	require.Equal(t, uint64(20_000), rs.Rate)
	require.Equal(t, uint64(3000), rs.TotalDelivered)
	s2.OnAcked(at(200*ms), &c, 1000)
	rs = s2.Sample(150 * ms)
	require.Zero(t, rs.Rate)
	require.Equal(t, uint64(2000), rs.Delivered)
}

// TestSamplerNewestPacketDefinesTheSample: a frame acknowledging several packets, in any order,
// takes the sample from the one sent last.
func TestSamplerNewestPacketDefinesTheSample(t *testing.T) {
	var s Sampler
	p1 := s.OnSent(epoch, 0, 1000)
	p2 := s.OnSent(epoch.Add(5*ms), 1000, 1000)
	p3 := s.OnSent(epoch.Add(10*ms), 2000, 1000)
	now := epoch.Add(50 * ms)
	s.OnAcked(now, &p3, 1000)
	s.OnAcked(now, &p1, 1000)
	s.OnAcked(now, &p2, 1000)
	rs := s.Sample(0)
	require.Equal(t, 40*ms, rs.RTT, "p3's RTT")
	require.Equal(t, 3000, rs.TxInFlight)
	// 3000 bytes over max(send 10 ms, ack 50 ms).
	require.Equal(t, uint64(60_000), rs.Rate)
	// A frame that acknowledged nothing gives no sample.
	require.Zero(t, s.Sample(0).Rate)
}

// TestSamplerAppLimited: packets sent after the sender ran dry are marked until everything in
// flight at that moment has been delivered (draft §3.4).
func TestSamplerAppLimited(t *testing.T) {
	var s Sampler
	p1 := s.OnSent(epoch, 0, 1000)
	p2 := s.OnSent(epoch, 1000, 1000)
	s.OnAppLimited(2000) // the marking ends once more than 2000 bytes are delivered
	p3 := s.OnSent(epoch.Add(ms), 2000, 1000)
	require.False(t, p1.AppLimited)
	require.True(t, p3.AppLimited)

	s.OnAcked(epoch.Add(20*ms), &p1, 1000)
	s.OnAcked(epoch.Add(20*ms), &p2, 1000)
	require.False(t, s.Sample(0).AppLimited, "p2 was sent before the application ran dry")
	p4 := s.OnSent(epoch.Add(20*ms), 1000, 1000)
	require.True(t, p4.AppLimited, "2000 delivered is not yet beyond the mark")
	s.OnAcked(epoch.Add(21*ms), &p3, 1000)
	rs := s.Sample(0)
	require.True(t, rs.AppLimited)
	p5 := s.OnSent(epoch.Add(21*ms), 1000, 1000)
	require.False(t, p5.AppLimited, "3000 delivered: the app-limited period is over")
	require.Equal(t, uint64(3000), s.Delivered())
}

func TestRateArithmeticSaturates(t *testing.T) {
	require.Equal(t, uint64(1<<64-1), bytesPerSecond(1<<63, time.Nanosecond))
	require.Zero(t, bytesPerSecond(1000, 0))
	require.Equal(t, uint64(1000), bytesPerSecond(1, time.Millisecond))
	require.Equal(t, maxWindow, bytesIn(1<<63, time.Hour))
	require.Equal(t, 1250, bytesIn(125_000, 10*ms))
	require.Zero(t, bytesIn(125_000, -ms))
}

// TestMaxFilterHandWorked: the bandwidth filter is the maximum over the current and the previous
// period.
func TestMaxFilterHandWorked(t *testing.T) {
	var f maxFilter
	f.update(5)
	f.update(3)
	require.Equal(t, uint64(5), f.get())
	f.advance() // periods: [5] [ ]
	require.Equal(t, uint64(5), f.get())
	f.update(4) // [5] [4]
	require.Equal(t, uint64(5), f.get())
	f.advance() // [4] [ ]: the 5 is two periods old
	require.Equal(t, uint64(4), f.get())
	f.update(9)
	require.Equal(t, uint64(9), f.get())
	f.advance()
	f.advance()
	require.Zero(t, f.get())
}

// TestMinFilterHandWorked: a 10 s windowed minimum, refreshed by equal samples, replaced by any
// sample once expired.
func TestMinFilterHandWorked(t *testing.T) {
	f := minFilter{window: 10 * time.Second}
	require.Zero(t, f.get())
	require.True(t, f.update(epoch, 20*ms))
	require.False(t, f.update(epoch.Add(time.Second), 30*ms))
	require.Equal(t, 20*ms, f.get())
	require.True(t, f.update(epoch.Add(5*time.Second), 20*ms), "an equal sample restarts the window")
	require.False(t, f.update(epoch.Add(14*time.Second), 30*ms), "9 s old: still valid")
	require.Equal(t, 20*ms, f.get())
	require.True(t, f.update(epoch.Add(15*time.Second+ms), 30*ms), "expired: the path's RTT grew")
	require.Equal(t, 30*ms, f.get())
	require.True(t, f.update(epoch.Add(16*time.Second), 25*ms))
	require.Equal(t, 25*ms, f.get())
}
