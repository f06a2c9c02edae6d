// Command rttprobe runs a fixed number of closed-loop request/responses over one contender of
// the bench suite on loopback (both ends in this process, the server echoing) and prints their
// latency. A fixed count, unlike the report's fixed duration, is what per-round-trip counts need:
// run it twice with different -n under strace -c -f, valgrind --tool=callgrind or a runtime
// trace, and divide the difference by the difference in -n (issue 8):
//
//	strace -c -f -o s2000.txt go-built-rttprobe -c tlsgram -n 2000
//	strace -c -f -o s6000.txt go-built-rttprobe -c tlsgram -n 6000
//	GOMAXPROCS=1 valgrind --tool=callgrind rttprobe -n 3000
//
// An unreliable contender (raw-udp) gets no retransmission here: a lost datagram would stall the
// probe, which is meant for the loopback, where none are lost. It warms up with 100 exchanges first (the handshake, slow start, lazy allocations), and
// -cpuprofile profiles only the measured ones.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/tlsgram/tlsgram/bench"
	_ "github.com/tlsgram/tlsgram/bench/contenders" // registers every contender
	"github.com/tlsgram/tlsgram/transport"
)

func main() {
	name := flag.String("c", "tlsgram", "contender (report -list names them)")
	n := flag.Int("n", 10000, "request/responses to measure")
	size := flag.Int("size", 64, "bytes per request and response")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the measured exchanges to this file")
	flag.Parse()
	if err := run(*name, *n, *size, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "rttprobe:", err)
		os.Exit(1)
	}
}

func run(name string, n, size int, prof string) error {
	c, ok := bench.Lookup(name)
	if !ok {
		return fmt.Errorf("no contender %q", name)
	}
	if n < 1 || size < 1 {
		return fmt.Errorf("-n and -size must be positive")
	}
	ln, err := c.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go serve(ln)
	conn, err := c.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		return err
	}
	defer conn.Close()

	req, resp := make([]byte, size), make([]byte, size)
	exchange := func() error {
		if _, err := conn.Write(req); err != nil {
			return err
		}
		if c.Reliable() {
			_, err := io.ReadFull(conn, resp)
			return err
		}
		_, err := conn.Read(resp)
		return err
	}
	for range 100 {
		if err := exchange(); err != nil {
			return err
		}
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ds := make([]time.Duration, n)
	start := time.Now()
	for i := range ds {
		t := time.Now()
		if err := exchange(); err != nil {
			return err
		}
		ds[i] = time.Since(t)
	}
	total := time.Since(start)
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	slow := n - slices.IndexFunc(ds, func(d time.Duration) bool { return d > time.Millisecond })
	if slow > n {
		slow = 0 // IndexFunc found none
	}
	fmt.Printf("%s: %d request/responses of %d B: mean %.1f µs, p50 %.1f, p99 %.1f, p99.9 %.1f, max %.1f; %d over 1 ms\n",
		name, n, size, us(total)/float64(n), us(ds[n/2]), us(ds[n*99/100]), us(ds[n*999/1000]), us(ds[n-1]), slow)
	if tc, ok := conn.(*transport.Conn); ok {
		st := tc.Stats()
		fmt.Printf("client: %d datagrams sent, %d PTOs, %d packets lost\n", st.DatagramsSent, st.PTOs, st.PacketsLost)
	}
	return nil
}

// serve echoes what each accepted conn sends, a read at a time.
func serve(ln bench.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go echo(c)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
