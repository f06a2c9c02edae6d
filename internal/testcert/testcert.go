// Package testcert makes a self-signed certificate for tests and examples of transport and the
// packages built on it: it covers localhost, server.test, 127.0.0.1 and ::1, and is valid from 1990 to 2100 so that
// it also verifies at testing/synctest's virtual epoch. Real deployments load certificates.
package testcert

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

var (
	once sync.Once
	cert tls.Certificate
	pool *x509.CertPool
)

// Certificate returns the process-wide certificate and a pool that trusts it. It covers
// localhost, server.test, 127.0.0.1 and ::1.
func Certificate() (tls.Certificate, *x509.CertPool) {
	once.Do(generate)
	return cert, pool
}

// Configs returns a server config holding the certificate and a client config that trusts it
// (ServerName "localhost"). Each call returns fresh configs around one process-wide certificate.
func Configs() (server, client *tls.Config) {
	once.Do(generate)
	return &tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func generate() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
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
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
}
