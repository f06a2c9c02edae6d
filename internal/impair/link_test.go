package impair

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) // virtual clock origin

// delivery is one copy handed out by a Link in a virtual-time run.
type delivery struct {
	at   time.Time
	data []byte
}

// sim drives a Link in virtual time: datagram i (payload: its index, padded to size bytes) is
// sent at t0 + i·gap, and every copy is received exactly when NextDelivery says it is due.
type sim struct {
	l       *Link
	results []SendResult
	got     []delivery
	buf     []byte
}

func newSim(cfg Config) *sim {
	return &sim{l: NewLink(cfg, t0), buf: make([]byte, 1<<16)}
}

// receiveUntil takes every copy due by now, stepping the clock to each NextDelivery.
func (s *sim) receiveUntil(t *testing.T, now time.Time) {
	for {
		next := s.l.NextDelivery()
		if next.IsZero() || next.After(now) {
			return
		}
		n, ok := s.l.Receive(next, s.buf)
		if !ok { // not require: this runs for every copy, and require is slow under -race
			t.Fatalf("NextDelivery %v said a copy was due", next)
		}
		s.got = append(s.got, delivery{at: next, data: bytes.Clone(s.buf[:n])})
	}
}

func (s *sim) run(t *testing.T, count int, gap time.Duration, size int) {
	for i := range count {
		now := t0.Add(time.Duration(i) * gap)
		s.receiveUntil(t, now)
		b := make([]byte, max(size, 8))
		binary.BigEndian.PutUint64(b, uint64(i))
		s.results = append(s.results, s.l.Send(now, b))
	}
	s.receiveUntil(t, t0.Add(1000*time.Hour))
	require.Zero(t, s.l.Len())
}

func index(d delivery) int { return int(binary.BigEndian.Uint64(d.data)) }

func TestLinkZeroConfigPassesEverythingAtOnce(t *testing.T) {
	l := NewLink(Config{}, t0)
	buf := make([]byte, 100)
	for i := range 50 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		msg := []byte{byte(i), 1, 2, 3}
		res := l.Send(now, msg)
		require.Equal(t, NotDropped, res.Drop)
		require.Equal(t, 1, res.Copies)
		require.Equal(t, now, res.At[0])
		require.Equal(t, now, l.NextDelivery())
		n, ok := l.Receive(now, buf)
		require.True(t, ok)
		require.Equal(t, msg, buf[:n])
		_, ok = l.Receive(now, buf)
		require.False(t, ok)
		require.True(t, l.NextDelivery().IsZero())
	}
	st := l.Stats()
	require.Equal(t, uint64(50), st.Sent)
	require.Equal(t, uint64(50), st.Delivered)
	require.Equal(t, uint64(200), st.DeliveredBytes)
	require.Zero(t, st.Dropped())
}

func TestLinkDoesNotDeliverEarly(t *testing.T) {
	l := NewLink(Config{Delay: 10 * time.Millisecond}, t0)
	l.Send(t0, []byte("x"))
	buf := make([]byte, 10)
	_, ok := l.Receive(t0.Add(10*time.Millisecond-1), buf)
	require.False(t, ok)
	require.Equal(t, t0.Add(10*time.Millisecond), l.NextDelivery())
	n, ok := l.Receive(t0.Add(10*time.Millisecond), buf)
	require.True(t, ok)
	require.Equal(t, "x", string(buf[:n]))
}

func TestLinkTruncatesToDst(t *testing.T) {
	l := NewLink(Config{}, t0)
	l.Send(t0, []byte("hello"))
	buf := make([]byte, 3)
	n, ok := l.Receive(t0, buf)
	require.True(t, ok)
	require.Equal(t, "hel", string(buf[:n]))
}

func TestLinkTimeNeverGoesBackwards(t *testing.T) {
	l := NewLink(Config{Delay: time.Second}, t0)
	l.Send(t0.Add(5*time.Second), []byte("a"))
	res := l.Send(t0, []byte("b")) // earlier than already seen: counts as 5 s
	require.Equal(t, t0.Add(6*time.Second), res.At[0])
	res = l.Send(t0.Add(-time.Hour), []byte("c"))
	require.Equal(t, t0.Add(6*time.Second), res.At[0])
}

