package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// fingerprint is the SHA-256 of a certificate's DER encoding: the value
// "openssl x509 -noout -fingerprint -sha256" prints, and what -pin compares.
func fingerprint(der []byte) [sha256.Size]byte { return sha256.Sum256(der) }

func formatFingerprint(fp [sha256.Size]byte) string { return hex.EncodeToString(fp[:]) }

// parsePin accepts a SHA-256 certificate fingerprint as 64 hex digits, with or
// without colons (openssl prints "AB:CD:..."), optionally prefixed "sha256:"
// or "SHA256 Fingerprint=", or as base64 after "sha256//" (curl's spelling).
func parsePin(s string) ([sha256.Size]byte, error) {
	var pin [sha256.Size]byte
	t := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(t, "sha256//"); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) != sha256.Size {
			return pin, fmt.Errorf("pin %q: want base64 of 32 bytes after sha256//", s)
		}
		copy(pin[:], b)
		return pin, nil
	}
	low := strings.ToLower(t)
	for _, p := range []string{"sha256 fingerprint=", "sha256:", "sha256="} {
		low = strings.TrimPrefix(low, p)
	}
	low = strings.ReplaceAll(low, ":", "")
	b, err := hex.DecodeString(low)
	if err != nil || len(b) != sha256.Size {
		return pin, fmt.Errorf("pin %q is not a SHA-256 fingerprint (64 hex digits, as printed by 'tlsgram serve')", s)
	}
	copy(pin[:], b)
	return pin, nil
}

// pinError is a certificate that does not match -pin.
type pinError struct{ got, want [sha256.Size]byte }

func (e *pinError) Error() string {
	return fmt.Sprintf("server certificate does not match -pin: its SHA-256 is %s, expected %s",
		formatFingerprint(e.got), formatFingerprint(e.want))
}

// expiredError is a pinned certificate outside its validity period.
type expiredError struct {
	notBefore, notAfter time.Time
	now                 time.Time
}

func (e *expiredError) Error() string {
	if e.now.Before(e.notBefore) {
		return fmt.Sprintf("the server's certificate matches -pin but is not valid before %s", e.notBefore.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("the server's certificate matches -pin but expired on %s", e.notAfter.UTC().Format(time.RFC3339))
}

// validityProblem describes a certificate outside its validity period at now, or returns "".
func validityProblem(leaf *x509.Certificate, now time.Time) string {
	switch {
	case now.After(leaf.NotAfter):
		return "expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(leaf.NotBefore):
		return "is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// clientTLS is the verification choice of "connect", and the client's certificate.
type clientTLS struct {
	caFile     string
	pin        string
	insecure   bool
	serverName string
	// allowExpired makes -pin accept a certificate outside its validity period; warn is
	// told when that happens.
	allowExpired bool
	warn         func(string)
	// certFile and keyFile are the client certificate for mutual TLS.
	certFile, keyFile string
}

// config builds the client's tls.Config for a session to addr. With -pin and
// no -ca the chain is not verified, only the pinned leaf; with both, both.
func (o *clientTLS) config(addr string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: o.serverName}
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, usagef("bad address %q: %v", addr, addrErr(err))
		}
		conf.ServerName = host
	}
	if o.insecure && (o.caFile != "" || o.pin != "") {
		return nil, usagef("-insecure cannot be combined with -ca or -pin")
	}
	if o.allowExpired && (o.pin == "" || o.caFile != "") {
		return nil, usagef("-allow-expired goes with -pin alone: with -ca (or the system's CAs) the chain's validity is checked")
	}
	switch {
	case o.certFile != "" && o.keyFile != "":
		cert, err := loadKeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	case o.certFile != "" || o.keyFile != "":
		return nil, usagef("-cert and -key go together")
	}
	if o.insecure {
		conf.InsecureSkipVerify = true
		return conf, nil
	}
	if o.caFile != "" {
		pool, err := loadCAPool("-ca", o.caFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	if o.pin != "" {
		want, err := parsePin(o.pin)
		if err != nil {
			return nil, usagef("%v", err)
		}
		if o.caFile == "" {
			// The pin replaces chain verification (as in ssh host keys and
			// curl --pinnedpubkey): a self-signed certificate is expected.
			conf.InsecureSkipVerify = true
		}
		// VerifyConnection runs whether or not InsecureSkipVerify is set.
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			got := fingerprint(leaf.Raw)
			if got != want {
				return &pinError{got: got, want: want}
			}
			if o.caFile != "" {
				return nil // the chain was verified, validity included
			}
			// The pin replaces the chain, not the validity period: accepting an expired
			// certificate is a choice the user states with -allow-expired.
			now := time.Now()
			if p := validityProblem(leaf, now); p != "" {
				if !o.allowExpired {
					return &expiredError{notBefore: leaf.NotBefore, notAfter: leaf.NotAfter, now: now}
				}
				if o.warn != nil {
					o.warn("WARNING: -allow-expired: accepting the pinned certificate, which " + p)
				}
			}
			return nil
		}
	}
	return conf, nil
}

// loadCAPool reads the CA certificates of flag (-ca, -client-ca).
func loadCAPool(flag, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read CA certificate: %w", flag, pathErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in the file", flag, file)
	}
	return pool, nil
}

