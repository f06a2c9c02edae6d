package transport

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBulkNoQueueDrops: a loopback bulk transfer in each direction loses no datagram to a full
// inbound queue, however short that queue is. The sender stays within the flow-control window
// we advertise, so whatever it sends is ours to take: a full queue makes the socket reader wait
// for the driver (backpressure into the socket's buffer) instead of dropping datagrams that the
// sender's congestion controller would read as congestion. An 8-datagram queue overflowed
// within the first megabyte before that (DroppedQueueFull in the thousands).
func TestBulkNoQueueDrops(t *testing.T) {
	for _, dir := range []string{"upload", "download"} {
		t.Run(dir, func(t *testing.T) {
			defer checkLeaks(t)()
			conf := &Config{InboundQueueLen: 8}
			ln, conns := listenLoopback(t, "udp4", conf)
			defer ln.Close()
			client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), conf)
			require.NoError(t, err)
			server := <-conns
			sender, receiver := client, server
			if dir == "download" {
				sender, receiver = server, client
			}
			size := 16 << 20
			if testing.Short() {
				size = 4 << 20
			}
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7 / 5)
			}
			got := make(chan [32]byte, 1)
			go func() {
				h := sha256.New()
				_, _ = io.Copy(h, receiver)
				got <- [32]byte(h.Sum(nil))
			}()
			_, err = io.Copy(sender, bytes.NewReader(data))
			require.NoError(t, err)
			require.NoError(t, sender.CloseWrite())
			require.Equal(t, sha256.Sum256(data), <-got)
			rs, ss := receiver.Stats(), sender.Stats()
			t.Logf("receiver: %d datagrams, queue drops %d; sender: lost %d of %d", rs.DatagramsReceived,
				rs.DroppedQueueFull, ss.PacketsLost, ss.DatagramsSent)
			require.Zero(t, rs.DroppedQueueFull, "datagrams the receiver dropped at its own queue")
			require.Zero(t, ss.DroppedQueueFull, "ACKs the sender dropped at its own queue")
			require.NoError(t, sender.Close())
			require.NoError(t, receiver.Close())
		})
	}
}