// everything is a Config with every impairment on, for determinism tests.
func everything(seed int64) Config {
	burst, err := GilbertLoss(0.03, 3)
	if err != nil {
		panic(err)
	}
	return Config{
		Loss: 0.05, Burst: burst, Reorder: 0.05, Duplicate: 0.05, Corrupt: 0.05,
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond,
		Rate: 20_000_000, QueueDelay: 20 * time.Millisecond,
		Blackouts: []Blackout{{Start: 300 * time.Millisecond, Duration: 50 * time.Millisecond}},
		Seed:      seed,
	}
}

func TestLinkSameSeedSameDecisions(t *testing.T) {
	a, b := newSim(everything(42)), newSim(everything(42))
	a.run(t, 5000, 200*time.Microsecond, 1200)
	b.run(t, 5000, 200*time.Microsecond, 1200)
	require.Equal(t, a.results, b.results)
	require.Equal(t, a.got, b.got)
	require.Equal(t, a.l.Stats(), b.l.Stats())

	// Every kind of decision was exercised.
	st := a.l.Stats()
	for name, v := range map[string]uint64{
		"random": st.LostRandom, "burst": st.LostBurst, "blackout": st.LostBlackout,
		"queue": st.QueueDrops, "reordered": st.Reordered, "duplicated": st.Duplicated,
		"corrupted": st.Corrupted,
	} {
		require.NotZero(t, v, name)
	}

	c := newSim(everything(43))
	c.run(t, 5000, 200*time.Microsecond, 1200)
	require.NotEqual(t, a.results, c.results)
}

func TestLinkDecisionsIndependentOfOtherImpairments(t *testing.T) {
	lost := func(cfg Config) []int {
		s := newSim(cfg)
		s.run(t, 20000, time.Millisecond, 100)
		var out []int
		for i, r := range s.results {
			if r.Drop != NotDropped {
				out = append(out, i)
			}
		}
		return out
	}
	plain := lost(Config{Loss: 0.1, Seed: 7})
	busy := lost(Config{Loss: 0.1, Seed: 7, Duplicate: 0.3, Corrupt: 0.2, Reorder: 0.1,
		Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond})
	require.NotEmpty(t, plain)
	require.Equal(t, plain, busy)
}

// within requires got to be within k standard deviations of a binomial(n, p) mean.
func within(t *testing.T, got uint64, n int, p float64, k float64, what string) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	require.InDelta(t, mean, float64(got), k*sd, "%s: %d of %d, want ≈ %.0f", what, got, n, mean)
}

func TestLinkLossRate(t *testing.T) {
	const n = 100_000
	for seed, p := range []float64{0.01, 0.1, 0.5} {
		l := NewLink(Config{Loss: p, Seed: int64(seed)}, t0)
		buf := make([]byte, 64)
		var delivered, dropped, wrong int // no require in the loop: it is slow under -race
		for i := range n {
			now := t0.Add(time.Duration(i) * time.Microsecond)
			res := l.Send(now, buf[:10])
			switch {
			case res.Copies == 1 && res.Drop == NotDropped:
				if _, ok := l.Receive(now, buf); ok {
					delivered++
				}
			case res.Copies == 0 && res.Drop == DropLoss:
				dropped++
			default:
				wrong++
			}
		}
		require.Zero(t, wrong)
		st := l.Stats()
		within(t, st.LostRandom, n, p, 5, "lost")
		require.Equal(t, uint64(dropped), st.LostRandom)
		require.Equal(t, n, delivered+dropped)
	}
}

func TestLinkLossExtremes(t *testing.T) {
	for _, p := range []float64{0, 1} {
		l := NewLink(Config{Loss: p}, t0)
		for range 1000 {
			l.Send(t0, []byte("x"))
		}
		require.Equal(t, uint64(p*1000), l.Stats().LostRandom)
	}
}

