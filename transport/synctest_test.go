package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// memPair returns a client and server Conn over an in-memory network, inside a synctest bubble.
func memPair(t *testing.T, nw *transporttest.Network, conf *Config) (client, server *Conn, ln *Listener) {
	t.Helper()
	return memPairOn(t, nw, conf, nw.Listen("client"))
}

// memPairOn is memPair with the client on pc, a socket of nw (or a wrapper of one).
func memPairOn(t *testing.T, nw *transporttest.Network, conf *Config, pc net.PacketConn) (client, server *Conn, ln *Listener) {
	t.Helper()
	ln, err := NewListener(nw.Listen("server"), serverTLS(t), conf)
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err = DialPacketConn(t.Context(), pc, ln.Addr(), clientTLS(t), conf)
	require.NoError(t, err)
	sc, ok := <-accepted
	require.True(t, ok, "Accept failed")
	server = sc.(*Conn)
	t.Cleanup(func() { shutdown(client, server, ln) })
	return client, server, ln
}

// shutdown closes conns and listeners (again: errors are ignored) and waits until their
// goroutines have ended and their sockets are closed. Inside a synctest bubble it must run
// before the bubble's function returns (directly or as a t.Cleanup), since virtual time stops
// advancing after that.
func shutdown(xs ...any) {
	for _, x := range xs {
		switch x := x.(type) {
		case *Conn:
			_ = x.Close()
		case *Listener:
			_ = x.Close()
		}
	}
	for _, x := range xs {
		switch x := x.(type) {
		case *Conn:
			<-x.driverDone
			<-x.ep.readerDone
		case *Listener:
			<-x.ep.readerDone
		}
	}
}

func TestSynctestEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: 10 * time.Millisecond}
		client, server, ln := memPair(t, nw, nil)

		require.Equal(t, uint16(0x0304), client.ConnectionState().Version)
		require.Equal(t, "server.test", server.ConnectionState().ServerName)

		want := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{1}).Read(want)
		errc := make(chan error, 1)
		go func() {
			_, err := client.Write(want)
			if err == nil {
				err = client.Close()
			}
			errc <- err
		}()
		got, err := io.ReadAll(server)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "data differs")
		require.NoError(t, <-errc)
		require.NoError(t, server.Close())
		require.NoError(t, ln.Close())

		st := client.Stats()
		require.Greater(t, st.DatagramsSent, uint64(1<<20/DefaultMaxDatagramSize))
		require.InDelta(t, 20*time.Millisecond, st.MinRTT, float64(5*time.Millisecond))
	})
}

func TestSynctestHandshakeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{}
		silent := nw.Listen("silent") // reads nothing, answers nothing
		defer silent.Close()
		start := time.Now()
		_, err := DialPacketConn(t.Context(), nw.Listen("client"), silent.LocalAddr(), clientTLS(t), &Config{HandshakeTimeout: 3 * time.Second})
		require.Error(t, err)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestSynctestDialContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{}
		silent := nw.Listen("silent")
		defer silent.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := DialPacketConn(ctx, nw.Listen("client"), silent.LocalAddr(), clientTLS(t), nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
	})
}

func TestSynctestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		conf := &Config{IdleTimeout: 5 * time.Second, KeepAlive: -1}
		client, server, ln := memPair(t, nw, conf)
		defer ln.Close()
		defer server.Close()
		defer client.Close()

		nw.SetDrop(func(from, to net.Addr, b []byte) bool { return true }) // the path goes dark
		start := time.Now()
		_, err := client.Read(make([]byte, 10))
		require.Error(t, err)
		require.ErrorIs(t, err, net.ErrClosed)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		require.Equal(t, 5*time.Second, time.Since(start).Round(time.Second))
	})
}

func TestSynctestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		conf := &Config{IdleTimeout: 3 * time.Second, KeepAlive: time.Second}
		client, server, ln := memPair(t, nw, conf)
		defer ln.Close()

		time.Sleep(time.Minute) // virtual: keep-alives hold the idle connection open
		_, err := client.Write([]byte("still there"))
		require.NoError(t, err)
		buf := make([]byte, 11)
		_, err = io.ReadFull(server, buf)
		require.NoError(t, err)
		require.NoError(t, client.Close())
		require.NoError(t, server.Close())
	})
}

func TestSynctestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		client, server, ln := memPair(t, nw, &Config{SendBuffer: 64 << 10, InitialWindow: 64 << 10})
		defer ln.Close()

		// Read deadline.
		require.NoError(t, client.SetReadDeadline(time.Now().Add(time.Second)))
		start := time.Now()
		_, err := client.Read(make([]byte, 10))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded) // as the standard library's conns
		require.Equal(t, time.Second, time.Since(start))

		// Write deadline: the server does not read, so flow control and the send buffer fill up.
		require.NoError(t, client.SetWriteDeadline(time.Now().Add(time.Second)))
		n, err := client.Write(make([]byte, 1<<20))
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Greater(t, n, 64<<10)
		require.Less(t, n, 1<<20)

		// Both directions still work afterwards.
		require.NoError(t, client.SetDeadline(time.Time{}))
		go func() {
			_, _ = io.Copy(io.Discard, server)
		}()
		_, err = client.Write(make([]byte, 100<<10))
		require.NoError(t, err)
		_, err = server.Write([]byte("pong"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(client, buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf))
		require.NoError(t, client.Close())
		require.NoError(t, server.Close())
	})
}

func TestSynctestCloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: 5 * time.Millisecond}
		client, server, ln := memPair(t, nw, nil)
		defer ln.Close()

		_, err := client.Write([]byte("request"))
		require.NoError(t, err)
		require.NoError(t, client.CloseWrite())
		_, err = client.Write([]byte("more"))
		require.Error(t, err)

		req, err := io.ReadAll(server) // ends with io.EOF: the half-close arrived
		require.NoError(t, err)
		require.Equal(t, "request", string(req))
		_, err = server.Write([]byte("response"))
		require.NoError(t, err)
		require.NoError(t, server.Close())

		resp, err := io.ReadAll(client)
		require.NoError(t, err)
		require.Equal(t, "response", string(resp))
		require.NoError(t, client.Close())
	})
}

func TestSynctestCloseUnacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		client, server, ln := memPair(t, nw, &Config{CloseTimeout: 2 * time.Second})
		defer ln.Close()
		defer server.Close()

		nw.SetDrop(func(from, to net.Addr, b []byte) bool { return true })
		_, err := client.Write([]byte("lost"))
		require.NoError(t, err)
		start := time.Now()
		err = client.Close()
		require.ErrorIs(t, err, ErrNotAcknowledged)
		require.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestSynctestUseAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		client, server, ln := memPair(t, nw, nil)
		require.NoError(t, client.Close())
		require.NoError(t, server.Close())
		require.NoError(t, ln.Close())

		_, err := client.Read(make([]byte, 1))
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = client.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
		require.ErrorIs(t, client.Close(), net.ErrClosed)
		require.ErrorIs(t, client.CloseWrite(), net.ErrClosed)
		require.ErrorIs(t, client.SetDeadline(time.Now()), net.ErrClosed)
		_, err = ln.Accept()
		require.ErrorIs(t, err, net.ErrClosed)
		require.ErrorIs(t, ln.Close(), net.ErrClosed)
		var oe *net.OpError
		require.True(t, errors.As(err, &oe))
	})
}
