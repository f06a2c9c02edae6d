package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tlsgram/tlsgram/internal/testcert"
)

// testCertificate is the self-signed certificate of internal/testcert (localhost, server.test,
// 127.0.0.1, ::1), valid from 1990 on so that it also verifies at testing/synctest's virtual
// epoch (2000-01-01).
func testCertificate(testing.TB) (tls.Certificate, *x509.CertPool) {
	return testcert.Certificate()
}

func serverTLS(tb testing.TB) *tls.Config {
	cert, _ := testCertificate(tb)
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func clientTLS(tb testing.TB) *tls.Config {
	_, pool := testCertificate(tb)
	return &tls.Config{RootCAs: pool, ServerName: "server.test"}
}

// checkLeaks records the goroutines that exist now and returns a function that fails the test
// if, after everything was closed, other goroutines remain after a bounded wait. Use as
// `defer checkLeaks(t)()` at the top of a test (not with t.Parallel).
func checkLeaks(tb testing.TB) func() {
	tb.Helper()
	base := goroutineIDs()
	return func() {
		tb.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var leaked []string
		for {
			leaked = leaked[:0]
			for id, stack := range goroutineStacks() {
				// readerPoller's waiter is the process's, not the test's: it runs while any
				// socket of any test is parked (park_linux.go), and is started by whichever
				// parks first.
				if _, ok := base[id]; !ok && !strings.Contains(stack, "checkLeaks") &&
					!strings.Contains(stack, "(*poller).wait") {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			// Polling, not synchronisation: goroutines of closed connections end on their own
			// (closing periods of 3 PTO), and nothing signals that to the test.
			time.Sleep(20 * time.Millisecond)
		}
		if len(leaked) > 0 {
			sort.Strings(leaked)
			tb.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	}
}

func goroutineIDs() map[string]struct{} {
	ids := make(map[string]struct{})
	for id := range goroutineStacks() {
		ids[id] = struct{}{}
	}
	return ids
}

// goroutineStacks maps "goroutine N" to its stack trace.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := make(map[string]string)
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		head, _, _ := strings.Cut(s, " [")
		m[head] = s
	}
	return m
}
