package congestion

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacerDisabled(t *testing.T) {
	var zero Pacer // usable: no pacing until SetRate
	require.Equal(t, epoch, zero.TimeUntilSend(epoch, mds))
	zero.OnSent(epoch, mds)

	p := NewPacer(mds)
	for range 1000 {
		require.Equal(t, epoch, p.TimeUntilSend(epoch, mds))
		p.OnSent(epoch, mds)
	}
	p.SetRate(12000, 100*ms)
	p.SetRate(0, 100*ms) // off again
	require.Equal(t, epoch, p.TimeUntilSend(epoch, 100*mds))
	p.SetRate(12000, 0)
	require.Equal(t, epoch, p.TimeUntilSend(epoch, 100*mds))
}

func TestPacerBurstThenRate(t *testing.T) {
	p := NewPacer(mds)
	// rate = 1.25·12000/0.1s = 150000 B/s: one 1200-byte datagram every 8ms.
	p.SetRate(12000, 100*ms)
	now := epoch
	// The bucket starts full: PacingBurstDatagrams datagrams (the whole initial window) go at once.
	for i := range PacingBurstDatagrams {
		require.Equal(t, now, p.TimeUntilSend(now, mds), "datagram %d", i)
		p.OnSent(now, mds)
	}
	next := p.TimeUntilSend(now, mds)
	require.Equal(t, now.Add(8*ms), next)
	// Asking again changes nothing; a smaller datagram may go sooner.
	require.Equal(t, next, p.TimeUntilSend(now.Add(ms), mds))
	require.Equal(t, now.Add(4*ms), p.TimeUntilSend(now, mds/2))
	// Just before it is due it still waits; at the time it may go.
	require.Equal(t, next, p.TimeUntilSend(next.Add(-time.Nanosecond), mds))
	require.Equal(t, next, p.TimeUntilSend(next, mds))

	// After a long idle period the bucket holds only the burst again.
	later := now.Add(time.Hour)
	for range PacingBurstDatagrams {
		require.Equal(t, later, p.TimeUntilSend(later, mds))
		p.OnSent(later, mds)
	}
	require.True(t, p.TimeUntilSend(later, mds).After(later))
}

func TestPacerOversizedDatagram(t *testing.T) {
	p := NewPacer(mds)
	p.SetRate(12000, 100*ms)
	// Larger than the whole bucket: allowed once the bucket is full, instead of never.
	require.Equal(t, epoch, p.TimeUntilSend(epoch, 20*mds))
	p.OnSent(epoch, 20*mds)
	ready := p.TimeUntilSend(epoch, 20*mds)
	require.True(t, ready.After(epoch))
	require.Equal(t, ready, p.TimeUntilSend(ready, 20*mds))
}

// TestPacerLongRunRate sends as fast as the pacer allows on a virtual clock and checks that the
// average rate is 1.25·cwnd/srtt (RFC 9002 §7.7).
func TestPacerLongRunRate(t *testing.T) {
	for _, tc := range []struct {
		cwnd int
		srtt time.Duration
	}{
		{12000, 100 * ms},
		{100 * mds, 20 * ms},
		{10_000_000, 10 * ms}, // 1.25 GB/s: the burst is PacingGranularity worth, not 10 datagrams
		{2 * mds, 333 * ms},
	} {
		p := NewPacer(mds)
		p.SetRate(tc.cwnd, tc.srtt)
		rate := 1.25 * float64(tc.cwnd) / tc.srtt.Seconds() // bytes per second
		burst := max(float64(PacingBurstDatagrams*mds), rate*PacingGranularity.Seconds())

		now := epoch
		sent := 0
		dur := 2000 * time.Duration(float64(mds)/rate*float64(time.Second)) // 2000 datagram times
		for now.Before(epoch.Add(dur)) {
			now = p.TimeUntilSend(now, mds)
			p.OnSent(now, mds)
			sent += mds
		}
		elapsed := now.Sub(epoch).Seconds()
		got := (float64(sent) - burst) / elapsed
		require.InEpsilon(t, rate, got, 0.002, "cwnd %d srtt %v", tc.cwnd, tc.srtt)
	}
}

// TestPacerNeverFasterThanRate polls the pacer at random times with random sizes and checks every
// interval of the send log: at most the burst plus rate·interval bytes.
func TestPacerNeverFasterThanRate(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	p := NewPacer(mds)
	const cwnd, srtt = 40 * mds, 50 * ms
	p.SetRate(cwnd, srtt)
	rate := 1.25 * cwnd / srtt.Seconds()
	burst := float64(PacingBurstDatagrams * mds)

	type send struct {
		at   time.Time
		size int
	}
	var log []send
	now := epoch
	for range 3000 {
		now = now.Add(time.Duration(rng.Int63n(int64(ms / 2))))
		size := 100 + rng.Intn(mds-100+1)
		if !p.TimeUntilSend(now, size).After(now) {
			p.OnSent(now, size)
			log = append(log, send{now, size})
		}
	}
	require.Greater(t, len(log), 1000)
	for i := range log {
		total := 0
		for j := i; j < len(log); j++ {
			total += log[j].size
			window := log[j].at.Sub(log[i].at).Seconds()
			if limit := burst + rate*window + 1; float64(total) > limit {
				require.LessOrEqual(t, float64(total), limit, "sends %d..%d", i, j)
			}
		}
	}
}

func TestPacerRateChange(t *testing.T) {
	p := NewPacer(mds)
	p.SetRate(12000, 100*ms)
	now := epoch
	for range PacingBurstDatagrams {
		p.OnSent(now, mds)
	}
	require.Equal(t, now.Add(8*ms), p.TimeUntilSend(now, mds))
	// A larger window (or shorter RTT) speeds the pacer up from here on.
	p.SetRate(24000, 100*ms)
	require.Equal(t, now.Add(4*ms), p.TimeUntilSend(now, mds))
}
