package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// loopbackClientHello returns the stream bytes of a real client's first Initial (its TLS
// ClientHello, or the first part of it), caught on a loopback socket.
func loopbackClientHello(t *testing.T) []byte {
	t.Helper()
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer sink.Close()
	return firstHello(t, sink, func(ctx context.Context) {
		_, _ = Dial(ctx, "udp4", sink.LocalAddr().String(), clientTLS(t), nil)
	})
}

// spoofer sends Initials with a real ClientHello (and a CLOSE, if withClose) to a listener from
// many loopback addresses (127.0.0.2 and up: all of 127/8 is loopback on Linux), each with fresh
// random connection IDs. Nobody reads the sockets, so the server's answers go nowhere, as to
// spoofed addresses.
type spoofer struct {
	socks []net.PacketConn
	tmpl  []byte
	sent  atomic.Uint64
}

func newSpoofer(t *testing.T, hello []byte, withClose bool, sources int) *spoofer {
	t.Helper()
	s := &spoofer{tmpl: spoofedHello(hello, 1, 2, withClose)}
	for i := range sources {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", 1+i/250, 2+i%250))
		if err != nil {
			t.Skipf("cannot bind a second loopback address: %v", err)
		}
		_ = pc.(*net.UDPConn).SetReadBuffer(4096) // the answers are dropped, not queued
		s.socks = append(s.socks, pc)
		t.Cleanup(func() { _ = pc.Close() })
	}
	return s
}

// run sends to addr until stop is closed, as fast as it can, or at most rate datagrams a second
// if rate > 0.
func (s *spoofer) run(addr net.Addr, rate int, stop <-chan struct{}) {
	dg := slices.Clone(s.tmpl)
	body := len(dg) - header.TrailerLen
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if rate > 0 && i%64 == 0 {
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead) // pacing the flood, not synchronising
			}
		}
		binary.BigEndian.PutUint64(dg[5:], rng.Uint64())  // DCID
		binary.BigEndian.PutUint64(dg[13:], rng.Uint64()) // SCID
		header.Seal(dg[:body], 0)
		if _, err := s.socks[i%len(s.socks)].WriteTo(dg, addr); err == nil {
			s.sent.Add(1)
		}
	}
}

// dialOnce dials addr, echoes 16 KiB through the connection and closes it, and returns how long
// Dial took.
func dialOnce(t *testing.T, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	c, err := Dial(t.Context(), "udp4", addr, clientTLS(t), nil)
	d := time.Since(start)
	require.NoError(t, err)
	echoOnce(t, c, string(make([]byte, 16<<10)))
	require.NoError(t, c.Close())
	return d
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// heapInUse returns the live heap and goroutine stacks after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// TestHalfOpenMemory measures what one half-open session costs: spoofed ClientHellos (the
// server does its part of the handshake and waits for a client that never answers) with Retry
// off, so that each one holds a session. The figure is in README's Security section.
func TestHalfOpenMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures a few hundred handshakes")
	}
	const sessions = 300
	hello := loopbackClientHello(t)
	ln, conns := listenLoopback(t, "udp4", &Config{RetryThreshold: -1, RetryRate: -1, MaxHalfOpen: 2 * sessions, HandshakeTimeout: time.Minute})
	defer func() {
		_ = ln.Close()
		for range conns {
		}
	}()
	sp := newSpoofer(t, hello, false, 16)
	heap0, g0 := heapInUse(), runtime.NumGoroutine()
	stop := make(chan struct{})
	close(stop)
	for i := range sessions {
		dg := slices.Clone(sp.tmpl)
		binary.BigEndian.PutUint64(dg[5:], uint64(1000+i))
		binary.BigEndian.PutUint64(dg[13:], uint64(5000+i))
		header.Seal(dg[:len(dg)-header.TrailerLen], 0)
		_, err := sp.socks[i%len(sp.socks)].WriteTo(dg, ln.Addr())
		require.NoError(t, err)
		if i%50 == 49 { // stay within the socket's buffer
			require.Eventually(t, func() bool { return ln.Stats().HalfOpen > i-10 }, 10*time.Second, time.Millisecond)
		}
	}
	require.Eventually(t, func() bool { return ln.Stats().HalfOpen == sessions }, 10*time.Second, time.Millisecond)
	// Let the first flights and their retransmissions be sent.
	time.Sleep(300 * time.Millisecond) // letting work happen, not synchronising: nothing signals "idle"
	perSession := (int64(heapInUse()) - int64(heap0)) / sessions
	goroutines := (runtime.NumGoroutine() - g0) / sessions
	t.Logf("one half-open session: %d KiB of heap and stacks, %d goroutines", perSession>>10, goroutines)
	require.Less(t, perSession, int64(48<<10), "a half-open session costs more than README says (about 20 KiB)")
	require.LessOrEqual(t, goroutines, 1)
}

