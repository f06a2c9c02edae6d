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

	// Until the server has received an authenticated datagram from the client, it still takes
	// CRC-only ones (the client tags only once it knows the server has the key: header/README.md
	// §11). The client knows that once it has read the server's "pong" (the server tags from
	// the start), so the "done" behind it is tagged, and once the server has read it, it requires
	// tags from the client. Forging before that point would test nothing.
	buf := make([]byte, 4)
	for _, step := range []struct {
		from, to *Conn
		msg      string
	}{{c, srv, "ping"}, {srv, c, "pong"}, {c, srv, "done"}} {
		_, err = step.from.Write([]byte(step.msg))
		require.NoError(t, err)
		_, err = io.ReadFull(step.to, buf)
		require.NoError(t, err)
		require.Equal(t, step.msg, string(buf))
	}

	srv.mu.Lock()
	cid := srv.core.LocalConnID()
	srv.mu.Unlock()
	attacker, err := net.DialUDP("udp4", nil, ln.Addr().(*net.UDPAddr))
	require.NoError(t, err)
	defer attacker.Close()
	for i := 0; i < 50; i++ {
		b := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: cid, PacketNumber: uint64(1000 + i), PNLen: 4})
		b = header.AppendStream(b, 4, []byte("\x17\x03\x03\x00\x10garbage-garbage!"), false)
		b = header.Seal(b, 0)
		_, err := attacker.Write(b)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return srv.Stats().Drops.Unauthenticated >= 50 }, 5*time.Second, 5*time.Millisecond,
		"the forged datagrams never reached the session's tag check")

	// The session is intact.
	_, err = c.Write([]byte("still"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(srv, got)
	require.NoError(t, err)
	require.Equal(t, "still", string(got))
	require.NoError(t, srv.Err())
}
