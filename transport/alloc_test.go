package transport

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSteadyStateAllocs checks that a bulk transfer on real loopback sockets allocates (almost)
// nothing per datagram once warmed up: pooled buffers on the receive and send paths, batch
// system calls without per-datagram addresses, no per-datagram channels or timers. Everything
// in the process counts, crypto/tls included (it allocates a small reader per TLS record it
// reads, about one per 14 datagrams at 1200 bytes), so the bound is a small fraction rather than
// zero. Measured: 0.03 per datagram; 0.05 under -race, whose sync.Pool drops some Puts on
// purpose.
//
// The allocations are also counted by site (allocSites): besides crypto/tls's record reader,
// what remains is pools refilling after a garbage collection emptied them (buffers, pooled
// rings, sync.Pool's own chains) and crypto/tls's rare buffer growth, not anything per datagram.
// Measured: 52-129 such allocations for ~49,000 datagrams (0.001-0.003 per datagram), against
// ~1,100 record readers.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("measures a 32 MiB transfer")
	}
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	read := make(chan int64, 1)
	go func() {
		c := <-conns
		buf := make([]byte, 64<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		_ = c.Close()
		read <- n
	}()
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	buf := make([]byte, 1<<20)
	for range 8 { // warm up: pools, windows, congestion window
		_, err := c.Write(buf)
		require.NoError(t, err)
	}
	before := c.Stats()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	tlsReader, others := allocSites(func() {
		for range 32 {
			_, err := c.Write(buf)
			require.NoError(t, err)
		}
	})
	runtime.ReadMemStats(&m1)
	after := c.Stats()
	require.NoError(t, c.CloseWrite())
	require.Equal(t, int64(40<<20), <-read)
	require.NoError(t, c.Close())

	// The peer handled about as many datagrams as we did, in the same process.
	datagrams := 2 * float64(after.DatagramsSent-before.DatagramsSent+after.DatagramsReceived-before.DatagramsReceived)
	perDatagram := float64(m1.Mallocs-m0.Mallocs) / datagrams
	t.Logf("%d allocations for ~%.0f datagrams: %.3f per datagram", m1.Mallocs-m0.Mallocs, datagrams, perDatagram)
	// The total includes the allocation profiler's own records (allocSites profiles every
	// allocation) and crypto/tls's record reader, 0.07-0.10 per datagram on a busy machine; the
	// bound below on everything else is the one that tells.
	require.Less(t, perDatagram, 0.2)
	var other int64
	for s, n := range others {
		t.Logf("allocation site %s: %d", s, n)
		other += n
	}
	t.Logf("crypto/tls record readers: %d; everything else: %d (%.4f per datagram)", tlsReader, other, float64(other)/datagrams)
	require.Less(t, float64(other)/datagrams, 0.005, "allocations per datagram besides crypto/tls's record reader")
}

// TestPingPongAllocs checks that the request/response path allocates nothing per datagram once
// warmed up, in the whole process: both ends' cores, drivers, socket readers. What remains is
// crypto/tls's: it allocates a small reader for each record it reads, one per message here. So
// the unit is the message, and the bound is that one allocation with a little room. Measured:
// 1.00 per message (2 per round trip) both before and after the ACK hold of issue 8.
func TestPingPongAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations, which -race (run with -short) inflates on purpose")
	}
	p := newPingPongPair(t, 64)
	c0, s0 := p.client.Stats(), p.server.Stats()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const n = 500
	for range n {
		p.roundTrip(t)
	}
	runtime.ReadMemStats(&m1)
	c1, s1 := p.client.Stats(), p.server.Stats()
	datagrams := c1.DatagramsSent - c0.DatagramsSent + s1.DatagramsSent - s0.DatagramsSent
	perMessage := float64(m1.Mallocs-m0.Mallocs) / (2 * n)
	t.Logf("%d allocations for %d messages in %d datagrams: %.2f per message", m1.Mallocs-m0.Mallocs, 2*n, datagrams, perMessage)
	require.Less(t, perMessage, 1.2)
}
