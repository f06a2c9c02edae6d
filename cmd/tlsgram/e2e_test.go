package main

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// e2eSize is the file piped through the impaired relay: tens of MiB, so that
// the transfer outlives slow start and meets hundreds of losses; 4 MiB with
// -short.
func e2eSize() int64 {
	if testing.Short() {
		return 4 << 20
	}
	return 24 << 20
}

// writeRandomFile writes n seeded pseudo-random (incompressible) bytes.
func writeRandomFile(t *testing.T, path string, n int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	_, err = io.Copy(f, io.LimitReader(rand.NewChaCha8(s), n))
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func fileHash(t *testing.T, path string) ([sha256.Size]byte, int64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	require.NoError(t, err)
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum, n
}

func requireSameFile(t *testing.T, want, got string) {
	t.Helper()
	wantSum, wantN := fileHash(t, want)
	gotSum, gotN := fileHash(t, got)
	require.Equal(t, wantN, gotN, "sizes differ")
	require.Equal(t, wantSum, gotSum, "SHA-256 differs")
}

// linkRe reads one direction of the relay's exit counters.
var linkRe = regexp.MustCompile(`(up|down) +\([^)]*\): (\d+) datagrams .* dropped (\d+).*, reordered (\d+)`)

// startRelay runs "tlsgram relay" in front of target and returns its address.
func startRelay(t *testing.T, target string, impairment ...string) (*proc, string) {
	t.Helper()
	p := startProc(t, procOpts{}, append([]string{"relay", "-listen", "127.0.0.1:0", "-to", target}, impairment...)...)
	return p, p.waitLine(listenRe, 10*time.Second)[1]
}

// stopRelay interrupts the relay and returns the datagrams it dropped and
// reordered, up and down.
func stopRelay(t *testing.T, p *proc) (dropped, reordered [2]int) {
	t.Helper()
	p.interrupt()
	require.Equal(t, 0, p.wait(10*time.Second), p.Stderr())
	ms := linkRe.FindAllStringSubmatch(p.Stderr(), -1)
	require.Len(t, ms, 2, "relay counters:\n%s", p.Stderr())
	for i, m := range ms {
		dropped[i], _ = strconv.Atoi(m[3])
		reordered[i], _ = strconv.Atoi(m[4])
	}
	return dropped, reordered
}

// lossyPath is the impairment of the end-to-end tests. The 1 ms delay each
// way gives the path a realistic RTT rather than loopback's microseconds.
var lossyPath = []string{"-loss", "2%", "-reorder", "2%", "-delay", "1ms", "-seed", "7"}

// TestFileThroughLossyRelay is the test the issue asks for: serve, relay and
// connect as separate processes, a file of tens of MiB piped from the
// client's stdin to the server's stdout through 2% loss and 2% reordering
// each way, compared by hash.
func TestFileThroughLossyRelay(t *testing.T) {
	t.Parallel()
	in, out, inF, outF := fileTransfer(t, e2eSize(), 1)

	srv, addr, pin := startServer(t, procOpts{stdout: outF}, "-mode", "stdio")
	relay, relayAddr := startRelay(t, addr, lossyPath...)
	cli := startProc(t, procOpts{stdin: inF}, "connect", "-stats", "-pin", pin, relayAddr)

	require.Equal(t, 0, cli.wait(150*time.Second), "connect:\n%s", cli.Stderr())
	require.Equal(t, 0, srv.wait(20*time.Second), "serve:\n%s", srv.Stderr())
	require.NoError(t, outF.Sync())
	requireSameFile(t, in, out)

	dropped, reordered := stopRelay(t, relay)
	require.Positive(t, dropped[0], "the relay lost nothing upstream: the test proves nothing")
	require.Positive(t, reordered[0])
	// The client's statistics show the losses were noticed and repaired.
	require.Regexp(t, `retransmitted [1-9][0-9.]* [KM]iB`, cli.Stderr())
	t.Logf("relay dropped %v, reordered %v (up, down)", dropped, reordered)
}

// TestEchoThroughLossyRelay sends a file to an echo server and back, both
// directions impaired, with several clients at once.
func TestEchoThroughLossyRelay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const clients = 3
	size := e2eSize() / 8
	srv, addr, pin := startServer(t, procOpts{}, "-mode", "echo")
	relay, relayAddr := startRelay(t, addr, lossyPath...)

	type run struct {
		p       *proc
		in, out string
		outF    *os.File
	}
	var runs []run
	for i := range clients {
		r := run{in: filepath.Join(dir, "in"+strconv.Itoa(i)), out: filepath.Join(dir, "out"+strconv.Itoa(i))}
		writeRandomFile(t, r.in, size+int64(i), uint64(10+i))
		inF, err := os.Open(r.in)
		require.NoError(t, err)
		defer inF.Close()
		r.outF, err = os.Create(r.out)
		require.NoError(t, err)
		defer r.outF.Close()
		r.p = startProc(t, procOpts{stdin: inF, stdout: r.outF}, "connect", "-pin", pin, relayAddr)
		runs = append(runs, r)
	}
	for _, r := range runs {
		require.Equal(t, 0, r.p.wait(150*time.Second), "connect:\n%s", r.p.Stderr())
		require.NoError(t, r.outF.Sync())
		requireSameFile(t, r.in, r.out)
	}
	dropped, _ := stopRelay(t, relay)
	require.Positive(t, dropped[0]+dropped[1])

	// echo serves until interrupted, then exits cleanly.
	srv.interrupt()
	require.Equal(t, 0, srv.wait(20*time.Second), srv.Stderr())
	require.Equal(t, clients, strings.Count(srv.Stderr(), "session 127.0.0.1:"), srv.Stderr())
	require.NotContains(t, srv.Stderr(), "interrupted", "every session had ended before the interrupt")
}