func TestLinkBurstLoss(t *testing.T) {
	const n = 200_000
	for _, tc := range []struct{ avg, meanLen float64 }{{0.05, 4}, {0.02, 10}, {0.1, 1}} {
		g, err := GilbertLoss(tc.avg, tc.meanLen)
		require.NoError(t, err)
		l := NewLink(Config{Burst: g, Seed: 3}, t0)
		var runs, inRun, lost, wrong int
		for range n {
			res := l.Send(t0, []byte("x"))
			if res.Copies == 0 {
				if res.Drop != DropBurst {
					wrong++
				}
				lost++
				if inRun == 0 {
					runs++
				}
				inRun++
			} else {
				inRun = 0
				l.Receive(t0, nil)
			}
		}
		require.Zero(t, wrong)
		require.Equal(t, uint64(lost), l.Stats().LostBurst)
		rate := float64(lost) / n
		require.InEpsilon(t, tc.avg, rate, 0.12, "average loss %v", rate)
		mean := float64(lost) / float64(runs)
		require.InEpsilon(t, tc.meanLen, mean, 0.1, "mean burst length %v", mean)
	}
}

func TestLinkBurstBadLossBelowOne(t *testing.T) {
	// In the bad state half the datagrams survive: the loss rate halves.
	g, err := GilbertLoss(0.1, 5)
	require.NoError(t, err)
	g.BadLoss = 0.5
	l := NewLink(Config{Burst: g, Seed: 9}, t0)
	for range 100_000 {
		if l.Send(t0, nil).Copies > 0 {
			l.Receive(t0, nil)
		}
	}
	require.InEpsilon(t, 0.05, float64(l.Stats().LostBurst)/100_000, 0.15)
}

func TestLinkReorder(t *testing.T) {
	s := newSim(Config{Reorder: 0.1, Delay: 10 * time.Millisecond, Seed: 5})
	s.run(t, 2000, time.Millisecond, 50)
	require.Len(t, s.got, 2000)
	held := s.l.Stats().Reordered
	within(t, held, 2000, 0.1, 5, "held back")
	// ReorderDelay defaults to Delay+Jitter = 10 ms, ten sending intervals: a held datagram is
	// overtaken by the next ones (unless it is among the last ten), and no other is overtaken.
	highest := -1
	for _, d := range s.got {
		i := index(d)
		overtaken := i < highest
		highest = max(highest, i)
		if i < 1990 {
			require.Equal(t, s.results[i].Reordered, overtaken, "datagram %d", i)
		} else if !s.results[i].Reordered {
			require.False(t, overtaken)
		}
	}
	for i, r := range s.results {
		want := t0.Add(time.Duration(i)*time.Millisecond + 10*time.Millisecond)
		if r.Reordered {
			want = want.Add(10 * time.Millisecond)
		}
		require.Equal(t, want, r.At[0], "datagram %d", i)
	}
}

func TestLinkReorderDelay(t *testing.T) {
	l := NewLink(Config{Reorder: 1, ReorderDelay: 3 * time.Millisecond}, t0)
	res := l.Send(t0, []byte("x"))
	require.True(t, res.Reordered)
	require.Equal(t, t0.Add(3*time.Millisecond), res.At[0])

	// Zero delay and jitter: the hold-back is minReorderDelay.
	l = NewLink(Config{Reorder: 1}, t0)
	require.Equal(t, t0.Add(minReorderDelay), l.Send(t0, nil).At[0])
}

func TestLinkJitterDoesNotReorder(t *testing.T) {
	cfg := Config{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 11}
	s := newSim(cfg)
	s.run(t, 20000, 500*time.Microsecond, 20)
	require.Len(t, s.got, 20000)
	var minDelay, maxDelay, sum time.Duration = time.Hour, 0, 0
	for i, d := range s.got {
		delay := d.at.Sub(t0.Add(time.Duration(i) * 500 * time.Microsecond))
		if index(d) != i || delay < 10*time.Millisecond || delay > 30*time.Millisecond {
			t.Fatalf("delivery %d: datagram %d after %v", i, index(d), delay)
		}
		minDelay, maxDelay = min(minDelay, delay), max(maxDelay, delay)
		sum += delay
	}
	// Not skewed: the average delay is Delay.
	require.InDelta(t, float64(20*time.Millisecond), float64(sum/20000), float64(time.Millisecond))
	// The delay really varies across the jitter range.
	require.Less(t, minDelay, 12*time.Millisecond)
	require.Greater(t, maxDelay, 28*time.Millisecond)
}

