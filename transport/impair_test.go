package transport

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

// TestImpairedTransfer sends a large stream through the user-space impairment relay on real
// loopback sockets: 5% random loss in both directions plus reordering, duplication and
// corruption. Every byte must arrive intact (corrupted datagrams fail the CRC and are
// retransmitted like lost ones).
//
// Sizes: 64 MiB over IPv4 (8 MiB with -short), 2 MiB over IPv6. The rate under 5% loss is
// bounded by probe timeouts (each at least the peer's 25 ms max_ack_delay), about 1.2-1.5 MB/s
// on loopback, so the full size takes about 50 s; see the package's test budget.
func TestImpairedTransfer(t *testing.T) {
	cases := []struct {
		network string
		cc      Congestion
		size    int
	}{
		{"udp4", NewReno, 64 << 20},
		{"udp6", NewReno, 2 << 20},
		{"udp4", Cubic, 8 << 20},
	}
	for _, tc := range cases {
		name := tc.network + "/newreno"
		if tc.cc == Cubic {
			name = tc.network + "/cubic"
		}
		t.Run(name, func(t *testing.T) {
			network, size := tc.network, tc.size
			if testing.Short() {
				size = min(size, 8<<20)
			}
			defer checkLeaks(t)()
			host := loopbackHost(t, network)
			ln, conns := listenLoopback(t, network, nil)
			defer ln.Close()

			path := impair.Config{Loss: 0.05, Reorder: 0.02, Duplicate: 0.02, Corrupt: 0.02}
			up, down := path, path
			up.Seed, down.Seed = 1, 2
			relay, err := relay.NewRelay(net.JoinHostPort(host, "0"), ln.Addr().String(), up, down)
			require.NoError(t, err)
			require.NoError(t, relay.Start())
			defer relay.Close()

			sums := make(chan [32]byte, 1)
			go func() {
				c := <-conns
				if c == nil {
					return
				}
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					t.Errorf("server: read: %v; stats %+v", err, c.Stats())
				}
				if err := c.Close(); err != nil {
					t.Errorf("server: close: %v; stats %+v", err, c.Stats())
				}
				sums <- [32]byte(h.Sum(nil))
			}()

			start := time.Now()
			c, err := Dial(t.Context(), network, relay.Addr().String(), clientTLS(t), &Config{Congestion: tc.cc})
			require.NoError(t, err)
			src := io.LimitReader(rand.NewChaCha8([32]byte{4}), int64(size))
			h := sha256.New()
			_, err = io.Copy(c, io.TeeReader(src, h))
			require.NoError(t, err)
			require.NoError(t, c.Close(), "client stats %+v", c.Stats())
			require.Equal(t, [32]byte(h.Sum(nil)), <-sums)
			elapsed := time.Since(start)

			st := c.Stats()
			rs := relay.Stats()
			t.Logf("%s: %d MiB in %v (%.1f MB/s); sent %d datagrams, lost %d, retransmitted %d bytes, PTOs %d; relay up %+v",
				network, size>>20, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6,
				st.DatagramsSent, st.PacketsLost, st.StreamBytesRetransmitted, st.PTOs, rs.Up)
			require.Positive(t, rs.Up.Corrupted)
			require.NoError(t, ln.Close())
		})
	}
}