// loadKeyPair reads -cert and -key with errors that say which flag is wrong.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("-cert: cannot read certificate: %w", pathErr(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("-key: cannot read private key: %w", pathErr(err))
	}
	if !bytes.Contains(certPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		return tls.Certificate{}, fmt.Errorf("-cert %s: no PEM certificate in the file", certFile)
	}
	if !bytes.Contains(keyPEM, []byte("PRIVATE KEY-----")) {
		return tls.Certificate{}, fmt.Errorf("-key %s: no PEM private key in the file", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("-cert %s / -key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// pathErr drops the "open " prefix of *fs.PathError, keeping path and reason.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// serverTLS builds the server's tls.Config. Without a certificate it makes an
// ephemeral self-signed one and returns its fingerprint for -pin.
func serverTLS(certFile, keyFile string, hosts []string) (conf *tls.Config, pin string, err error) {
	var cert tls.Certificate
	switch {
	case certFile != "" && keyFile != "":
		cert, err = loadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, "", err
		}
		if len(cert.Certificate) > 0 {
			pin = formatFingerprint(fingerprint(cert.Certificate[0]))
		}
	case certFile != "" || keyFile != "":
		return nil, "", usagef("-cert and -key go together")
	default:
		cert, err = selfSigned(hosts, 30*24*time.Hour)
		if err != nil {
			return nil, "", err
		}
		pin = formatFingerprint(fingerprint(cert.Certificate[0]))
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, pin, nil
}

// selfSigned makes a P-256 certificate valid for hosts (names and
// addresses), signed by its own key. It is meant to be pinned, never trusted
// as a CA.
func selfSigned(hosts []string, validity time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl, err := leafTemplate("tlsgram ephemeral", hosts, validity)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serialNumber() (*big.Int, error) {
	// RFC 5280 §4.1.2.2: positive, at most 20 octets; 128 random bits.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func leafTemplate(cn string, hosts []string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"tlsgram development"}},
		// Backdated an hour so a peer with a slightly late clock accepts it.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl, nil
}

// defaultHosts are the names a development certificate should cover: the
// loopback names plus the host the server listens on, if it is specific.
func defaultHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			hosts = appendUnique(hosts, host)
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = appendUnique(hosts, name)
	}
	return hosts
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return list
		}
	}
	return append(list, s)
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// serverCertWarning returns a warning for a server certificate that clients verifying it will
// refuse (expired or not yet valid), or "".
func serverCertWarning(cert tls.Certificate, now time.Time) string {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return ""
	}
	if p := validityProblem(leaf, now); p != "" {
		return "WARNING: the server certificate " + p + ": clients that verify it will refuse the handshake " +
			"(-pin clients only with -allow-expired)"
	}
	return ""
}

// tlsExtras are the TLS options serve, connect and demo share.
type tlsExtras struct {
	alpn   string
	keyLog string
}

func (x *tlsExtras) register(f *cmdFlags, server bool) {
	what := "offer"
	if server {
		what = "accept (a client offering none of them is refused; one offering none at all is not)"
	}
	f.StringVar(&x.alpn, "alpn", "", "comma-separated application `protocols` to "+what+" with TLS ALPN, e.g. h2,http/1.1")
	f.StringVar(&x.keyLog, "keylog", os.Getenv("SSLKEYLOGFILE"), "append the sessions' TLS secrets to this `file` in the NSS key log "+
		"format (SSLKEYLOGFILE; default: that environment variable). DANGEROUS: whoever reads the file can decrypt the sessions")
}

// apply sets ALPN and the key log on conf. The returned function closes the key log.
func (x *tlsExtras) apply(conf *tls.Config, e *env, name string) (func(), error) {
	for _, p := range strings.Split(x.alpn, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if len(p) > 255 {
				return nil, usagef("-alpn: protocol name %.20q… is longer than 255 bytes", p)
			}
			conf.NextProtos = append(conf.NextProtos, p)
		}
	}
	if x.keyLog == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(x.keyLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("-keylog: %w", pathErr(err))
	}
	conf.KeyLogWriter = f
	fmt.Fprintf(e.stderr, "%s: WARNING: writing the TLS secrets of these sessions to %s (-keylog or SSLKEYLOGFILE): "+
		"whoever reads that file can decrypt them\n", name, x.keyLog)
	return func() { f.Close() }, nil
}
