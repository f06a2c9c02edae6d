package transport

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkThroughput measures one-way bulk transfer on IPv4 loopback:
//
//	go test -run '^$' -bench Throughput -benchtime 64x ./transport/
//
// Each iteration moves 1 MiB; b.SetBytes makes the output MB/s.
func BenchmarkThroughput(b *testing.B) {
	for _, mds := range []int{1200, 1452} {
		b.Run(byteSize(mds), func(b *testing.B) {
			conf := &Config{MaxDatagramSize: mds}
			ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(b), conf)
			require.NoError(b, err)
			defer ln.Close()
			done := make(chan Stats, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
				done <- c.(*Conn).Stats()
				_ = c.Close()
			}()
			c, err := Dial(b.Context(), "udp4", ln.Addr().String(), clientTLS(b), conf)
			require.NoError(b, err)
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			cpu0 := processCPU(b)
			for range b.N {
				_, err := c.Write(buf)
				require.NoError(b, err)
			}
			require.NoError(b, c.Close())
			b.StopTimer()
			reportCPUPerGB(b, processCPU(b)-cpu0, int64(b.N)<<20)
			st := c.Stats()
			rs := <-done
			b.Logf("sender: lost %d spurious %d ptos %d cwnd %d srtt %v steps %d workers %d; receiver: queue drops %d core drops %+v",
				st.PacketsLost, st.SpuriousLosses, st.PTOs, st.CongestionWindow, st.SmoothedRTT, c.steps.Load(), c.workers.Load(), rs.DroppedQueueFull, rs.Drops)
			b.ReportMetric(float64(st.PacketsLost)/float64(st.DatagramsSent)*100, "%lost")
		})
	}
}

// BenchmarkDownload is BenchmarkThroughput in the other direction: the listener's side sends,
// and the dialled Conn receives, so its socket's reader (which turns UDP GRO on only once it
// sees bulk traffic) is the one measured:
//
//	go test -run '^$' -bench Download -benchtime 64x ./transport/
func BenchmarkDownload(b *testing.B) {
	for _, mds := range []int{1200, 1452} {
		b.Run(byteSize(mds), func(b *testing.B) {
			conf := &Config{MaxDatagramSize: mds}
			ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(b), conf)
			require.NoError(b, err)
			defer ln.Close()
			start := make(chan struct{})
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				<-start
				buf := make([]byte, 1<<20)
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
				_ = c.(*Conn).CloseWrite()
			}()
			c, err := Dial(b.Context(), "udp4", ln.Addr().String(), clientTLS(b), conf)
			require.NoError(b, err)
			defer c.Close()
			b.SetBytes(1 << 20)
			b.ResetTimer()
			close(start)
			cpu0 := processCPU(b)
			n, err := io.Copy(io.Discard, c)
			require.NoError(b, err)
			require.Equal(b, int64(b.N)<<20, n)
			b.StopTimer()
			reportCPUPerGB(b, processCPU(b)-cpu0, n)
			st := c.Stats()
			b.Logf("receiver: GRO %v queue drops %d", st.ReceiveOffload, st.DroppedQueueFull)
		})
	}
}

// reportCPUPerGB reports the process's CPU time (both ends, user and system) per GB moved, the
// bench suite's "CPU per byte": on a shared machine it varies less than the MB/s.
func reportCPUPerGB(b *testing.B, cpu time.Duration, bytes int64) {
	if cpu > 0 && bytes > 0 {
		b.ReportMetric(cpu.Seconds()/(float64(bytes)/1e9), "cpu-s/GB")
	}
}

func byteSize(n int) string { return "mds=" + itoa(n) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkPingPong measures the round trip of a 64-byte message on IPv4 loopback:
//
//	go test -run '^$' -bench PingPong ./transport/
func BenchmarkPingPong(b *testing.B) {
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(b), nil)
	require.NoError(b, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				break
			}
			if _, err := c.Write(buf); err != nil {
				break
			}
		}
		_ = c.Close()
	}()
	c, err := Dial(b.Context(), "udp4", ln.Addr().String(), clientTLS(b), nil)
	require.NoError(b, err)
	defer c.Close()
	buf := make([]byte, 64)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, err := c.Write(buf)
		require.NoError(b, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/rtt")
}

var _ net.Conn = (*Conn)(nil)
