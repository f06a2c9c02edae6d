package transport

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// TestForgedDatagramsDoNotKillTheSession plays an attacker who knows the server's connection ID
// (anyone on the path does) and sends datagrams with valid CRCs carrying garbage stream data. With
// packet authentication the server drops them and the session carries on; without it, the garbage
// would reach TLS and the session would die with a bad record MAC.
func TestForgedDatagramsDoNotKillTheSession(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	defer c.Close()
	srv := <-conns
	defer srv.Close()

	// Forge at once: the server requires tags from the moment its handshake is complete, before
	// any tagged datagram of the client's has arrived (header/README.md §11).
	srv.mu.Lock()
	cid := srv.core.LocalConnID()
	next := srv.core.Stats().StreamBytesReceived // where the client's next bytes go
	srv.mu.Unlock()
	attacker, err := net.DialUDP("udp4", nil, ln.Addr().(*net.UDPAddr))
	require.NoError(t, err)
	defer attacker.Close()
	for i := 0; i < 50; i++ {
		b := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: cid, PacketNumber: uint64(1000 + i), PNLen: 4})
		b = header.AppendStream(b, next, []byte("\x17\x03\x03\x00\x10garbage-garbage!"), false)
		b = header.Seal(b, 0)
		_, err := attacker.Write(b)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return srv.Stats().Drops.Unauthenticated >= 50 }, 5*time.Second, 5*time.Millisecond,
		"the forged datagrams never reached the session's tag check")

	// The session is intact, both ways.
	_, err = srv.Write([]byte("pong"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "pong", string(buf))
	_, err = c.Write([]byte("still"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(srv, got)
	require.NoError(t, err)
	require.Equal(t, "still", string(got))
	require.NoError(t, srv.Err())
}