func TestLinkDuplicate(t *testing.T) {
	const n = 10_000
	s := newSim(Config{Duplicate: 0.2, Delay: time.Millisecond, Seed: 8})
	s.run(t, n, 100*time.Microsecond, 30)
	st := s.l.Stats()
	within(t, st.Duplicated, n, 0.2, 5, "duplicated")
	require.Equal(t, uint64(n)+st.Duplicated, st.Delivered)
	require.Len(t, s.got, n+int(st.Duplicated))
	// Copies arrive back to back, identical.
	dups := 0
	for i := 1; i < len(s.got); i++ {
		if index(s.got[i]) == index(s.got[i-1]) {
			require.Equal(t, s.got[i-1], s.got[i])
			dups++
		}
	}
	require.Equal(t, int(st.Duplicated), dups)
	for _, r := range s.results {
		if r.Copies == 2 {
			require.Equal(t, r.At[0], r.At[1])
		}
	}
}

func TestLinkCorrupt(t *testing.T) {
	orig := bytes.Repeat([]byte{0x5a}, 1200)
	l := NewLink(Config{Corrupt: 1, Duplicate: 1, Seed: 2}, t0)
	buf := make([]byte, 2000)
	for range 2000 {
		b := bytes.Clone(orig)
		res := l.Send(t0, b)
		require.Equal(t, orig, b, "Send must not modify its input")
		require.Equal(t, [2]bool{true, true}, res.Corrupted)
		for range 2 {
			n, ok := l.Receive(t0, buf)
			require.True(t, ok)
			require.Equal(t, len(orig), n)
			changed := 0
			for i := range n {
				if diff := buf[i] ^ orig[i]; diff != 0 {
					require.Equal(t, 1, bits.OnesCount8(diff), "one bit per byte")
					changed++
				}
			}
			require.True(t, changed >= 1 && changed <= 3, "%d bytes changed", changed)
		}
	}
	require.Equal(t, uint64(4000), l.Stats().Corrupted)

	// A one-byte datagram can be corrupted; an empty one cannot.
	res := l.Send(t0, []byte{0})
	require.True(t, res.Corrupted[0])
	n, _ := l.Receive(t0, buf)
	require.Equal(t, 1, bits.OnesCount8(buf[:n][0]))
	l.Receive(t0, buf)
	res = l.Send(t0, nil)
	require.False(t, res.Corrupted[0])

	// At 10%, about a tenth.
	l = NewLink(Config{Corrupt: 0.1, Seed: 4}, t0)
	for range 10_000 {
		l.Send(t0, orig)
		l.Receive(t0, buf)
	}
	within(t, l.Stats().Corrupted, 10_000, 0.1, 5, "corrupted")
}

func TestLinkRateLimit(t *testing.T) {
	const (
		rate = 8_000_000 // 1 MB/s
		size = 1000      // 1 ms of serialisation each
	)
	for _, tc := range []struct {
		name     string
		cfg      Config
		maxQueue time.Duration
	}{
		{"QueueDelay", Config{Rate: rate, QueueDelay: 50 * time.Millisecond}, 50 * time.Millisecond},
		{"QueueBytes", Config{Rate: rate, QueueBytes: 10_000}, 10 * time.Millisecond},
		{"default", Config{Rate: rate}, DefaultQueueDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Delay = 5 * time.Millisecond
			s := newSim(tc.cfg)
			// Offer 2 MB/s for 2 s: twice the rate.
			s.run(t, 4000, 500*time.Microsecond, size)
			st := s.l.Stats()
			require.NotZero(t, st.QueueDrops)
			require.Equal(t, uint64(4000), st.Delivered+st.QueueDrops)

			// Delivered throughput is the rate, to within one datagram over the run.
			first, last := s.got[0].at, s.got[len(s.got)-1].at
			throughput := float64(len(s.got)-1) * size * 8 / last.Sub(first).Seconds()
			require.InEpsilon(t, float64(rate), throughput, 0.01)

			// No datagram waits longer than the queue bound (plus its own serialisation and
			// the propagation delay).
			for i, r := range s.results {
				if r.Copies == 0 {
					require.Equal(t, DropQueue, r.Drop)
					continue
				}
				sent := t0.Add(time.Duration(i) * 500 * time.Microsecond)
				require.LessOrEqual(t, r.At[0].Sub(sent), tc.maxQueue+time.Millisecond+5*time.Millisecond)
			}
		})
	}
}

