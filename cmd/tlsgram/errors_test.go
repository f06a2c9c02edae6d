package main

import (
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireOneLineError checks the shape every failure must have: a non-zero
// status and exactly one line on stderr that says what went wrong.
func requireOneLineError(t *testing.T, stderr string, code, wantCode int, wants ...string) {
	t.Helper()
	require.Equal(t, wantCode, code, "exit status; stderr:\n%s", stderr)
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "want one line on stderr, got:\n%s", stderr)
	for _, w := range wants {
		require.Contains(t, lines[0], w)
	}
}

func TestBadCommandLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"no command", []string{}, []string{"Usage"}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{"unknown flag", []string{"serve", "-frob"}, []string{"flag provided but not defined: -frob"}},
		{"serve bad mode", []string{"serve", "-mode", "chat"}, []string{`invalid value "chat" for flag -mode`}},
		{"serve address without port", []string{"serve", "-listen", "127.0.0.1"}, []string{"bad address", "missing port"}},
		{"serve bad port", []string{"serve", "-listen", "127.0.0.1:99999"}, []string{"bad address", "bad port"}},
		{"serve cert without key", []string{"serve", "-cert", "x.pem"}, []string{"-cert and -key go together"}},
		{"serve positional", []string{"serve", "127.0.0.1:1"}, []string{"unexpected argument"}},
		{"connect no address", []string{"connect"}, []string{"missing server address"}},
		{"connect address without port", []string{"connect", "localhost"}, []string{"bad address", "missing port"}},
		{"connect two addresses", []string{"connect", "127.0.0.1:1", "127.0.0.1:2"}, []string{"unexpected argument"}},
		{"connect bad pin", []string{"connect", "-pin", "abcd", "127.0.0.1:1"}, []string{"not a SHA-256 fingerprint"}},
		{"connect insecure and pin", []string{"connect", "-insecure", "-pin", strings.Repeat("ab", 32), "127.0.0.1:1"}, []string{"-insecure cannot be combined"}},
		{"connect bad timeout", []string{"connect", "-timeout", "soon", "127.0.0.1:1"}, []string{`invalid value "soon" for flag -timeout`}},
		{"cert without out", []string{"cert"}, []string{"-out DIR is required"}},
		{"relay without to", []string{"relay", "-listen", "127.0.0.1:0"}, []string{"-to"}},
		{"relay loss not a probability", []string{"relay", "-listen", "127.0.0.1:0", "-to", "127.0.0.1:1", "-loss", "2"}, []string{"did you mean 2%"}},
		{"relay loss garbage", []string{"relay", "-listen", "127.0.0.1:0", "-to", "127.0.0.1:1", "-loss", "lots"}, []string{"not a probability"}},
		{"relay bad rate", []string{"relay", "-listen", "127.0.0.1:0", "-to", "127.0.0.1:1", "-rate", "5mbps"}, []string{"-rate", "ambiguous"}},
		{"relay burst without loss", []string{"relay", "-listen", "127.0.0.1:0", "-to", "127.0.0.1:1", "-burst", "4"}, []string{"-burst needs -loss"}},
		{"relay negative delay", []string{"relay", "-listen", "127.0.0.1:0", "-to", "127.0.0.1:1", "-delay", "-5ms"}, []string{"negative"}},
		{"demo bad size", []string{"demo", "-size", "lots"}, []string{`invalid value "lots" for flag -size`}},
		{"demo bad congestion controller", []string{"demo", "-cc", "vegas"}, []string{`invalid value "vegas" for flag -cc`}},
		{"bad progress", []string{"demo", "-progress", "sometimes"}, []string{`invalid value "sometimes" for flag -progress`}},
		{"demo bad unit", []string{"demo", "-size", "5XB"}, []string{"unknown unit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runTool(t, 10*time.Second, nil, tc.args...)
			if len(tc.args) == 0 {
				require.Equal(t, exitUsage, code)
				require.Contains(t, stderr, tc.wants[0])
				return
			}
			requireOneLineError(t, stderr, code, exitUsage, tc.wants...)
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"serve": {"-listen", "-cert", "-key", "-mode", "-once", "-stats", "-v", "-progress", "-interval", "-json", "-cc", "-idle",
			"-handshake-timeout", "-client-ca", "-alpn", "-keylog"},
		"connect": {"-ca", "-pin", "-insecure", "-servername", "-timeout", "-stats", "-v", "-progress", "-interval", "-json", "-cc",
			"-idle", "-cert", "-key", "-allow-expired", "-alpn", "-keylog"},
		"version": {"-json", "-v"},
		"cert":    {"-out", "-hosts", "-force", "-v"},
		"relay":   {"-listen", "-to", "-loss", "-burst", "-reorder", "-dup", "-corrupt", "-delay", "-jitter", "-rate", "-seed", "-stats", "-v"},
		"demo":    {"-json", "-size", "-loss", "-burst", "-reorder", "-dup", "-corrupt", "-delay", "-jitter", "-rate", "-seed", "-stats", "-v"},
	}
	for cmd, flags := range want {
		stdout, stderr, code := runTool(t, 10*time.Second, nil, cmd, "-h")
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "Usage: tlsgram "+cmd)
		for _, f := range flags {
			require.Regexp(t, `(?m)^  `+f+`\b`, stdout, "%s -h does not document %s", cmd, f)
		}
	}
	stdout, _, code := runTool(t, 10*time.Second, nil, "-h")
	require.Equal(t, 0, code)
	for cmd := range want {
		require.Contains(t, stdout, "tlsgram "+cmd+" ")
	}
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, stderr, code := runTool(t, 10*time.Second, nil, "serve", "-cert", filepath.Join(dir, "missing.pem"), "-key", filepath.Join(dir, "missing-key.pem"))
	requireOneLineError(t, stderr, code, exitFailure, "-cert: cannot read certificate", "missing.pem", "no such file")

	// Unreadable: a directory where the certificate should be (file modes
	// do not stop root, who may run the tests).
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-cert", dir, "-key", dir)
	requireOneLineError(t, stderr, code, exitFailure, "-cert: cannot read certificate", "is a directory")

	_, _, code = runTool(t, 10*time.Second, nil, "cert", "-out", dir)
	require.Equal(t, 0, code)
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-cert", filepath.Join(dir, "server.pem"), "-key", filepath.Join(dir, "nokey.pem"))
	requireOneLineError(t, stderr, code, exitFailure, "-key: cannot read private key", "nokey.pem")
	// A key that belongs to another certificate.
	other := t.TempDir()
	_, _, code = runTool(t, 10*time.Second, nil, "cert", "-out", other)
	require.Equal(t, 0, code)
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-cert", filepath.Join(dir, "server.pem"), "-key", filepath.Join(other, "server-key.pem"))
	requireOneLineError(t, stderr, code, exitFailure, "private key does not match public key")

	// A certificate file that is not PEM.
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-cert", filepath.Join(dir, "server-key.pem"), "-key", filepath.Join(dir, "server-key.pem"))
	requireOneLineError(t, stderr, code, exitFailure, "no PEM certificate")

	// An address that is not this machine's.
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-listen", "192.0.2.1:4433")
	requireOneLineError(t, stderr, code, exitFailure, "cannot listen on 192.0.2.1:4433")

	// A port in use.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	_, stderr, code = runTool(t, 10*time.Second, nil, "serve", "-listen", pc.LocalAddr().String())
	requireOneLineError(t, stderr, code, exitFailure, "cannot listen on", "address already in use")
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	pki := t.TempDir()
	_, _, code := runTool(t, 10*time.Second, nil, "cert", "-out", pki)
	require.Equal(t, 0, code)
	otherPKI := t.TempDir()
	_, _, code = runTool(t, 10*time.Second, nil, "cert", "-out", otherPKI)
	require.Equal(t, 0, code)
	_, addr, _ := startServer(t, procOpts{}, "-mode", "echo",
		"-cert", filepath.Join(pki, "server.pem"), "-key", filepath.Join(pki, "server-key.pem"))

	t.Run("right CA", func(t *testing.T) {
		stdout, stderr, code := runTool(t, 20*time.Second, strings.NewReader("hello\n"), "connect", "-ca", filepath.Join(pki, "ca.pem"), addr)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "hello\n", stdout)
	})
	t.Run("wrong CA", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-ca", filepath.Join(otherPKI, "ca.pem"), addr)
		requireOneLineError(t, stderr, code, exitFailure, "handshake with "+addr+" failed", "x509: certificate signed by unknown authority")
	})
	t.Run("no CA", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", addr)
		requireOneLineError(t, stderr, code, exitFailure, "x509: certificate signed by unknown authority", "-ca FILE")
	})
	t.Run("wrong name", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-ca", filepath.Join(pki, "ca.pem"), "-servername", "example.com", addr)
		requireOneLineError(t, stderr, code, exitFailure, "x509: certificate is valid for", "not example.com", "-servername")
	})
	t.Run("pin mismatch", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-pin", strings.Repeat("0", 64), addr)
		requireOneLineError(t, stderr, code, exitFailure, "does not match -pin")
	})
	t.Run("missing CA file", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-ca", filepath.Join(pki, "nope.pem"), addr)
		requireOneLineError(t, stderr, code, exitFailure, "-ca: cannot read CA certificate", "no such file")
	})
	t.Run("CA file not PEM", func(t *testing.T) {
		_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-ca", filepath.Join(pki, "server-key.pem"), addr)
		requireOneLineError(t, stderr, code, exitFailure, "no PEM certificate")
	})
	t.Run("insecure warns", func(t *testing.T) {
		stdout, stderr, code := runTool(t, 20*time.Second, strings.NewReader("x"), "connect", "-insecure", addr)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "x", stdout)
		require.Contains(t, stderr, "WARNING")
		require.Contains(t, stderr, "NOT verified")
	})
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	// A port where something listens but never answers: the handshake must
	// give up after -timeout, not hang.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	start := time.Now()
	_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-pin", strings.Repeat("0", 64), "-timeout", "1s", pc.LocalAddr().String())
	requireOneLineError(t, stderr, code, exitFailure, "no handshake with "+pc.LocalAddr().String()+" within 1s")
	require.Less(t, time.Since(start), 8*time.Second)
}

// TestConnectRefusedSaysItOnce: a port where nothing listens gives one reason, not the
// transport's and then the command's own hint for the same thing.
func TestConnectRefusedSaysItOnce(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	_, stderr, code := runTool(t, 20*time.Second, nil, "connect", "-insecure", "-timeout", "5s", addr)
	if runtime.GOOS != "linux" {
		t.Skip("only Linux reports ICMP port unreachable on the dialled socket")
	}
	require.Equal(t, exitFailure, code, stderr)
	require.Contains(t, stderr, "connection refused")
	require.Equal(t, 1, strings.Count(stderr, "listen"), "one reason, said once: %s", stderr)
}
