package transport

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

// TestDatagramEchoThroughLossyRelay: datagrams echoed through a relay that loses, duplicates and
// reorders arrive at most once each, intact, and the ones that arrive are most of them.
func TestDatagramEchoThroughLossyRelay(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	path := impair.Config{Loss: 0.05, Duplicate: 0.1, Reorder: 0.1}
	up, down := path, path
	up.Seed, down.Seed = 3, 4
	r, err := relay.NewRelay("127.0.0.1:0", ln.Addr().String(), up, down)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer r.Close()

	echoCtx, stopEcho := context.WithCancel(context.Background())
	defer stopEcho() // before checkLeaks: the server may not hear the client's CLOSE on this path
	go func() {
		s := <-conns
		if s == nil {
			return
		}
		defer s.Close()
		for {
			b, err := s.ReceiveDatagram(echoCtx)
			if err != nil {
				return
			}
			_ = s.SendDatagram(b)
		}
	}()
	c, err := Dial(t.Context(), "udp4", r.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x")) // the server's Accept returns once the handshake is done
	require.NoError(t, err)
	require.ErrorIs(t, c.SendDatagram(make([]byte, c.MaxDatagramPayload()+1)), ErrDatagramTooLarge)

	const n = 200
	seen := map[uint32]bool{}
	for i := range uint32(n) {
		b := make([]byte, 100)
		binary.BigEndian.PutUint32(b, i)
		require.NoError(t, c.SendDatagram(b))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		got, err := c.ReceiveDatagram(ctx)
		cancel()
		if err != nil {
			continue // lost one way or the other
		}
		require.Len(t, got, 100)
		k := binary.BigEndian.Uint32(got)
		require.False(t, seen[k], "datagram %d delivered twice", k)
		seen[k] = true
	}
	// Late echoes of earlier timeouts.
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		got, err := c.ReceiveDatagram(ctx)
		cancel()
		if err != nil {
			break
		}
		k := binary.BigEndian.Uint32(got)
		require.False(t, seen[k], "datagram %d delivered twice", k)
		seen[k] = true
	}
	require.Greater(t, len(seen), n*3/4, "too many lost for 5%% loss each way")
	require.Less(t, len(seen), n+1)
	st := c.Stats()
	t.Logf("%d of %d echoed; client sent %d, received %d datagrams", len(seen), n, st.AppDatagramsSent, st.AppDatagramsReceived)
}
