package transport

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDialSocketSetup counts the socket options Dial's setup sets or reads on its own socket,
// beyond package net's (issue 8): the buffer sizes (SO_RCVBUFFORCE/SO_SNDBUFFORCE, or the plain
// options once the process learnt it may not force) and IP_MTU_DISCOVER; not SO_DOMAIN (Dial
// opened the socket and knows its family), not UDP_SEGMENT (the kernel was asked once, by the
// first socket), not IPV6_MTU_DISCOVER on an IPv4 socket (refused), not SO_RCVBUF/SO_SNDBUF
// after a *FORCE option succeeded (the kernel granted twice the size asked for: checked here).
// Before, each Dial made 8 of these calls.
func TestDialSocketSetup(t *testing.T) {
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echoServe(c)
		}
	}()
	var calls [3]int
	var gso [3]bool
	for i := range calls {
		c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
		require.NoError(t, err)
		calls[i] = c.endpoint().sock.setupCalls
		st := c.Stats()
		gso[i] = st.SegmentationOffload
		rcv, snd := socketBuffers(c.endpoint().sock.udp)
		require.Positive(t, rcv)
		require.Equal(t, rcv, st.SocketReceiveBuffer, "the receive buffer the kernel granted")
		require.Equal(t, snd, st.SocketSendBuffer, "the send buffer the kernel granted")
		require.NoError(t, c.Close())
	}
	t.Logf("socket options per Dial: %v", calls)
	// The first Dial of the test binary may ask for UDP_SEGMENT and try a *FORCE option in vain.
	// Without CAP_NET_ADMIN, each buffer size is set with the plain option and read back.
	want := 3
	if noForce.Load() {
		want = 5
	}
	for i := 1; i < len(calls); i++ {
		require.LessOrEqual(t, calls[i], want, "Dial %d", i)
		require.Equal(t, gso[0], gso[i], "GSO as the kernel was found the first time")
	}
}
