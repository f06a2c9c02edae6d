package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "65536": 65536, "64MiB": 64 << 20, "100M": 100 << 20, "100MB": 100e6,
		"1.5GiB": 3 << 29, "2k": 2048, "2KB": 2000, "7B": 7, " 3 MiB ": 3 << 20, "1g": 1 << 30,
	}
	for in, want := range good {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "-1", "1..2M", "5XB", "1e3", "100000000000T"} {
		_, err := parseSize(in)
		require.Error(t, err, in)
	}
}

func TestParseProb(t *testing.T) {
	good := map[string]float64{"0": 0, "0.02": 0.02, "2%": 0.02, "100%": 1, "1": 1, "0.5%": 0.005}
	for in, want := range good {
		got, err := parseProb(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-12, in)
	}
	for _, in := range []string{"", "x", "2", "-0.1", "101%", "NaN"} {
		_, err := parseProb(in)
		require.Error(t, err, in)
	}
	_, err := parseProb("5")
	require.ErrorContains(t, err, "did you mean 5%")
}

func TestParsePin(t *testing.T) {
	fp := fingerprint([]byte("certificate"))
	hexs := formatFingerprint(fp)
	var colons []string
	for i := 0; i < len(hexs); i += 2 {
		colons = append(colons, strings.ToUpper(hexs[i:i+2]))
	}
	for _, in := range []string{
		hexs, strings.ToUpper(hexs), "sha256:" + hexs, strings.Join(colons, ":"),
		"SHA256 Fingerprint=" + strings.Join(colons, ":"), // openssl x509 -fingerprint -sha256
		"sha256//" + "mPtn6vyMgyD/qpVxQ73HvGBiCj0+x6TxtZ2SDo00xyA=",
	} {
		got, err := parsePin(in)
		require.NoError(t, err, in)
		if !strings.HasPrefix(in, "sha256//") {
			require.Equal(t, fp, got, in)
		}
	}
	for _, in := range []string{"", "abcd", hexs + "00", "sha256//short", strings.Repeat("zz", 32)} {
		_, err := parsePin(in)
		require.Error(t, err, in)
	}
}

// handshake runs a TLS handshake over loopback TCP (buffered, unlike
// net.Pipe, on which a failing side's alert waits for a reader that is
// itself blocked writing) and returns the client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, server)
		s.SetDeadline(time.Now().Add(10 * time.Second))
		srvErr <- s.Handshake()
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	c := tls.Client(raw, client)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	err = c.Handshake()
	raw.Close()
	<-srvErr
	return err
}

func TestClientTLSPin(t *testing.T) {
	srv, pin, err := serverTLS("", "", defaultHosts("127.0.0.1:4433"))
	require.NoError(t, err)
	require.Len(t, pin, 64)

	conf, err := (&clientTLS{pin: pin}).config("127.0.0.1:4433")
	require.NoError(t, err)
	require.NoError(t, handshake(t, srv, conf))

	other, _, err := serverTLS("", "", []string{"localhost"})
	require.NoError(t, err)
	err = handshake(t, other, conf)
	var pe *pinError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, explain(err), "does not match -pin")

	// Without -pin, -ca or -insecure a self-signed certificate is refused.
	conf, err = (&clientTLS{}).config("127.0.0.1:4433")
	require.NoError(t, err)
	err = handshake(t, srv, conf)
	require.Error(t, err)
	require.Contains(t, explain(err), "-ca FILE")

	conf, err = (&clientTLS{insecure: true}).config("127.0.0.1:4433")
	require.NoError(t, err)
	require.NoError(t, handshake(t, srv, conf))
}

func TestDevPKI(t *testing.T) {
	hosts := []string{"localhost", "127.0.0.1", "::1", "db.internal"}
	files, fp, notAfter, err := makeDevPKI(hosts, 90*24*time.Hour)
	require.NoError(t, err)
	require.Len(t, files, 5)
	byName := map[string]pkiFile{}
	for _, f := range files {
		byName[f.name] = f
	}
	require.Equal(t, 0o600, int(byName["server-key.pem"].mode), "the private key must not be world-readable")
	require.Equal(t, 0o600, int(byName["client-key.pem"].mode), "the private key must not be world-readable")

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(byName["ca.pem"].data))
	block, _ := pem.Decode(byName["server.pem"].data)
	require.NotNil(t, block)
	leaf, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, fp, formatFingerprint(fingerprint(block.Bytes)))
	require.WithinDuration(t, time.Now().Add(90*24*time.Hour), notAfter, time.Minute)
	for _, h := range hosts {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: h})
		require.NoError(t, err, h)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"})
	require.Error(t, err)

	// The pair works for a real handshake, verified through -ca.
	cert, err := tls.X509KeyPair(byName["server.pem"].data, byName["server-key.pem"].data)
	require.NoError(t, err)
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	cli := &tls.Config{RootCAs: pool, ServerName: "db.internal", MinVersion: tls.VersionTLS13}
	require.NoError(t, handshake(t, srv, cli))
}

func TestOneLine(t *testing.T) {
	require.Equal(t, "a; b", oneLine("a\r\nb\n"))
}

func TestParseInterspersed(t *testing.T) {
	e := &env{stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	f := newFlags(e, "tlsgram test", "", "", true)
	pin := f.String("pin", "", "")
	pos, err := f.parse([]string{"127.0.0.1:1", "-pin", "x", "--", "-notaflag"})
	require.NoError(t, err)
	require.Equal(t, "x", *pin)
	require.Equal(t, []string{"127.0.0.1:1", "-notaflag"}, pos)
}
