package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// checkGoroutines fails the test if, once everything else has been cleaned up, more goroutines
// run than when it was called. Call it first, so that its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		ok := poll(5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
		if !ok {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d running, %d before\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
	})
}

// poll checks cond every few milliseconds until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// udpEcho is a UDP echo server on loopback that remembers who it heard from.
type udpEcho struct {
	conn    *net.UDPConn
	done    chan struct{}
	mu      sync.Mutex
	sources map[string]int
}

func startUDPEcho(t *testing.T) *udpEcho {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	setSocketBuffers(conn, 4<<20)
	e := &udpEcho{conn: conn, done: make(chan struct{}), sources: map[string]int{}}
	go func() {
		defer close(e.done)
		buf := make([]byte, maxDatagram)
		for {
			n, addr, err := conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			e.mu.Lock()
			e.sources[addr.String()]++
			e.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort(buf[:n], addr) // a lost echo shows up as a missing reply
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-e.done
	})
	return e
}

func (e *udpEcho) addr() string { return e.conn.LocalAddr().String() }

func (e *udpEcho) numSources() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sources)
}

func startRelay(t *testing.T, target string, up, down impair.Config, opts RelayOptions) *Relay {
	t.Helper()
	r, err := NewRelayOptions("127.0.0.1:0", target, up, down, opts)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

func dialUDP(t *testing.T, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	require.NoError(t, err)
	setSocketBuffers(c, 4<<20)
	t.Cleanup(func() { c.Close() })
	return c
}

// pingPong sends n numbered datagrams one at a time, each after the echo of the previous one.
func pingPong(c *net.UDPConn, id, n int) error {
	out := make([]byte, 100)
	in := make([]byte, 200)
	for i := range n {
		binary.BigEndian.PutUint32(out, uint32(id))
		binary.BigEndian.PutUint32(out[4:], uint32(i))
		if _, err := c.Write(out); err != nil {
			return err
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		m, err := c.Read(in)
		if err != nil {
			return fmt.Errorf("client %d, datagram %d: %w", id, i, err)
		}
		if string(in[:m]) != string(out) {
			return fmt.Errorf("client %d, datagram %d: echo differs", id, i)
		}
	}
	return nil
}

func TestRelayPassesDataBothWaysForConcurrentClients(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r := startRelay(t, echo.addr(), impair.Config{}, impair.Config{}, RelayOptions{})

	const clients, n = 3, 200
	errs := make(chan error, clients)
	for id := range clients {
		c := dialUDP(t, r.Addr())
		go func() { errs <- pingPong(c, id, n) }()
	}
	for range clients {
		require.NoError(t, <-errs)
	}
	require.Equal(t, clients, echo.numSources(), "the target sees one source address per client")
	st := r.Stats()
	require.Equal(t, clients, st.Clients)
	require.Equal(t, uint64(clients), st.ClientsTotal)
	require.Equal(t, uint64(clients*n), st.Up.Delivered)
	require.Equal(t, uint64(clients*n), st.Down.Delivered)
	require.Zero(t, st.Up.Dropped()+st.Down.Dropped())
	require.Zero(t, st.WriteErrors)
	require.Positive(t, st.ReadBuffer)
}

func TestRelayLossHalf(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r := startRelay(t, echo.addr(), impair.Config{Loss: 0.5, Seed: 1}, impair.Config{}, RelayOptions{})
	c := dialUDP(t, r.Addr())

	const n = 2000
	msg := make([]byte, 200)
	for i := range n {
		binary.BigEndian.PutUint32(msg, uint32(i))
		_, err := c.Write(msg)
		require.NoError(t, err)
	}
	// Wait until every datagram is accounted for: seen by the relay, and every survivor echoed
	// and delivered back.
	require.True(t, poll(5*time.Second, func() bool {
		st := r.Stats()
		return st.Up.Sent == n && st.Up.Queued == 0 && st.Down.Sent == st.Up.Delivered && st.Down.Delivered == st.Down.Sent
	}), "stats: %+v", r.Stats())
	st := r.Stats()
	within(t, st.Up.LostRandom, n, 0.5, 5, "lost")

	got := 0
	buf := make([]byte, 500)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	for got < int(st.Down.Delivered) {
		_, err := c.Read(buf)
		require.NoError(t, err)
		got++
	}
	within(t, uint64(got), n, 0.5, 5, "echoed")
}

func TestRelayDelay(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	const up, down = 30 * time.Millisecond, 20 * time.Millisecond
	r := startRelay(t, echo.addr(), impair.Config{Delay: up}, impair.Config{Delay: down}, RelayOptions{})
	c := dialUDP(t, r.Addr())
	for i := range 5 {
		start := time.Now()
		require.NoError(t, pingPong(c, i, 1))
		rtt := time.Since(start)
		require.GreaterOrEqual(t, rtt, up+down)
		require.Less(t, rtt, up+down+2*time.Second, "the scheduler delivers on time, give or take a loaded machine")
	}
	st := r.Stats()
	require.Equal(t, uint64(5), st.Up.Delivered)
	require.LessOrEqual(t, st.MeanLate, st.MaxLate)
	require.Less(t, st.MaxLate, 2*time.Second)
	t.Logf("lateness: mean %v, max %v", st.MeanLate, st.MaxLate)
}

func TestRelayRateLimit(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	// 8 Mbit/s is 1 MB/s: 200 datagrams of 1000 bytes take 200 ms to serialise.
	r := startRelay(t, echo.addr(), impair.Config{Rate: 8_000_000, QueueDelay: time.Second}, impair.Config{}, RelayOptions{})
	c := dialUDP(t, r.Addr())
	msg := make([]byte, 1000)
	start := time.Now()
	for range 200 {
		_, err := c.Write(msg)
		require.NoError(t, err)
	}
	buf := make([]byte, 2000)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	for range 200 {
		_, err := c.Read(buf)
		require.NoError(t, err)
	}
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, 195*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second)
	require.Zero(t, r.Stats().Up.QueueDrops)
}

func TestRelayForgetsIdleClients(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r := startRelay(t, echo.addr(), impair.Config{}, impair.Config{}, RelayOptions{IdleTimeout: 50 * time.Millisecond})
	c := dialUDP(t, r.Addr())
	require.NoError(t, pingPong(c, 0, 3))
	require.Equal(t, 1, r.Stats().Clients)
	require.True(t, poll(5*time.Second, func() bool { return r.Stats().Clients == 0 }))

	// Forgotten counters stay in the totals; the client comes back as a new one, from a new
	// source address, like after a NAT binding timeout.
	st := r.Stats()
	require.Equal(t, uint64(3), st.Up.Delivered)
	require.Equal(t, uint64(3), st.Down.Delivered)
	require.NoError(t, pingPong(c, 0, 1))
	require.Equal(t, uint64(2), r.Stats().ClientsTotal)
	require.Equal(t, 2, echo.numSources())
}

func TestRelayMaxClients(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r := startRelay(t, echo.addr(), impair.Config{}, impair.Config{}, RelayOptions{MaxClients: 1})
	require.NoError(t, pingPong(dialUDP(t, r.Addr()), 0, 1))
	c2 := dialUDP(t, r.Addr())
	_, err := c2.Write([]byte("ignored"))
	require.NoError(t, err)
	require.True(t, poll(5*time.Second, func() bool { return r.Stats().Rejected == 1 }))
	require.Equal(t, 1, r.Stats().Clients)
}

func TestRelayCloseWithTrafficInFlight(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r, err := NewRelay("127.0.0.1:0", echo.addr(), impair.Config{Delay: time.Hour}, impair.Config{})
	require.NoError(t, err)
	serveErr := make(chan error, 1)
	go func() { serveErr <- r.Serve() }()
	for range 5 {
		c := dialUDP(t, r.Addr())
		for range 100 {
			_, err := c.Write(make([]byte, 1000))
			require.NoError(t, err)
		}
	}
	require.True(t, poll(5*time.Second, func() bool { return r.Stats().Up.Queued == 500 }))

	start := time.Now()
	require.NoError(t, r.Close())
	require.Less(t, time.Since(start), time.Second)
	require.NoError(t, <-serveErr)
	require.NoError(t, r.Close(), "Close is idempotent")
	require.ErrorIs(t, r.Start(), net.ErrClosed)
}

func TestRelayLifecycleErrors(t *testing.T) {
	checkGoroutines(t)
	_, err := NewRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{Loss: 2}, impair.Config{})
	require.ErrorContains(t, err, "up: impair: invalid config: Loss 2")
	_, err = NewRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{}, impair.Config{Delay: -1})
	require.ErrorContains(t, err, "down: ")
	_, err = NewRelay("127.0.0.1:0", "no-such-host.invalid:9", impair.Config{}, impair.Config{})
	require.Error(t, err)

	r, err := NewRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{}, impair.Config{})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	require.Error(t, r.Start())
	require.Error(t, r.Serve())
	require.NoError(t, r.Close())

	// Closing a relay that never ran.
	r, err = NewRelay("127.0.0.1:0", "127.0.0.1:9", impair.Config{}, impair.Config{})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.ErrorIs(t, r.Serve(), net.ErrClosed)
}

