package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// fixedRate is a controller with a huge window that paces at a rate of its own: the session's
// pacer must follow it (congestion.Controller.PacingRate).
type fixedRate struct{ rate uint64 }

func (fixedRate) OnPacketSent(time.Time, int) {}
func (fixedRate) OnAck(*congestion.AckEvent)  {}
func (fixedRate) CongestionWindow() int       { return 64 << 20 }
func (f fixedRate) PacingRate() uint64        { return f.rate }
func (fixedRate) InRecovery() bool            { return false }
func (fixedRate) InSlowStart() bool           { return false }

// TestPacerFollowsTheControllersRate: 3 MiB at a controller-chosen 2 MB/s takes about 1.6 s of
// virtual time, though the window would allow everything at once; Stats reports that rate.
func TestPacerFollowsTheControllersRate(t *testing.T) {
	const rate = 2_000_000
	// A short keep-alive: the pair driver moves its clock to the next timer before it sees that
	// the transfer is over, and with nothing else pending that is the keep-alive.
	conf := &Config{Congestion: func(int) congestion.Controller { return fixedRate{rate} }, KeepAlive: 100 * time.Millisecond}
	p := newPair(t, conf, 1)
	a := randBytes(p.rng, 3<<20)
	p.out[0] = a
	start := p.now
	p.run(60 * time.Second)
	require.True(t, bytes.Equal(a, p.in[1]))
	took := p.now.Sub(start).Seconds()
	// The datagrams' headers and tags add ~3%; the handshake and close add a few round trips.
	require.InDelta(t, float64(3<<20)/rate, took, 0.25, "took %.2f s", took)
	require.Equal(t, int64(rate), p.ends[0].Stats().PacingRate)
}
