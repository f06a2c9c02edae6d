package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The handshake benchmarks measure what the bench suite's handshake and hsrate metrics do, on
// IPv4 loopback: a Dial on its own socket, the TLS handshake, one byte echoed by the server;
// the Close runs in the background, as the bench's does. The TLSTCP variants do the same with
// crypto/tls over kernel TCP (the bench's baseline, without its MSS clamp), in the same process
// with the same certificate, so that the two compare within one run on a noisy machine. Each
// reports cpu-µs/op, the process's CPU time (both ends) per handshake.
//
//	go test -run '^$' -bench 'Handshake' -benchmem ./transport/

func BenchmarkHandshake(b *testing.B)         { benchHandshakes(b, newTLSgramHS(b), 1) }
func BenchmarkHandshakeParallel(b *testing.B) { benchHandshakes(b, newTLSgramHS(b), 8) }
func BenchmarkHandshakeTLSTCP(b *testing.B)   { benchHandshakes(b, &hsServer{dial: tlsTCPHS(b)}, 1) }
func BenchmarkHandshakeTLSTCPParallel(b *testing.B) {
	benchHandshakes(b, &hsServer{dial: tlsTCPHS(b)}, 8)
}

// hsServer is the dialer of an echoing server, and for tlsgram the datagrams its connections
// sent, counted once each has finished (wg).
type hsServer struct {
	dial      func(context.Context) (net.Conn, error)
	wg        sync.WaitGroup
	datagrams atomic.Uint64
}

func newTLSgramHS(b *testing.B) *hsServer {
	s := &hsServer{}
	s.dial = tlsgramHS(b, s)
	return s
}

// echoServe echoes everything c sends until it fails.
func echoServe(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tlsgramHS starts an echoing listener and returns its dialer. If count is not nil, the
// accepted connections add the datagrams they sent to it.
func tlsgramHS(b *testing.B, count *hsServer) func(context.Context) (net.Conn, error) {
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(b), nil)
	require.NoError(b, err)
	b.Cleanup(func() {
		if n := ln.Stats().RetriesSent; n > 0 {
			b.Logf("the listener sent %d Retries", n)
		}
		_ = ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if count == nil {
				go echoServe(c)
				continue
			}
			count.wg.Add(1)
			go func() {
				defer count.wg.Done()
				echoServe(c)
				<-c.(*Conn).driverDone // its closing period is over: it sends no more
				count.datagrams.Add(c.(*Conn).Stats().DatagramsSent)
			}()
		}
	}()
	tc, addr := clientTLS(b), ln.Addr().String()
	return func(ctx context.Context) (net.Conn, error) { return Dial(ctx, "udp4", addr, tc, nil) }
}

// tlsTCPHS is tlsgramHS for crypto/tls over TCP; as in the bench, the server's handshake runs
// in the connection's goroutine, on its first Read.
func tlsTCPHS(b *testing.B) func(context.Context) (net.Conn, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(b, err)
	b.Cleanup(func() { _ = ln.Close() })
	sconf := serverTLS(b)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go echoServe(tls.Server(raw, sconf))
		}
	}()
	d := tls.Dialer{Config: clientTLS(b)}
	addr := ln.Addr().String()
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp4", addr) }
}

// benchHandshakes runs b.N dial-echo-close handshakes from workers goroutines.
func benchHandshakes(b *testing.B, srv *hsServer, workers int) {
	dial := srv.dial
	var closes sync.WaitGroup
	var mu sync.Mutex
	left := b.N
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	cpu0, g0 := processCPU(b), goroutinesCreated()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var one [1]byte
			for take() {
				c, err := dial(b.Context())
				if err != nil {
					b.Error(err)
					return
				}
				if err := echoByte(c, one[:]); err != nil {
					b.Error(err)
					_ = c.Close()
					return
				}
				closes.Go(func() {
					_ = c.Close()
					if tc, ok := c.(*Conn); ok {
						<-tc.driverDone
						srv.datagrams.Add(tc.Stats().DatagramsSent)
					}
				})
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	closes.Wait()
	b.ReportMetric(float64((processCPU(b)-cpu0)/time.Microsecond)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/op")
	srv.wg.Wait()
	if n := srv.datagrams.Load(); n > 0 {
		b.ReportMetric(float64(n)/float64(b.N), "datagrams/op") // both ends, closing periods included
	}
}

// goroutinesCreated is how many goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// BenchmarkHandshakeVsTLSTCP alternates tlsgram and TLS/TCP handshakes one by one, so that both
// see the same load on a shared machine, and reports the median of each and their ratio
// (p50-ratio < 1: tlsgram is faster).
//
//	go test -run '^$' -bench HandshakeVsTLSTCP -benchtime 500x ./transport/
func BenchmarkHandshakeVsTLSTCP(b *testing.B) {
	dials := [2]func(context.Context) (net.Conn, error){tlsgramHS(b, nil), tlsTCPHS(b)}
	var times [2][]time.Duration
	var closes sync.WaitGroup
	var one [1]byte
	for range b.N {
		for i, dial := range dials {
			t0 := time.Now()
			c, err := dial(b.Context())
			require.NoError(b, err)
			_, err = c.Write([]byte{'x'})
			require.NoError(b, err)
			_, err = io.ReadFull(c, one[:])
			require.NoError(b, err)
			times[i] = append(times[i], time.Since(t0))
			closes.Go(func() { _ = c.Close() })
		}
	}
	b.StopTimer()
	closes.Wait()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Microsecond)
	}
	tg, tcp := p50(times[0]), p50(times[1])
	b.ReportMetric(tg, "tlsgram-p50-µs")
	b.ReportMetric(tcp, "tlstcp-p50-µs")
	b.ReportMetric(tg/tcp, "p50-ratio")
}

// BenchmarkHandshakeRateVsTLSTCP alternates 100 ms windows of 8 concurrent dialling clients of
// tlsgram and of TLS/TCP (the bench's hsrate, parallel), and reports the ratio of the
// handshakes each completed (rate-ratio > 1: tlsgram completes more).
//
//	go test -run '^$' -bench HandshakeRateVsTLSTCP -benchtime 20x ./transport/
func BenchmarkHandshakeRateVsTLSTCP(b *testing.B) {
	dials := [2]func(context.Context) (net.Conn, error){tlsgramHS(b, nil), tlsTCPHS(b)}
	var done [2]int
	var closes sync.WaitGroup
	for range b.N {
		for i, dial := range dials {
			end := time.Now().Add(100 * time.Millisecond)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					var one [1]byte
					for time.Now().Before(end) {
						c, err := dial(b.Context())
						if err != nil {
							b.Error(err) // not require: this is not the benchmark's goroutine
							return
						}
						if err := echoByte(c, one[:]); err != nil {
							b.Error(err)
							_ = c.Close()
							return
						}
						closes.Go(func() { _ = c.Close() })
						if time.Now().Before(end) {
							mu.Lock()
							done[i]++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
		}
	}
	b.StopTimer()
	closes.Wait()
	b.ReportMetric(float64(done[0])/float64(b.N)*10, "tlsgram-hs/s")
	b.ReportMetric(float64(done[1])/float64(b.N)*10, "tlstcp-hs/s")
	b.ReportMetric(float64(done[0])/float64(done[1]), "rate-ratio")
}

// echoByte writes one byte on c and reads its echo into one.
func echoByte(c net.Conn, one []byte) error {
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	_, err := io.ReadFull(c, one[:1])
	return err
}
