package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

const demoDescription = `
Runs a server, a client and, when impairment flags are given, the relay
between them, all in this process on loopback. The client sends -size bytes
of pseudo-random data; the server checks their SHA-256; then the demo reports
what happened: handshake time, throughput, RTT, datagrams lost on the way and
how they were recovered.

Examples:
  tlsgram demo
  tlsgram demo -size 64MiB -loss 2% -reorder 1% -delay 10ms`

// demoResult is what the server side of the demo saw.
type demoResult struct {
	n    int64
	sum  [sha256.Size]byte
	end  time.Time // when the last byte arrived
	err  error
	sess session
}

func runDemo(ctx context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "[-size N] [impairment flags]", demoDescription, true)
	size := sizeValue(32 << 20)
	f.Var(&size, "size", "how many `bytes` the client sends, e.g. 64MiB, 100M, 1GB")
	timeout := durationValue(5 * time.Minute)
	f.Var(&timeout, "timeout", "give up if the demo has not finished after this `duration`")
	var imp impairFlags
	imp.register(f)
	var so sessionFlags
	so.register(f)
	f.addJSON("on stdout instead of the text")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (see '%s -h')", pos[0], name)
	}
	cfg, err := imp.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout))
	defer cancel()
	opts := so.config()

	srvConf, pin, err := serverTLS("", "", []string{"localhost", "127.0.0.1"})
	if err != nil {
		return err
	}
	ln, err := listenSessions("127.0.0.1:0", srvConf, opts)
	if err != nil {
		return fmt.Errorf("cannot listen on loopback: %w", err)
	}
	defer ln.Close()
	target := ln.Addr().String()
	var rl *relay.Relay
	path := "directly on loopback"
	if !cfg.Passthrough() {
		rl, err = relay.NewRelay("127.0.0.1:0", target, cfg, cfg)
		if err != nil {
			return fmt.Errorf("cannot start the relay: %w", err)
		}
		if err := rl.Start(); err != nil {
			return err
		}
		defer rl.Close()
		target = rl.Addr().String()
		path = "on loopback through the relay (" + cfg.String() + ", each way)"
	}
	out := e.stdout
	if f.json {
		out = io.Discard
	}
	fmt.Fprintf(out, "%s: sending %s from client to server %s\n", name, formatBytes(int64(size)), path)
	fmt.Fprintf(out, "  settings    %s (the library's defaults unless marked)\n", so.describe())

	// Server: hash everything, then close its side so the client knows.
	var received counter
	results := make(chan demoResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			results <- demoResult{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, readerOnly{countingReader{c, &received}})
		r := demoResult{n: n, end: time.Now(), err: err, sess: c}
		copy(r.sum[:], h.Sum(nil))
		if err == nil {
			err = c.CloseWrite()
		}
		if cerr := c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing: %w", cerr)
		}
		r.err = err
		results <- r
	}()

	clientConf, err := (&clientTLS{pin: pin}).config(target)
	if err != nil {
		return err
	}
	start := time.Now()
	c, err := dialSession(ctx, target, clientConf, opts)
	if err != nil {
		if ctx.Err() != nil {
			return demoCtxErr(ctx, timeout, "before the handshake completed")
		}
		return fmt.Errorf("handshake failed: %w", err)
	}
	handshake := time.Since(start)
	e.log.Debug("client connected", "server", ln.Addr(), "via", target, "handshake", handshake)

	var sent counter
	prog := startProgress(f.progressMode(false), time.Duration(f.interval), e.stderr, func() progressSample {
		p := progressSample{sent: sent.Load(), received: received.Load(), total: int64(size), totalReceived: true}
		if st, ok := statsOf(c); ok {
			p.rtt = st.SmoothedRTT
		}
		return p
	})
	// The payload is a seeded ChaCha8 stream: fast to make, incompressible,
	// and the same for every run.
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(imp.seed))
	payload := io.LimitReader(rand.NewChaCha8(seed), int64(size))
	want := sha256.New()
	startData := time.Now()

	clientErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(writerOnly{c}, countingReader{io.TeeReader(payload, want), &sent})
		if err == nil {
			err = c.CloseWrite()
		}
		if err == nil {
			// Wait for the server's end of stream: it has read everything.
			_, err = io.Copy(io.Discard, c)
		}
		if cerr := c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing: %w", cerr)
		}
		clientErr <- err
	}()

	var res demoResult
	select {
	case err = <-clientErr:
		if err != nil {
			prog.Stop()
			return fmt.Errorf("client: %w", err)
		}
		res = <-results
	case <-ctx.Done():
		prog.Stop()
		c.Close()
		return demoCtxErr(ctx, timeout, fmt.Sprintf("after sending %s", formatBytes(sent.Load())))
	}
	prog.Stop()
	if res.err != nil {
		return fmt.Errorf("server: %w", res.err)
	}
	var wantSum [sha256.Size]byte
	copy(wantSum[:], want.Sum(nil))
	if res.n != int64(size) || res.sum != wantSum {
		return fmt.Errorf("verification failed: the server received %d bytes with SHA-256 %x, the client sent %d bytes with SHA-256 %x",
			res.n, res.sum, int64(size), wantSum)
	}

	elapsed := res.end.Sub(startData)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(out, "  %-11s %s\n", label, fmt.Sprintf(format, args...))
	}
	row("handshake", "%s", formatDuration(handshake))
	row("transfer", "%s in %s: %s", formatBytes(res.n), formatDuration(elapsed), formatRate(res.n, elapsed))
	row("verified", "the server received every byte; SHA-256 %s… matches", hex.EncodeToString(wantSum[:6]))
	cst, okc := statsOf(c)
	sst, oks := statsOf(res.sess)
	if okc && oks {
		row("rtt", "smoothed %s, min %s (client's view)", formatDuration(cst.SmoothedRTT), formatDuration(cst.MinRTT))
		row("datagrams", "client sent %d and received %d; server sent %d and received %d",
			cst.DatagramsSent, cst.DatagramsReceived, sst.DatagramsSent, sst.DatagramsReceived)
		retx := 0.0
		if cst.StreamBytesSent > 0 {
			retx = 100 * float64(cst.StreamBytesRetransmitted) / float64(cst.StreamBytesSent)
		}
		row("recovery", "client declared %d packets lost (%d spuriously), retransmitted %s (%.2f%% of the data), %d probe timeouts, %d congestion events",
			cst.PacketsLost, cst.SpuriousLosses, formatBytes(int64(cst.StreamBytesRetransmitted)), retx, cst.PTOs, cst.CongestionEvents)
	}
	var lost []string
	if rl != nil {
		rs := rl.Stats()
		row("relay", "up: %s", linkSummary(rs.Up))
		row("", "down: %s", linkSummary(rs.Down))
		if n := rs.Up.Dropped() + rs.Down.Dropped(); n > 0 {
			lost = append(lost, fmt.Sprintf("the relay dropped %d datagrams", n))
		}
	}
	if okc && oks {
		if n := cst.DroppedQueueFull + sst.DroppedQueueFull; n > 0 {
			lost = append(lost, fmt.Sprintf("the receivers' inbound queues dropped %d", n))
		}
		if n := cst.Drops.Integrity + sst.Drops.Integrity; n > 0 {
			lost = append(lost, fmt.Sprintf("%d arrived corrupted and were rejected by the checksum", n))
		}
	}
	if len(lost) == 0 {
		row("lost", "nothing")
	} else {
		row("lost", "%s; all recovered: every byte arrived and was verified", strings.Join(lost, ", "))
	}
	switch {
	case f.json:
		j := demoJSON{Bytes: res.n, SHA256: hex.EncodeToString(wantSum[:]), HandshakeMS: ms(handshake),
			Seconds: elapsed.Seconds(), MBps: float64(res.n) / 1e6 / elapsed.Seconds(), Path: "loopback",
			Settings: so.values()}
		if rl != nil {
			j.Path = cfg.String()
			rs := rl.Stats()
			j.Relay = map[string]relayJSON{"up": linkJSON(rs.Up), "down": linkJSON(rs.Down)}
		}
		if okc && oks {
			j.Client, j.Server = statsToJSON(cst), statsToJSON(sst)
		}
		return writeJSON(e.stdout, j)
	case f.stats:
		if okc {
			fmt.Fprint(e.stderr, statsText("the client session", c))
		}
		if oks {
			fmt.Fprint(e.stderr, statsText("the server session", res.sess))
		}
	}
	return nil
}

func linkJSON(s impair.LinkStats) relayJSON {
	return relayJSON{Datagrams: s.Sent, Dropped: s.Dropped(), Reordered: s.Reordered, Duplicated: s.Duplicated, Corrupted: s.Corrupted}
}

func linkSummary(s impair.LinkStats) string {
	parts := []string{fmt.Sprintf("%d datagrams in", s.Sent)}
	if d := s.Dropped(); d > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped (%.2f%%)", d, 100*float64(d)/float64(max(s.Sent, 1))))
	}
	for _, x := range []struct {
		n    uint64
		name string
	}{{s.Reordered, "reordered"}, {s.Duplicated, "duplicated"}, {s.Corrupted, "corrupted"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.name))
		}
	}
	return strings.Join(parts, ", ")
}

func demoCtxErr(ctx context.Context, timeout durationValue, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("the demo did not finish within -timeout %s (%s)", time.Duration(timeout), what)
	}
	return &interruptedError{what: what}
}
