package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// loopbackHost returns the loopback address for network, skipping the test if IPv6 loopback
// is unavailable.
func loopbackHost(t *testing.T, network string) string {
	t.Helper()
	if network == "udp6" {
		if !nettest.SupportsIPv6() {
			t.Skip("IPv6 unavailable")
		}
		pc, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Skipf("::1 unavailable: %v", err)
		}
		pc.Close()
		return "::1"
	}
	return "127.0.0.1"
}

// listenLoopback starts a listener on loopback and a goroutine that hands accepted conns to the
// returned channel.
func listenLoopback(t *testing.T, network string, conf *Config) (*Listener, <-chan *Conn) {
	t.Helper()
	host := loopbackHost(t, network)
	ln, err := Listen(network, net.JoinHostPort(host, "0"), serverTLS(t), conf)
	require.NoError(t, err)
	conns := make(chan *Conn, 128)
	go func() {
		defer close(conns)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c.(*Conn)
		}
	}()
	return ln, conns
}

// echo copies everything from c back to c, then closes it.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.Close()
}

func TestLoopback(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			defer checkLeaks(t)()
			ln, conns := listenLoopback(t, network, nil)
			defer ln.Close()
			go func() {
				for c := range conns {
					go echo(c)
				}
			}()

			c, err := Dial(t.Context(), network, ln.Addr().String(), clientTLS(t), nil)
			require.NoError(t, err)
			require.Equal(t, ln.Addr().String(), c.RemoteAddr().String())
			require.Equal(t, uint16(0x0304), c.ConnectionState().Version)

			want := make([]byte, 4<<20)
			rand.NewChaCha8([32]byte{2}).Read(want)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil {
					err = c.CloseWrite()
				}
				errc <- err
			}()
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.NoError(t, <-errc)
			require.True(t, bytes.Equal(want, got), "echo differs")
			st := c.Stats()
			require.NoError(t, c.Close())
			require.NoError(t, ln.Close())

			require.Positive(t, st.SmoothedRTT)
			require.GreaterOrEqual(t, st.BytesSent, uint64(len(want)))
			require.Greater(t, st.SocketReceiveBuffer, 0)
			t.Logf("%s: rtt %v cwnd %d sent %d dgrams, recv %d, lost %d (spurious %d), queue drops %d, socket buffers %d/%d",
				network, st.SmoothedRTT, st.CongestionWindow, st.DatagramsSent, st.DatagramsReceived,
				st.PacketsLost, st.SpuriousLosses, st.DroppedQueueFull, st.SocketReceiveBuffer, st.SocketSendBuffer)
		})
	}
}

// TestNettestConn runs golang.org/x/net/nettest's conformance suite on *Conn over loopback.
func TestNettestConn(t *testing.T) {
	defer checkLeaks(t)()
	// Several cases end with unread data in both directions, so Close cannot get everything
	// acknowledged; a short CloseTimeout keeps them quick.
	conf := &Config{CloseTimeout: 300 * time.Millisecond}
	ln, conns := listenLoopback(t, "udp4", conf)
	defer ln.Close()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, err = Dial(context.Background(), "udp4", ln.Addr().String(), clientTLS(t), conf)
		if err != nil {
			return nil, nil, nil, err
		}
		sc, ok := <-conns
		if !ok {
			c1.Close()
			return nil, nil, nil, errors.New("listener closed")
		}
		c2 = sc
		stop = func() {
			c1.Close()
			c2.Close()
		}
		return c1, c2, stop, nil
	})
}

// TestManySessions runs 64 concurrent sessions on one listener, each echoing its own data.
func TestManySessions(t *testing.T) {
	defer checkLeaks(t)()
	const sessions = 64
	const size = 64 << 10
	// A generous CloseTimeout: under -race on two cores, 64 concurrent handshakes and transfers
	// saturate the CPU, and an echo server whose Close gave up would cut the last echo short.
	ln, conns := listenLoopback(t, "udp4", &Config{CloseTimeout: time.Minute})
	defer ln.Close()
	go func() {
		for c := range conns {
			go echo(c)
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Go(func() {
			errs <- func() error {
				c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
				if err != nil {
					return err
				}
				defer c.Close()
				want := make([]byte, size)
				rand.NewChaCha8([32]byte{byte(i)}).Read(want)
				werr := make(chan error, 1)
				go func() {
					_, err := c.Write(want)
					if err == nil {
						err = c.CloseWrite()
					}
					werr <- err
				}()
				got, err := io.ReadAll(c)
				if err != nil {
					return err
				}
				if err := <-werr; err != nil {
					return err
				}
				if !bytes.Equal(got, want) {
					return fmt.Errorf("session %d: echo differs", i)
				}
				return c.Close()
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := ln.Stats()
	require.Equal(t, uint64(sessions), st.Accepted)
	require.Zero(t, st.HandshakeFailures)
	require.NoError(t, ln.Close())
}

// TestDialSilentPort dials a UDP port that reads and never answers: the dial fails with a
// timeout after HandshakeTimeout and leaves no goroutine behind.
func TestDialSilentPort(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			defer checkLeaks(t)()
			host := loopbackHost(t, network)
			silent, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			require.NoError(t, err)
			defer silent.Close()

			start := time.Now()
			_, err = Dial(t.Context(), network, silent.LocalAddr().String(), clientTLS(t), &Config{HandshakeTimeout: 300 * time.Millisecond})
			elapsed := time.Since(start)
			require.Error(t, err)
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			require.True(t, ne.Timeout(), "%v", err)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, "dial", oe.Op)
			require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
			require.Less(t, elapsed, 3*time.Second)

			// The client padded its Initial to 1200 bytes (RFC 9000 §14.1) and retransmitted it.
			buf := make([]byte, 2048)
			require.NoError(t, silent.SetReadDeadline(time.Now().Add(time.Second)))
			n, _, err := silent.ReadFrom(buf)
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 1200)
		})
	}
}

// TestCloseAfterWriteDelivers checks the Close contract on real sockets: Close after Write
// returns nil only once the peer has every byte.
func TestCloseAfterWriteDelivers(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	sums := make(chan [32]byte, 1)
	go func() {
		c := <-conns
		h := sha256.New()
		_, _ = io.Copy(h, c)
		_ = c.Close()
		sums <- [32]byte(h.Sum(nil))
	}()
	c, err := Dial(t.Context(), "udp4", ln.Addr().String(), clientTLS(t), nil)
	require.NoError(t, err)
	data := make([]byte, 3<<20+17)
	rand.NewChaCha8([32]byte{3}).Read(data)
	_, err = c.Write(data)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Equal(t, sha256.Sum256(data), <-sums)
}

// TestDualStack: a listener on the IPv6 wildcard ("udp", ":0") serves IPv4 clients (as
// v4-mapped addresses) and IPv6 clients on one socket.
func TestDualStack(t *testing.T) {
	defer checkLeaks(t)()
	loopbackHost(t, "udp6")
	ln, err := Listen("udp", ":0", serverTLS(t), nil)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := Dial(t.Context(), "udp", net.JoinHostPort(host, port), clientTLS(t), nil)
		require.NoError(t, err, host)
		_, err = c.Write([]byte(host))
		require.NoError(t, err)
		buf := make([]byte, len(host))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, host, string(buf))
		require.NoError(t, c.Close())
	}
	require.NoError(t, ln.Close())
}
