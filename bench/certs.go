package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// ServerName is the name in the benchmark certificate; clients verify it.
const ServerName = "tlsgram-bench.test"

var (
	certOnce sync.Once
	certTLS  tls.Certificate
	certPool *x509.CertPool
	certErr  error
)

// Certificate returns a self-signed ECDSA P-256 certificate, generated once
// per process, valid for [ServerName] and 127.0.0.1, and a pool holding it.
// Every contender uses the same key type so handshake costs compare fairly
// (ECDSA P-256 signatures, X25519 or P-256 key exchange as each library
// negotiates by default).
func Certificate() (tls.Certificate, *x509.CertPool, error) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: ServerName},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			DNSNames:              []string{ServerName},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			certErr = err
			return
		}
		certTLS = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	return certTLS, certPool, certErr
}

// ServerTLS returns a TLS 1.3-only server config with the benchmark
// certificate. alpn may be empty.
func ServerTLS(alpn ...string) (*tls.Config, error) {
	cert, _, err := Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   alpn,
	}, nil
}

// ClientTLS returns a TLS 1.3-only client config that verifies the
// benchmark certificate. It has no session cache, so every handshake is a
// full one (no resumption makes any contender look faster than it is on a
// first contact).
func ClientTLS(alpn ...string) (*tls.Config, error) {
	_, pool, err := Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: ServerName,
		NextProtos: alpn,
	}, nil
}
