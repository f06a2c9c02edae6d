package transport

import (
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// exchange writes msg on a and reads it on b.
func exchange(t *testing.T, a, b *Conn, msg string) {
	t.Helper()
	_, err := a.Write([]byte(msg))
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(b, got)
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
}

// TestEndpointPeerToPeer: two Endpoints, each with one UDP socket, listen and dial each other.
// Every connection runs on its endpoint's one socket (the accepting side sees the dialler's
// listening address as the remote), and data flows both ways on both connections at once.
func TestEndpointPeerToPeer(t *testing.T) {
	defer checkLeaks(t)()
	a, err := NewEndpoint("udp4", "127.0.0.1:0", nil)
	require.NoError(t, err)
	b, err := NewEndpoint("udp4", "127.0.0.1:0", nil)
	require.NoError(t, err)
	lnA, err := a.Listen(serverTLS(t))
	require.NoError(t, err)
	lnB, err := b.Listen(serverTLS(t))
	require.NoError(t, err)
	_, err = a.Listen(serverTLS(t))
	require.ErrorIs(t, err, errListening)

	type accepted struct {
		c   *Conn
		err error
	}
	acceptOn := func(ln *Listener) <-chan accepted {
		ch := make(chan accepted, 1)
		go func() {
			c, err := ln.AcceptContext(t.Context())
			ch <- accepted{c, err}
		}()
		return ch
	}
	fromA, fromB := acceptOn(lnB), acceptOn(lnA)
	ab, err := a.Dial(t.Context(), b.Addr().String(), clientTLS(t)) // a → b
	require.NoError(t, err)
	ba, err := b.Dial(t.Context(), a.Addr().String(), clientTLS(t)) // b → a
	require.NoError(t, err)
	atB, atA := <-fromA, <-fromB
	require.NoError(t, atB.err)
	require.NoError(t, atA.err)

	// One socket per endpoint, in both roles.
	require.Equal(t, a.Addr().String(), ab.LocalAddr().String())
	require.Equal(t, a.Addr().String(), atA.c.LocalAddr().String())
	require.Equal(t, a.Addr().String(), atB.c.RemoteAddr().String(), "b sees a's dial come from a's one socket")
	require.Equal(t, b.Addr().String(), atA.c.RemoteAddr().String())

	exchange(t, ab, atB.c, "a dialled b")
	exchange(t, atB.c, ab, "b answers a")
	exchange(t, ba, atA.c, "b dialled a")
	exchange(t, atA.c, ba, "a answers b")

	// Closing a's listener leaves a's socket and its dialled connection working; a listens again.
	require.NoError(t, lnA.Close())
	exchange(t, ab, atB.c, "still here")
	lnA2, err := a.Listen(serverTLS(t))
	require.NoError(t, err)

	for _, c := range []*Conn{ab, ba, atA.c, atB.c} {
		require.NoError(t, c.Close())
	}
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, err = lnA2.Accept()
	require.ErrorIs(t, err, net.ErrClosed, "Endpoint.Close closes its listener")
	_, err = a.Dial(t.Context(), b.Addr().String(), clientTLS(t))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = a.Listen(serverTLS(t))
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, a.Close(), net.ErrClosed)
}

// TestSynctestEndpointPacketConn: Endpoints on the in-memory network (NewEndpointPacketConn,
// DialAddr) dial each other on virtual time, and a handshake that cannot complete fails at
// HandshakeTimeout without disturbing the endpoint's other connection.
func TestSynctestEndpointPacketConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: 5 * time.Millisecond}
		conf := &Config{HandshakeTimeout: 2 * time.Second}
		a, err := NewEndpointPacketConn(nw.Listen("a"), conf)
		require.NoError(t, err)
		b, err := NewEndpointPacketConn(nw.Listen("b"), conf)
		require.NoError(t, err)
		lnB, err := b.Listen(serverTLS(t))
		require.NoError(t, err)
		_, err = a.Dial(t.Context(), "b:1", clientTLS(t))
		require.ErrorContains(t, err, "use DialAddr")

		accepted := make(chan *Conn, 1)
		go func() {
			c, err := lnB.AcceptContext(t.Context())
			if err == nil {
				accepted <- c
			}
		}()
		ab, err := a.DialAddr(t.Context(), b.Addr(), clientTLS(t))
		require.NoError(t, err)
		atB := <-accepted
		require.Equal(t, a.Addr(), atB.RemoteAddr())

		// a has no listener: b's dial to it times out, and a's connection to b is unaffected.
		start := time.Now()
		_, err = b.DialAddr(t.Context(), a.Addr(), clientTLS(t))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		require.Equal(t, 2*time.Second, time.Since(start))
		exchange(t, ab, atB, "still fine")

		require.NoError(t, ab.Close())
		require.NoError(t, atB.Close())
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		// The closing periods end on virtual time, then the sockets close with their last
		// connection and the readers return.
		<-ab.driverDone
		<-atB.driverDone
		<-a.ep.readerDone
		<-b.ep.readerDone
	})
}