// TestServerToClient pipes the server's stdin to the client's stdout: the
// client half-closes at once (empty stdin) and keeps reading.
func TestServerToClient(t *testing.T) {
	t.Parallel()
	in, out, inF, outF := fileTransfer(t, 3<<20, 2)

	srv, addr, pin := startServer(t, procOpts{stdin: inF}, "-mode", "stdio")
	cli := startProc(t, procOpts{stdout: outF}, "connect", "-pin", pin, addr)
	require.Equal(t, 0, cli.wait(60*time.Second), "connect:\n%s", cli.Stderr())
	require.Equal(t, 0, srv.wait(20*time.Second), "serve:\n%s", srv.Stderr())
	requireSameFile(t, in, out)
}

// TestInterruptConnect: Ctrl-C in the middle of a session closes it
// properly: the server sees the session end without an error, and connect
// exits with status 130.
func TestInterruptConnect(t *testing.T) {
	t.Parallel()
	srv, addr, pin := startServer(t, procOpts{}, "-mode", "echo", "-once")
	inR, inW := osPipe(t)
	outR, outW := osPipe(t)
	cli := startProc(t, procOpts{stdin: inR, stdout: outW}, "connect", "-pin", pin, addr)

	// Once the echo is back, the session is established and carrying data.
	msg := "some bytes before the interrupt\n"
	_, err := inW.Write([]byte(msg))
	require.NoError(t, err)
	require.NoError(t, outR.SetReadDeadline(time.Now().Add(20*time.Second)))
	echoed := make([]byte, len(msg))
	_, err = io.ReadFull(outR, echoed)
	require.NoError(t, err)
	require.Equal(t, msg, string(echoed))

	cli.interrupt()
	require.Equal(t, exitInterrupted, cli.wait(20*time.Second), cli.Stderr())
	require.Contains(t, cli.Stderr(), "interrupted")

	// The server's only session ended cleanly, so -once makes it exit 0.
	require.Equal(t, 0, srv.wait(20*time.Second), srv.Stderr())
	require.Regexp(t, `session 127\.0\.0\.1:\d+: received 32 B, sent 32 B in [^:]*$`, strings.TrimSpace(srv.Stderr()))
}

// TestInterruptServe: Ctrl-C on an echo server with a client connected
// closes the session properly and exits 0.
func TestInterruptServe(t *testing.T) {
	t.Parallel()
	srv, addr, pin := startServer(t, procOpts{}, "-mode", "echo", "-v")
	pr, pw := osPipe(t)
	out := &lockedBuffer{}
	cli := startProc(t, procOpts{stdin: pr, stdout: out}, "connect", "-pin", pin, addr)
	srv.waitLine(regexp.MustCompile(`session accepted`), 20*time.Second)

	srv.interrupt()
	require.Equal(t, 0, srv.wait(20*time.Second), srv.Stderr())
	require.Contains(t, srv.Stderr(), "interrupted, closing 1 open session")
	// The client saw the server's end of the session; it ends as soon as
	// its own input does.
	pw.Close()
	cli.wait(20 * time.Second)
}

