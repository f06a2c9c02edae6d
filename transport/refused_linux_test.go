//go:build linux

package transport

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

// closedPort returns a loopback address where no UDP socket listens (one that was just bound
// and released).
func closedPort(t *testing.T, network string) string {
	t.Helper()
	host := loopbackHost(t, network)
	pc, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	return addr
}

// TestDialRefused: on Linux the kernel reports the ICMP port unreachable answering our Initial
// on the connected socket Dial opened, so a Dial to a port where nothing listens fails at once
// with an error matching syscall.ECONNREFUSED, instead of after HandshakeTimeout.
func TestDialRefused(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			defer checkLeaks(t)()
			addr := closedPort(t, network)
			start := time.Now()
			_, err := Dial(t.Context(), network, addr, clientTLS(t), &Config{HandshakeTimeout: 10 * time.Second})
			elapsed := time.Since(start)
			require.Error(t, err)
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "refusal reported as a timeout: %v", err)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, "dial", oe.Op)
			require.Less(t, elapsed, 3*time.Second, "%v", err)
			t.Logf("%v after %v", err, elapsed.Round(time.Millisecond))
		})
	}
}

// TestRefusedAfterHandshakeIgnored: once the handshake has completed, an ICMP port unreachable
// (which anyone on the path can forge) does not end the connection; only the idle timeout does.
func TestRefusedAfterHandshakeIgnored(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", &Config{CloseTimeout: 300 * time.Millisecond})
	defer ln.Close()
	relay, err := relay.NewRelay("127.0.0.1:0", ln.Addr().String(), impair.Config{}, impair.Config{})
	require.NoError(t, err)
	require.NoError(t, relay.Start())
	c, err := Dial(t.Context(), "udp4", relay.Addr().String(), clientTLS(t), &Config{CloseTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	server := <-conns
	// The server cannot hear the client's CLOSE once the relay is gone: close it, too.
	defer server.Close()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)

	// The relay goes away: what the client sends now is answered with port unreachable.
	require.NoError(t, relay.Close())
	_, err = c.Write([]byte("anyone there?"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.ep.icmpErrors.Load() > 0 }, 5*time.Second, time.Millisecond,
		"no ICMP error seen")
	require.NoError(t, c.Err())
	select {
	case <-c.Done():
		t.Fatalf("connection ended on an ICMP error after the handshake: %v", c.Err())
	default:
	}
}
