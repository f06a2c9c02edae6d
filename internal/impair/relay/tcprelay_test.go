package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// startTCPEcho runs a TCP echo server on loopback that echoes until the client half-closes,
// then half-closes too.
func startTCPEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c) // ends at EOF or when the test closes the connection
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c) // wait for the client to close
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func startTCPRelay(t *testing.T, target string, up, down impair.Config) *TCPRelay {
	t.Helper()
	r, err := NewTCPRelay("127.0.0.1:0", target, up, down)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// echoThrough writes data through a connection to the echo server, reads it back concurrently,
// half-closes, and checks the echo and the EOF that follows.
func echoThrough(addr string, data []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(c) // until the relay passes the echo server's half-close on
	if err := errors.Join(err, <-writeErr); err != nil {
		return err
	}
	if !bytes.Equal(data, got) {
		return fmt.Errorf("echo differs: %d bytes sent, %d received", len(data), len(got))
	}
	return nil
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestTCPRelayEchoWithDelay(t *testing.T) {
	checkGoroutines(t)
	echo := startTCPEcho(t)
	r := startTCPRelay(t, echo, impair.Config{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond},
		impair.Config{Delay: 20 * time.Millisecond})
	data := randomBytes(4 << 20) // bigger than the initial ring: it must grow
	start := time.Now()
	require.NoError(t, echoThrough(r.Addr().String(), data))
	require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
	require.True(t, poll(5*time.Second, func() bool { return r.Stats().Conns == 0 }), "the pair ends after both half-closes")
	st := r.Stats()
	require.Equal(t, uint64(len(data)), st.UpBytes)
	require.Equal(t, uint64(len(data)), st.DownBytes)
	require.Equal(t, uint64(1), st.ConnsTotal)
}

func TestTCPRelayRTT(t *testing.T) {
	checkGoroutines(t)
	echo := startTCPEcho(t)
	const up, down = 30 * time.Millisecond, 10 * time.Millisecond
	r := startTCPRelay(t, echo, impair.Config{Delay: up}, impair.Config{Delay: down})
	c, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 1)
	for i := range 5 {
		start := time.Now()
		_, err := c.Write([]byte{byte(i)})
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, byte(i), buf[0])
		rtt := time.Since(start)
		require.GreaterOrEqual(t, rtt, up+down)
		require.Less(t, rtt, up+down+2*time.Second)
	}
}

func TestTCPRelayRate(t *testing.T) {
	checkGoroutines(t)
	echo := startTCPEcho(t)
	// 40 Mbit/s: 1 MiB takes about 210 ms.
	r := startTCPRelay(t, echo, impair.Config{Rate: 40_000_000}, impair.Config{})
	data := randomBytes(1 << 20)
	start := time.Now()
	require.NoError(t, echoThrough(r.Addr().String(), data))
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, 200*time.Millisecond)
	require.Less(t, elapsed, 5*time.Second)
}

func TestTCPRelayManyConnections(t *testing.T) {
	checkGoroutines(t)
	echo := startTCPEcho(t)
	r := startTCPRelay(t, echo, impair.Config{Delay: 5 * time.Millisecond}, impair.Config{Delay: 5 * time.Millisecond})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() { errs <- echoThrough(r.Addr().String(), randomBytes(100_000+i)) }()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	require.Equal(t, uint64(8), r.Stats().ConnsTotal)
}

func TestTCPRelayCloseAbortsConnections(t *testing.T) {
	checkGoroutines(t)
	echo := startTCPEcho(t)
	r, err := NewTCPRelay("127.0.0.1:0", echo, impair.Config{Delay: time.Hour}, impair.Config{})
	require.NoError(t, err)
	serveErr := make(chan error, 1)
	go func() { serveErr <- r.Serve() }()
	c, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(make([]byte, 100_000))
	require.NoError(t, err)
	require.True(t, poll(5*time.Second, func() bool { return r.Stats().Conns == 1 }))

	start := time.Now()
	require.NoError(t, r.Close())
	require.Less(t, time.Since(start), time.Second)
	require.NoError(t, <-serveErr)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 10))
	require.Error(t, err, "the client's connection was closed")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not timed out: %v", err)
}

func TestTCPRelayDialError(t *testing.T) {
	checkGoroutines(t)
	r := startTCPRelay(t, refusedTCPAddr(t), impair.Config{}, impair.Config{})
	c, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.Equal(t, uint64(1), r.Stats().DialErrors)
}

func TestTCPRelayRejectsPacketImpairments(t *testing.T) {
	_, err := NewTCPRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{Loss: 0.1}, impair.Config{})
	require.ErrorContains(t, err, "up: loss: not applicable")
	_, err = NewTCPRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{}, impair.Config{Duplicate: 0.1})
	require.ErrorContains(t, err, "down: duplicate")
	_, err = NewTCPRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{Delay: -1}, impair.Config{})
	require.ErrorContains(t, err, "invalid config")
}
