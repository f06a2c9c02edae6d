//go:build linux

package transport

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parkedReader reports whether ep's reader is parked.
func parkedReader(ep *endpoint) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.parked
}

// awaitParked waits (bounded) until the reader of c's socket has parked: parkDelay to twice
// that after the last datagram.
func awaitParked(t *testing.T, c *Conn) {
	t.Helper()
	require.Eventually(t, func() bool { return parkedReader(c.endpoint()) },
		4*parkDelay()+time.Second, 5*time.Millisecond, "the dialled reader did not park")
}

// shortParks makes readers park after 50 ms of quiet for the rest of the test.
func shortParks(t *testing.T) {
	parkAfterTest.Store(int64(50 * time.Millisecond))
	t.Cleanup(func() { parkAfterTest.Store(0) })
}

// TestReaderParks: a dialled connection's socket reader parks once the socket is quiet, so an
// idle client has no goroutine; a datagram from the server brings a reader back; and a Conn
// closed while its reader is parked closes cleanly (its CLOSE is acknowledged, which takes a
// reader again, and nothing is left running).
func TestReaderParks(t *testing.T) {
	shortParks(t)
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", &Config{KeepAlive: -1})
	defer ln.Close()
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), &Config{KeepAlive: -1})
	require.NoError(t, err)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	s := <-conns
	defer s.Close()
	buf := make([]byte, 5)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)

	for round := range 3 {
		awaitParked(t, c)
		// The server speaks first: only the poller can notice.
		msg := []byte{'a' + byte(round), 'b', 'c', 'd', 'e'}
		_, err = s.Write(msg)
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, msg, buf)
		// And the other way, on the reader the datagram brought back.
		_, err = c.Write(msg)
		require.NoError(t, err)
		_, err = io.ReadFull(s, buf)
		require.NoError(t, err)
	}

	awaitParked(t, c)
	require.NoError(t, c.Close(), "a Conn closed with a parked reader")
	select {
	case <-c.endpoint().readerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader of a closed Conn did not end")
	}
	require.False(t, parkedReader(c.endpoint()))
}

// TestParkedReaderClosedQuietly: a dialled connection whose server is gone is aborted while
// its reader is parked; the socket's registration with the poller goes with the socket.
func TestParkedReaderClosedQuietly(t *testing.T) {
	shortParks(t)
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", &Config{KeepAlive: -1})
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), &Config{KeepAlive: -1})
	require.NoError(t, err)
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	s := <-conns
	b := make([]byte, 1)
	_, err = io.ReadFull(s, b)
	require.NoError(t, err)
	awaitParked(t, c)
	ep := c.endpoint()
	c.terminate(0, "test") // waits for the reader to end
	ep.mu.Lock()
	require.Zero(t, ep.parkToken, "still registered with the poller")
	ep.mu.Unlock()
	_ = s.Close()
	_ = ln.Close()
}