// TestSpoofedHandshakeFlood: spoofed Initials with a real ClientHello and a CLOSE, from 64
// loopback addresses, at the highest rate one goroutine sends, while a legitimate client dials
// and echoes 16 KiB again and again. Its Dial median stays within 2× of the one measured without
// the flood (plus a millisecond of scheduling noise on this shared machine), and the listener's
// heap and goroutines stay bounded: Retry starts at RetryThreshold half-open sessions, so at most
// that many spoofed sessions exist, each with at most 2 goroutines and about 60 KiB
// (TestHalfOpenMemory).
//
// The default is a short run; TLSGRAM_FLOOD=1 runs 10 s with two flooding goroutines and
// logs the figures.
func TestSpoofedHandshakeFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods loopback")
	}
	heavy := os.Getenv("TLSGRAM_FLOOD") != ""
	duration, flooders, dials, rate := 1500*time.Millisecond, 1, 15, 20_000
	if heavy {
		duration, flooders, dials, rate = 10*time.Second, 2, 60, 0
	}
	if r, err := strconv.Atoi(os.Getenv("TLSGRAM_FLOOD_RATE")); err == nil {
		rate = r / flooders
	}
	hello := loopbackClientHello(t)
	ln, conns := listenLoopback(t, "udp4", nil)
	var wg sync.WaitGroup
	defer func() {
		_ = ln.Close() // ends conns, and so the goroutine below
		wg.Wait()
	}()
	wg.Go(func() {
		for c := range conns {
			wg.Go(func() { echo(c) })
		}
	})
	addr := ln.Addr().String()

	var unloaded []time.Duration
	for range dials {
		unloaded = append(unloaded, dialOnce(t, addr))
	}
	heap0, g0 := heapInUse(), runtime.NumGoroutine()

	sp := newSpoofer(t, hello, true, 64)
	stop := make(chan struct{})
	var fwg sync.WaitGroup
	for range flooders {
		fwg.Go(func() { sp.run(ln.Addr(), rate, stop) })
	}
	start := time.Now()
	var loaded []time.Duration
	var maxHeap uint64
	maxG, maxHalfOpen := 0, 0
	for time.Since(start) < duration || len(loaded) < dials {
		loaded = append(loaded, dialOnce(t, addr))
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		maxHeap = max(maxHeap, m.HeapAlloc+m.StackInuse)
		maxG = max(maxG, runtime.NumGoroutine())
		maxHalfOpen = max(maxHalfOpen, ln.Stats().HalfOpen)
	}
	elapsed := time.Since(start)
	close(stop)
	fwg.Wait()
	st := ln.Stats()
	t.Logf("flood: %.0f spoofed ClientHello+CLOSE/s for %v; the listener answered %.0f/s (%d Retries), %d handshake failures, max %d half-open",
		float64(sp.sent.Load())/elapsed.Seconds(), elapsed.Round(time.Millisecond), float64(st.RetriesSent)/elapsed.Seconds(),
		st.RetriesSent, st.HandshakeFailures, maxHalfOpen)
	t.Logf("legitimate Dial p50: %v unloaded, %v under the flood (%d dials; p90 %v, max %v)",
		median(unloaded), median(loaded), len(loaded), quantile(loaded, 0.9), slices.Max(loaded))
	t.Logf("heap %d MiB before, at most %d MiB during; goroutines %d before, at most %d during",
		heap0>>20, maxHeap>>20, g0, maxG)

	conf := ln.conf
	require.LessOrEqual(t, maxHalfOpen, conf.RetryThreshold+flooders*64, "Retry did not hold the half-open sessions")
	require.Less(t, maxHeap, heap0+uint64(conf.RetryThreshold)*(160<<10), "heap not bounded by the half-open sessions")
	// Two goroutines per half-open session, plus the legitimate connections still in their
	// closing periods (the test dials hundreds).
	require.Less(t, maxG, g0+2*conf.RetryThreshold+256, "goroutines not bounded by the half-open sessions")
	require.LessOrEqual(t, median(loaded), 2*median(unloaded)+time.Millisecond, "legitimate Dial slowed down")
}