func TestDemo(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runTool(t, 60*time.Second, nil, "demo", "-size", "2MiB")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "directly on loopback")
	require.Contains(t, stdout, "SHA-256")
	require.Contains(t, stdout, "matches")
	// The demo shows the settings it ran with: the library's defaults.
	require.Regexp(t, `settings +-max-datagram 1452, -idle 30s, .*-cc bbr, `, stdout)

	stdout, stderr, code = runTool(t, 90*time.Second, nil, append([]string{"demo", "-size", "2MiB", "-stats", "-cc", "newreno"}, lossyPath...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "-cc newreno (changed)")
	require.Contains(t, stdout, "through the relay")
	require.Regexp(t, `lost +the relay dropped [1-9]\d* datagrams.*; all recovered`, stdout)
	require.Contains(t, stderr, "statistics of the client session")
}

// TestRelayReorderWithoutDelay reorders on a path with no other delay
// (the relay's default hold-back of 1 ms).
func TestRelayReorderWithoutDelay(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runTool(t, 60*time.Second, nil, "demo", "-size", "2MiB", "-reorder", "2%")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "matches")
}

// TestWalkthrough runs the README's two-terminal walkthrough (with the relay
// in between) as written there, on other ports.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	stdout, stderr, code := runTool(t, 10*time.Second, nil, "cert", "-out", pki)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "connect -ca "+filepath.Join(pki, "ca.pem"))
	require.Contains(t, stdout, "serve -cert "+filepath.Join(pki, "server.pem"))
	require.Contains(t, stdout, "serve -key "+filepath.Join(pki, "server-key.pem"))

	srv, addr, _ := startServer(t, procOpts{}, "-mode", "echo",
		"-cert", filepath.Join(pki, "server.pem"), "-key", filepath.Join(pki, "server-key.pem"))
	relay, relayAddr := startRelay(t, addr, "-loss", "5%", "-delay", "10ms")
	stdout, stderr, code = runTool(t, 30*time.Second, strings.NewReader("hello, tlsgram\n"),
		"connect", "-ca", filepath.Join(pki, "ca.pem"), relayAddr)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "hello, tlsgram\n", stdout)
	stopRelay(t, relay)
	srv.interrupt()
	require.Equal(t, 0, srv.wait(20*time.Second), srv.Stderr())
}

// TestProgress: a progress line appears on request (or on a terminal) for
// transfers longer than a second, and never when stderr is not a terminal.
func TestProgress(t *testing.T) {
	t.Parallel()
	// 8 Mbit/s makes 2 MiB take about two seconds.
	_, stderr, code := runTool(t, 60*time.Second, nil, "demo", "-size", "2MiB", "-rate", "8mbit", "-progress", "line")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "\r\x1b[K")
	require.Regexp(t, `sent [\d.]+ [KM]iB \([\d.]+ [KM]iB/s\)  received [\d.]+ [KM]iB`, stderr)
	// (TestProgressLines checks the percentage, the time left and the interval lines.)

	_, stderr, code = runTool(t, 60*time.Second, nil, "demo", "-size", "2MiB", "-rate", "8mbit")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr, "stderr is not a terminal: no progress")
}

// fileTransfer writes size random bytes (from seed) to a temporary input file and creates an
// empty output file next to it. It returns their paths and both opened (closed at cleanup): the
// input for a sender's stdin, the output for a receiver's stdout.
func fileTransfer(t *testing.T, size int64, seed uint64) (in, out string, inF, outF *os.File) {
	t.Helper()
	dir := t.TempDir()
	in, out = filepath.Join(dir, "in"), filepath.Join(dir, "out")
	writeRandomFile(t, in, size, seed)
	inF, err := os.Open(in)
	require.NoError(t, err)
	t.Cleanup(func() { inF.Close() })
	outF, err = os.Create(out)
	require.NoError(t, err)
	t.Cleanup(func() { outF.Close() })
	return in, out, inF, outF
}
