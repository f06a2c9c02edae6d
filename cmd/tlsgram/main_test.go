package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tlsgramBin is the binary under test, built once by TestMain: the
// end-to-end tests run it as separate processes, as users do.
var tlsgramBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tlsgram-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	tlsgramBin = filepath.Join(dir, "tlsgram")
	build := exec.Command(goTool, "build", "-o", tlsgramBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tlsgram:", err)
		return 1
	}
	return m.Run()
}

// proc is a running tlsgram process whose stderr is watched line by line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu     sync.Mutex // guards stderr
	stderr bytes.Buffer
	lines  chan string // every stderr line, also kept in stderr
	done   chan struct{}
	err    error // Wait's result, valid after done
}

// procOpts are the standard streams of a process; nil means empty stdin and
// discarded stdout.
type procOpts struct {
	stdin  io.Reader
	stdout io.Writer
}

// startProc starts tlsgram with args. The process is killed when the test
// ends, if it is still running.
func startProc(t *testing.T, o procOpts, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: strings.Join(args, " "), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.Command(tlsgramBin, args...)
	p.cmd.Stdin = o.stdin
	p.cmd.Stdout = o.stdout
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default: // nobody is waiting for lines this far on
			}
		}
		// Wait closes the pipe, so it must come after the scanner is done.
		p.err = p.cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
			t.Logf("killed %q; stderr:\n%s", p.name, p.Stderr())
		}
	})
	return p
}

// Stderr returns everything the process wrote to stderr so far.
func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine waits for a stderr line matching re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%q exited (%v) before printing a line matching %q; stderr:\n%s", p.name, p.err, re, p.Stderr())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-timer.C:
			p.t.Fatalf("%q printed no line matching %q within %s; stderr:\n%s", p.name, re, timeout, p.Stderr())
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	// Drain lines nobody reads, so the scanner never blocks.
	go func() {
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%q did not exit within %s; stderr:\n%s", p.name, timeout, p.Stderr())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(p.t, p.err, "waiting for %q", p.name)
	return 0
}

// interrupt sends SIGINT, as Ctrl-C does.
func (p *proc) interrupt() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGINT))
}

var (
	listenRe = regexp.MustCompile(`listening on ([^\s,]+)`)
	pinRe    = regexp.MustCompile(`pin: ([0-9a-f]{64})`)
)

// startServer runs "tlsgram serve" on a free port and returns its address
// and certificate pin.
func startServer(t *testing.T, o procOpts, args ...string) (p *proc, addr, pin string) {
	t.Helper()
	p = startProc(t, o, append([]string{"serve", "-listen", "127.0.0.1:0"}, args...)...)
	addr = p.waitLine(listenRe, 10*time.Second)[1]
	if !containsArg(args, "-cert") {
		pin = p.waitLine(pinRe, 5*time.Second)[1]
	}
	return p, addr, pin
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// runTool runs tlsgram to completion and returns stdout, stderr and status.
func runTool(t *testing.T, timeout time.Duration, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tlsgramBin, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%v did not finish within %s; stderr:\n%s", args, timeout, errb.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errb.String(), 0
}

// lockedBuffer is an io.Writer safe for the exec package's copying goroutine
// and the test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
