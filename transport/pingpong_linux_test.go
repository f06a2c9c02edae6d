package transport

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPingPongReadsPerDatagram checks that the socket readers of a request/response ask the
// kernel for each datagram once: a read that leaves the socket empty is followed by a wait for
// readiness, not by another recvmmsg that returns EAGAIN (mmsgReader.readEach). Before, every
// message cost two reads, 4 per round trip; a noisy machine adds a few (a readiness noted
// while the reader was still handling the last datagram wakes it for nothing).
func TestPingPongReadsPerDatagram(t *testing.T) {
	for _, size := range []int{64, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newPingPongPair(t, size)
			readers := make([]*mmsgReader, 0, 2)
			for _, c := range []*Conn{p.client, p.server} {
				r, ok := c.endpoint().sock.reader.(*mmsgReader)
				if !ok {
					t.Skip("no recvmmsg reader on this platform")
				}
				readers = append(readers, r)
			}
			calls := func() (n uint64) {
				for _, r := range readers {
					n += r.calls.Load()
				}
				return n
			}
			c0, s0 := p.client.Stats(), p.server.Stats()
			r0 := calls()
			const n = 500
			for range n {
				p.roundTrip(t)
			}
			reads := calls() - r0
			c1, s1 := p.client.Stats(), p.server.Stats()
			datagrams := c1.DatagramsReceived - c0.DatagramsReceived + s1.DatagramsReceived - s0.DatagramsReceived
			t.Logf("%d round trips: %d datagrams received, %d reads (%.2f per datagram)", n, datagrams,
				reads, float64(reads)/float64(datagrams))
			require.GreaterOrEqual(t, reads, datagrams/maxBatch, "fewer reads than possible")
			require.LessOrEqual(t, float64(reads)/float64(datagrams), 1.5, "reads per datagram received: a read that finds the socket empty after each one")
		})
	}
}