func TestLinkRateIdleAcceptsOversizeDatagram(t *testing.T) {
	l := NewLink(Config{Rate: 8000, QueueBytes: 10}, t0) // 1 byte per ms
	res := l.Send(t0, make([]byte, 100))
	require.Equal(t, NotDropped, res.Drop)
	require.Equal(t, t0.Add(100*time.Millisecond), res.At[0])
	require.Equal(t, DropQueue, l.Send(t0, make([]byte, 1)).Drop)
	// Once serialised, the link accepts again.
	require.Equal(t, NotDropped, l.Send(t0.Add(100*time.Millisecond), make([]byte, 1)).Drop)
}

func TestLinkBlackouts(t *testing.T) {
	windows := []Blackout{{Start: time.Second, Duration: 500 * time.Millisecond}, {Start: 3 * time.Second, Duration: 10 * time.Millisecond}}
	s := newSim(Config{Blackouts: windows, Delay: 200 * time.Millisecond})
	s.run(t, 4000, time.Millisecond, 10)
	for i, r := range s.results {
		at := time.Duration(i) * time.Millisecond
		in := at >= time.Second && at < 1500*time.Millisecond || at >= 3*time.Second && at < 3010*time.Millisecond
		if in {
			require.Equal(t, DropBlackout, r.Drop, "datagram at %v", at)
		} else {
			require.Equal(t, NotDropped, r.Drop, "datagram at %v", at)
		}
	}
	require.Equal(t, uint64(510), s.l.Stats().LostBlackout)
	// Datagrams already in flight when the blackout began are still delivered during it.
	delivered := 0
	for _, d := range s.got {
		if at := d.at.Sub(t0); at >= time.Second && at < 1200*time.Millisecond {
			delivered++
		}
	}
	require.Equal(t, 200, delivered)
}

func TestLinkBlackoutsCopied(t *testing.T) {
	windows := []Blackout{{Start: 0, Duration: time.Second}}
	l := NewLink(Config{Blackouts: windows}, t0)
	windows[0].Duration = 1 // the Link must not see the caller's later changes
	require.Equal(t, DropBlackout, l.Send(t0.Add(time.Millisecond), nil).Drop)
}

func TestLinkLimit(t *testing.T) {
	l := NewLink(Config{Limit: 10, Delay: time.Second, Duplicate: 1}, t0)
	var drops, dupes int
	for range 20 {
		res := l.Send(t0, []byte("x"))
		if res.Drop == DropLimit {
			drops++
		}
		if res.Copies == 2 {
			dupes++
		}
	}
	require.Equal(t, 10, l.Len())
	require.Equal(t, 5, dupes) // each accepted datagram brought its duplicate while there was room
	require.Equal(t, 15, drops)
	require.Equal(t, uint64(15), l.Stats().LimitDrops)
	require.Equal(t, 10, l.Stats().Queued)
}

func TestLinkHeapOrderWithManyTimes(t *testing.T) {
	// Heavy reordering with long hold-backs exercises the heap; deliveries come out sorted by
	// time and, at equal times, by send order.
	s := newSim(Config{Reorder: 0.5, ReorderDelay: 7 * time.Millisecond, Jitter: 3 * time.Millisecond,
		Delay: 3 * time.Millisecond, Duplicate: 0.3, Seed: 99})
	s.run(t, 20000, 100*time.Microsecond, 8)
	for i := 1; i < len(s.got); i++ {
		if s.got[i].at.Before(s.got[i-1].at) {
			t.Fatalf("delivery %d at %v is before the previous one at %v", i, s.got[i].at, s.got[i-1].at)
		}
	}
	require.Equal(t, int(s.l.Stats().Delivered), len(s.got))
}

