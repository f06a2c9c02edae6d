package transport

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pingPongPair is a dialled connection and its accepted peer, which echoes everything back at
// once (io.Copy: Read, Write, Read).
type pingPongPair struct {
	client, server *Conn
	req, resp      []byte
}

func newPingPongPair(t *testing.T, size int) *pingPongPair {
	t.Helper()
	ln, conns := listenLoopback(t, "udp4", nil)
	t.Cleanup(func() { _ = ln.Close() })
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	p := &pingPongPair{client: c, req: make([]byte, size), resp: make([]byte, size)}
	accepted := make(chan *Conn, 1)
	go func() {
		if s, ok := <-conns; ok {
			accepted <- s
			echo(s)
		}
	}()
	p.roundTrip(t) // the server end exists once the first data arrives
	select {
	case p.server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	// Warm up: slow start, lazy allocations, the TLS session tickets.
	for range 20 {
		p.roundTrip(t)
	}
	return p
}

func (p *pingPongPair) roundTrip(t *testing.T) {
	_, err := p.client.Write(p.req)
	require.NoError(t, err)
	_, err = io.ReadFull(p.client, p.resp)
	require.NoError(t, err)
}

// TestPingPongOneDatagramEachWay checks issue 8's latency rule: when the application answers at
// once, a request/response costs one datagram each way. The request's tail packet asks for an
// immediate ACK (IMMEDIATE_ACK); the receiver holds that ACK for the application's reply, which
// carries it, instead of sending an ACK-only datagram first. Before the hold, every round trip
// cost four datagrams (data and an ACK each way), so this failed with ~4 per round trip.
//
// The bound leaves room for a noisy machine: an application that is not scheduled within the
// hold (ackHold in session) lets its ACK go alone, which is correct, only not what we measure.
func TestPingPongOneDatagramEachWay(t *testing.T) {
	for _, size := range []int{64, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newPingPongPair(t, size)
			c0, s0 := p.client.Stats(), p.server.Stats()
			const n = 200
			for range n {
				p.roundTrip(t)
			}
			c1, s1 := p.client.Stats(), p.server.Stats()
			sent := c1.DatagramsSent - c0.DatagramsSent + s1.DatagramsSent - s0.DatagramsSent
			t.Logf("%d round trips: client sent %d datagrams, server %d", n,
				c1.DatagramsSent-c0.DatagramsSent, s1.DatagramsSent-s0.DatagramsSent)
			require.GreaterOrEqual(t, sent, uint64(2*n), "fewer datagrams than messages")
			bound := 2.2
			if raceEnabled {
				// The race detector slows the echo's Read-Write turn past the ACK hold more
				// often: 2.24-2.31 seen on the loaded machine, on the code before issue 8's
				// reader changes too.
				bound = 2.4
			}
			require.LessOrEqual(t, float64(sent)/n, bound, "datagrams per round trip: ACK-only datagrams while the application answers at once")
		})
	}
}