func TestRelayTargetDownCountsErrors(t *testing.T) {
	checkGoroutines(t)
	// Nothing listens at the target: the kernel answers with ICMP port unreachable, which the
	// connected upstream socket reports as a read error. The relay keeps going.
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	target := dead.LocalAddr().String()
	require.NoError(t, dead.Close())
	r := startRelay(t, target, impair.Config{}, impair.Config{}, RelayOptions{})
	c := dialUDP(t, r.Addr())
	require.True(t, poll(5*time.Second, func() bool {
		_, _ = c.Write([]byte("anyone?"))
		st := r.Stats()
		return st.ReadErrors+st.WriteErrors > 0
	}))
	require.Equal(t, 1, r.Stats().Clients)
}

// BenchmarkRelayRoundTrip measures one datagram through the relay to an echo server and back
// (ping-pong, so latency rather than throughput). allocs/op covers the relay, the echo server
// and the client: all of them should be allocation-free.
func BenchmarkRelayRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  impair.Config
	}{
		{"passthrough", impair.Config{}},
		{"scheduled", impair.Config{Delay: time.Microsecond}}, // every datagram goes through the scheduler
	} {
		b.Run(bc.name, func(b *testing.B) {
			echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, maxDatagram)
				for {
					n, addr, err := echo.ReadFromUDPAddrPort(buf)
					if errors.Is(err, net.ErrClosed) {
						return
					}
					_, _ = echo.WriteToUDPAddrPort(buf[:n], addr)
				}
			}()
			defer func() {
				echo.Close()
				<-done
			}()
			r, err := NewRelay("127.0.0.1:0", echo.LocalAddr().String(), bc.cfg, bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Start(); err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			c, err := net.DialUDP("udp", nil, r.Addr().(*net.UDPAddr))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 1200)
			buf := make([]byte, 2000)
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			for range 1000 {
				roundTrip()
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}

// within asserts that got, the count of n trials with probability p, lies within k standard
// deviations of its mean.
func within(t *testing.T, got uint64, n int, p float64, k float64, what string) {
	t.Helper()
	sd := math.Sqrt(float64(n) * p * (1 - p))
	require.InDelta(t, float64(n)*p, float64(got), k*sd, "%s: %d of %d", what, got, n)
}

// TestRelayRebind: after Rebind the client's next datagram reaches the target from a new
// source port, at once, as after a NAT rebinding.
func TestRelayRebind(t *testing.T) {
	checkGoroutines(t)
	echo := startUDPEcho(t)
	r := startRelay(t, echo.addr(), impair.Config{}, impair.Config{}, RelayOptions{})
	c := dialUDP(t, r.Addr())
	require.NoError(t, pingPong(c, 0, 2))
	require.Equal(t, 1, echo.numSources())
	r.Rebind()
	require.Zero(t, r.Stats().Clients)
	require.NoError(t, pingPong(c, 0, 2))
	require.Equal(t, 2, echo.numSources())
	require.Equal(t, uint64(4), r.Stats().Up.Delivered)
}
