package transport

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// timeline collects named events of one handshake, in µs since its start.
type timeline struct {
	mu  sync.Mutex
	t0  time.Time
	evs map[string]float64
}

func (tl *timeline) mark(name string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i := 1; ; i++ {
		k := name
		if i > 1 {
			k = fmt.Sprintf("%s#%d", name, i)
		}
		if _, ok := tl.evs[k]; !ok {
			tl.evs[k] = float64(time.Since(tl.t0).Microseconds())
			return
		}
	}
}

type timelineTracer struct {
	tl   *timeline
	side string
}

func (t timelineTracer) TraceEvent(e TraceEvent) {
	name := t.side + " " + e.Kind.String()
	if e.Size > 0 {
		name += fmt.Sprintf(" pn%d %dB", e.PacketNumber, e.Size)
	}
	t.tl.mark(name)
}

func printTimeline(t *testing.T, runs []map[string]float64) {
	keys := map[string][]float64{}
	for _, r := range runs {
		for k, v := range r {
			keys[k] = append(keys[k], v)
		}
	}
	type row struct {
		k   string
		med float64
		n   int
	}
	var rows []row
	for k, v := range keys {
		slices.Sort(v)
		rows = append(rows, row{k, v[len(v)/2], len(v)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].med < rows[j].med })
	for _, r := range rows {
		t.Logf("%8.0f µs  %-45s (%d/%d)", r.med, r.k, r.n, len(runs))
	}
}

// TestHandshakeTimeline prints the median timeline of a dial → first echo, client and server
// events, for tlsgram and for crypto/tls over TCP. A diagnostic, not a check:
//
//	TLSGRAM_TIMELINE=1 go test -run TestHandshakeTimeline -v ./transport/
func TestHandshakeTimeline(t *testing.T) {
	if os.Getenv("TLSGRAM_TIMELINE") == "" {
		t.Skip("set TLSGRAM_TIMELINE=1")
	}
	const n = 300
	var cur *timeline
	var curMu sync.Mutex
	get := func() *timeline { curMu.Lock(); defer curMu.Unlock(); return cur }
	conf := &Config{Tracer: func(info ConnInfo) Tracer {
		side := "S"
		if info.IsClient {
			side = "C"
		}
		return timelineTracer{get(), side}
	}}
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(t), conf)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			get().mark("S Accept returned")
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						get().mark("S Read returned")
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
						get().mark("S Write returned")
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	tc := clientTLS(t)
	var runs []map[string]float64
	for range n {
		tl := &timeline{t0: time.Now(), evs: map[string]float64{}}
		curMu.Lock()
		cur = tl
		curMu.Unlock()
		c, err := Dial(t.Context(), "udp4", ln.Addr().String(), tc, conf)
		require.NoError(t, err)
		tl.mark("C Dial returned")
		runs = append(runs, tl.echo(t, c))
	}
	t.Log("tlsgram:")
	printTimeline(t, runs[10:])
	for _, r := range runs[100:103] {
		printTimeline(t, []map[string]float64{r})
	}

	// crypto/tls over TCP, as the bench's tls13-tcp (without its MSS clamp).
	tln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer tln.Close()
	sconf := serverTLS(t)
	go func() {
		for {
			raw, err := tln.Accept()
			if err != nil {
				return
			}
			get().mark("S Accept returned")
			c := tls.Server(raw, sconf)
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						get().mark("S Read returned")
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
						get().mark("S Write returned")
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	runs = runs[:0]
	for range n {
		tl := &timeline{t0: time.Now(), evs: map[string]float64{}}
		curMu.Lock()
		cur = tl
		curMu.Unlock()
		raw, err := net.Dial("tcp4", tln.Addr().String())
		require.NoError(t, err)
		tl.mark("C TCP connected")
		c := tls.Client(raw, tc)
		require.NoError(t, c.HandshakeContext(t.Context()))
		tl.mark("C Dial returned")
		runs = append(runs, tl.echo(t, c))
	}
	t.Log("TLS/TCP:")
	printTimeline(t, runs[10:])
}

// echo sends a byte on c, marks the Write's return and the echo's arrival, closes c and returns
// the timeline's events.
func (tl *timeline) echo(t *testing.T, c net.Conn) map[string]float64 {
	_, err := c.Write([]byte{'x'})
	require.NoError(t, err)
	tl.mark("C Write returned")
	var one [1]byte
	_, err = io.ReadFull(c, one[:])
	require.NoError(t, err)
	tl.mark("C echo read")
	_ = c.Close()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.evs
}
