package transport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dialOwnPair returns a dialled connection, whose Reads may read its own socket, and the
// accepted end.
func dialOwnPair(t *testing.T) (client, server *Conn) {
	t.Helper()
	ln, conns := listenLoopback(t, "udp4", nil)
	client, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	if err != nil {
		_ = ln.Close()
		require.NoError(t, err)
	}
	server = <-conns
	t.Cleanup(func() { shutdown(client, server, ln) })
	require.NotNil(t, client.ep.own, "Dial's socket is the connection's own")
	require.Nil(t, server.ep.own, "a listener's socket is shared")
	return client, server
}

// TestReadReadsOwnSocket: in a request/response exchange, the replies reach a dialled
// connection's Read without the reader goroutine: the Read reads them from the socket itself
// (issue 8: the last goroutine hand-off on the receiving side).
func TestReadReadsOwnSocket(t *testing.T) {
	t.Cleanup(checkLeaks(t)) // after the connections' cleanups
	client, server := dialOwnPair(t)
	go func() { _, _ = io.Copy(server, server) }()
	req, resp := bytes.Repeat([]byte{'q'}, 64), make([]byte, 64)
	rounds := func(n int) {
		for range n {
			_, err := client.Write(req)
			require.NoError(t, err)
			_, err = io.ReadFull(client, resp)
			require.NoError(t, err)
			require.Equal(t, req, resp)
		}
	}
	rounds(10) // the handshake's last datagrams and the first ACKs
	o := client.ep.own
	reads0, loop0 := o.byReads.Load(), o.byLoop.Load()
	const n = 200
	rounds(n)
	reads, loop := o.byReads.Load()-reads0, o.byLoop.Load()-loop0
	t.Logf("%d round trips: %d datagrams read by Read, %d by the reader goroutine", n, reads, loop)
	require.GreaterOrEqual(t, reads, uint64(n), "every reply read by the Read waiting for it")
	// The reader goroutine gets the socket back after ownReadGrace without a Read: on a busy
	// machine the test may be descheduled that long now and then.
	require.LessOrEqual(t, loop, uint64(n/10), "datagrams the reader goroutine read")
}

// waitReadingSocket waits until a Read of c is blocked reading c's socket.
func waitReadingSocket(t *testing.T, c *Conn) {
	t.Helper()
	o := c.ep.own
	require.Eventually(t, func() bool { return o.byRead.Load() && o.blocked.Load() },
		5*time.Second, time.Millisecond, "a Read reading its own socket")
}

// readingOwnSocket returns a dialled connection with a Read blocked reading its socket, and
// the channel that Read's error comes on.
func readingOwnSocket(t *testing.T) (*Conn, <-chan error) {
	client, _ := dialOwnPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		errc <- err
	}()
	waitReadingSocket(t, client)
	return client, errc
}

// TestOwnReadInterrupted: a Read that reads its own socket returns when what it waits for
// happens elsewhere: a read deadline set meanwhile, Close, data that another goroutine steps in.
func TestOwnReadInterrupted(t *testing.T) {
	t.Cleanup(checkLeaks(t)) // after the connections' cleanups
	t.Run("deadline", func(t *testing.T) {
		client, errc := readingOwnSocket(t)
		require.NoError(t, client.SetReadDeadline(time.Now()))
		err := within(t, errc)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		// The Conn stays usable, and a Read without a deadline reads the socket again.
		require.NoError(t, client.SetReadDeadline(time.Time{}))
	})
	t.Run("close", func(t *testing.T) {
		client, errc := readingOwnSocket(t)
		require.NoError(t, client.Close())
		require.ErrorIs(t, within(t, errc), net.ErrClosed)
	})
	t.Run("burst", func(t *testing.T) {
		// 64 KiB arrive as a burst of datagrams, which the Read hands to a worker rather than
		// stepping them itself (readerStepMax): the worker's step must wake it.
		client, server := dialOwnPair(t)
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, 64<<10)
			_, err := io.ReadFull(client, b)
			if err != nil {
				b = nil
			}
			got <- b
		}()
		waitReadingSocket(t, client)
		want := bytes.Repeat([]byte("0123456789abcdef"), 4<<10)
		_, err := server.Write(want)
		require.NoError(t, err)
		require.Equal(t, want, within(t, got))
	})
}

// within receives from ch, failing the test if nothing comes for a long while: a Read that is
// not interrupted would block for good.
func within[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case v := <-ch:
		return v
	case <-timeout.C:
		t.Fatal("the Read did not return")
		panic("unreachable")
	}
}