func TestDropReasonString(t *testing.T) {
	require.Equal(t, "none", NotDropped.String())
	require.Equal(t, "queue", DropQueue.String())
	require.Equal(t, "unknown", DropReason(200).String())
}

func TestNewLinkPanicsOnInvalidConfig(t *testing.T) {
	require.Panics(t, func() { NewLink(Config{Loss: 2}, t0) })
}

func TestLinkSendReceiveDoesNotAllocate(t *testing.T) {
	cfg := everything(1)
	cfg.Blackouts = nil
	l := NewLink(cfg, t0)
	msg := make([]byte, 1200)
	buf := make([]byte, 1500)
	now := t0
	step := func() {
		now = now.Add(100 * time.Microsecond)
		l.Send(now, msg)
		for {
			if _, ok := l.Receive(now, buf); !ok {
				break
			}
		}
	}
	for range 10_000 { // reach the steady state: buffers pooled, heap grown
		step()
	}
	require.Zero(t, testing.AllocsPerRun(10_000, step))
}

func BenchmarkLinkSendReceive(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"passthrough", Config{}},
		{"delay", Config{Delay: 10 * time.Millisecond, Jitter: time.Millisecond}},
		{"everything", func() Config {
			c := everything(1)
			c.Blackouts = nil
			c.Rate = 2_000_000_000 // 4.8 µs per datagram: the queue holds, so most get through
			return c
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := NewLink(bc.cfg, t0)
			msg := make([]byte, 1200)
			buf := make([]byte, 1500)
			now := t0
			step := func() {
				now = now.Add(10 * time.Microsecond) // 100k datagrams per virtual second
				l.Send(now, msg)
				for {
					if _, ok := l.Receive(now, buf); !ok {
						break
					}
				}
			}
			for range 10_000 { // reach the steady state before measuring
				step()
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
		})
	}
}

func TestLinkMaxSize(t *testing.T) {
	l := NewLink(Config{MaxSize: 1300, MaxSizeAt: time.Second}, t0)
	// Before MaxSizeAt the path carries anything.
	require.Equal(t, NotDropped, l.Send(t0, make([]byte, 1452)).Drop)
	at := t0.Add(time.Second)
	for _, c := range []struct {
		size int
		want DropReason
	}{{1300, NotDropped}, {1301, DropTooBig}, {1452, DropTooBig}, {1200, NotDropped}, {0, NotDropped}} {
		require.Equal(t, c.want, l.Send(at, make([]byte, c.size)).Drop, "size %d", c.size)
	}
	st := l.Stats()
	require.Equal(t, uint64(2), st.TooBig)
	require.Equal(t, uint64(2), st.Dropped())
	require.Equal(t, "too big", DropTooBig.String())

	// The decisions for the other datagrams do not depend on MaxSize: a size limit only removes
	// the datagrams that are too big.
	base := newSim(Config{Loss: 0.2, Seed: 7})
	limited := newSim(Config{Loss: 0.2, Seed: 7, MaxSize: 100})
	for i := range 1000 {
		size := 64
		if i%3 == 0 {
			size = 200
		}
		now := t0.Add(time.Duration(i) * time.Millisecond)
		a, b := base.l.Send(now, make([]byte, size)), limited.l.Send(now, make([]byte, size))
		if size > 100 {
			require.Equal(t, DropTooBig, b.Drop)
		} else {
			require.Equal(t, a.Drop, b.Drop, "datagram %d", i)
		}
	}
}

func TestValidateMaxSize(t *testing.T) {
	require.Error(t, Config{MaxSize: -1}.Validate())
	require.Error(t, Config{MaxSizeAt: time.Second}.Validate())
	require.NoError(t, Config{MaxSize: 1280, MaxSizeAt: time.Second}.Validate())
	require.False(t, Config{MaxSize: 1280}.Passthrough())
	require.Contains(t, Config{MaxSize: 1280, MaxSizeAt: time.Second}.String(), "maxsize=1280@1s")
}
