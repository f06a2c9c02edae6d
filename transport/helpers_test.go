package transport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	certOnce sync.Once
	testCert tls.Certificate
	certPool *x509.CertPool
)

// testCertificate is a self-signed ECDSA certificate for localhost, 127.0.0.1 and ::1, valid
// from 1990 on so that it also verifies at testing/synctest's virtual epoch (2000-01-01).
func testCertificate(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "tlsgram test"},
			NotBefore:             time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			DNSNames:              []string{"localhost", "server.test"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
		certPool = x509.NewCertPool()
		certPool.AddCert(cert)
	})
	return testCert, certPool
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
				if _, ok := base[id]; !ok && !strings.Contains(stack, "checkLeaks") {
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
