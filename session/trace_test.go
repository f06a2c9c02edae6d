package session

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/session/congestion"
)

// countingTracer counts events by kind and checks they come in time order.
type countingTracer struct {
	t      testing.TB
	counts map[TraceKind]int
	states []CongestionState
	last   time.Time
}

func (c *countingTracer) TraceEvent(ev TraceEvent) {
	require.False(c.t, ev.Time.Before(c.last), "event %v goes back in time", ev.Kind)
	c.last = ev.Time
	c.counts[ev.Kind]++
	if ev.Kind == TraceCongestionState {
		c.states = append(c.states, ev.State)
	}
}

// TestTracerEvents: over a lossy simulated path, the core reports every packet it sends and
// accepts, the losses it declares, and congestion state changes, consistently with its Stats.
func TestTracerEvents(t *testing.T) {
	// CUBIC: a loss-based controller enters recovery on loss, which the test wants to see
	// reported (BBR, the default, does not read random loss as congestion).
	p := newPair(t, &Config{Congestion: congestion.NewCubic}, 7)
	p.loss = 0.05
	tr := [2]*countingTracer{}
	for i, c := range p.ends {
		tr[i] = &countingTracer{t: t, counts: map[TraceKind]int{}}
		c.SetTracer(tr[i])
	}
	p.out[0] = randBytes(p.rng, 2<<20)
	p.run(120 * time.Second)

	for i, c := range p.ends {
		st := c.Stats()
		require.Equal(t, int(st.DatagramsSent), tr[i].counts[TracePacketSent], "end %d", i)
		require.Equal(t, int(st.PacketsLost), tr[i].counts[TracePacketLost], "end %d", i)
		require.Equal(t, int(st.DatagramsReceived-st.Drops.Total()), tr[i].counts[TracePacketReceived], "end %d", i)
	}
	sender := tr[0]
	require.Positive(t, sender.counts[TracePacketLost])
	require.Contains(t, sender.states, Recovery)
	for i := 1; i < len(sender.states); i++ {
		require.NotEqual(t, sender.states[i-1], sender.states[i], "only changes are reported")
	}
}

// TestTracerCleanPath: without loss, a connection reports slow start and no losses.
func TestTracerCleanPath(t *testing.T) {
	p := newPair(t, nil, 1)
	tr := &countingTracer{t: t, counts: map[TraceKind]int{}}
	p.ends[0].SetTracer(tr)
	p.out[0] = randBytes(p.rng, 256<<10)
	p.run(60 * time.Second)
	require.Equal(t, []CongestionState{SlowStart}, tr.states)
	require.Zero(t, tr.counts[TracePacketLost])
	require.Positive(t, tr.counts[TracePacketSent])
	require.Positive(t, tr.counts[TracePacketReceived])
}

type nopTracer struct{ n int }

func (t *nopTracer) TraceEvent(TraceEvent) { t.n++ }

// TestTracerAllocs: tracing costs no allocation per datagram, on or off (off is
// TestSteadyStateAllocs; this is on, with a tracer that keeps nothing).
func TestTracerAllocs(t *testing.T) {
	if os.Getenv("TLSGRAM_RACE") != "" {
		t.Skip("allocation counts differ under the race detector")
	}
	c, s, now := handshake(t, &Config{DisablePacing: true})
	tr := &nopTracer{}
	c.SetTracer(tr)
	s.SetTracer(tr)
	buf := make([]byte, 1500)
	payload := make([]byte, 4096)
	rbuf := make([]byte, 8192)
	step := func() {
		now = now.Add(100 * time.Microsecond)
		_, _ = c.Write(payload)
		exchange(c, s, now, buf)
		for {
			if n, _ := s.Read(rbuf); n == 0 {
				break
			}
		}
	}
	for range 2000 {
		step()
	}
	allocs := testing.AllocsPerRun(500, step)
	if !raceEnabled { // sync.Pool drops some Puts on purpose under the race detector (scratch.go)
		require.Zero(t, allocs)
	}
	require.Positive(t, tr.n)
}

// BenchmarkSessionTracer is BenchmarkSessionSendReceive's loop without a tracer ("off", the
// default) and with one that does nothing ("nop"): off must cost what the core costs without
// tracing support, nop shows the price of the calls.
func BenchmarkSessionTracer(b *testing.B) {
	for _, name := range []string{"off", "nop"} {
		b.Run(name, func(b *testing.B) {
			c, s, now := handshake(b, &Config{DisablePacing: true})
			if name == "nop" {
				c.SetTracer(&nopTracer{})
				s.SetTracer(&nopTracer{})
			}
			buf := make([]byte, 1200)
			payload := make([]byte, 64<<10)
			rbuf := make([]byte, 64<<10)
			b.ReportAllocs()
			for datagrams := 0; datagrams < b.N; {
				now = now.Add(50 * time.Microsecond)
				if c.SendSpace() > len(payload) {
					_, _ = c.Write(payload)
				}
				datagrams += exchange(c, s, now, buf)
				for {
					if n, _ := s.Read(rbuf); n == 0 {
						break
					}
				}
			}
		})
	}
}
