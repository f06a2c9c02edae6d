package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"math/big"
	"time"

	"github.com/tlsgram/tlsgram/transport"
)

// A TLS 1.3 echo server and a client that talks to it over UDP on loopback.
func Example() {
	serverTLS, clientTLS := exampleTLSConfigs() // a self-signed certificate for "localhost"

	// Server: one UDP socket serves every client; Accept returns connections whose TLS
	// handshake has completed.
	ln, err := transport.Listen("udp", "127.0.0.1:0", serverTLS, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener was closed
			}
			go func() {
				defer c.Close()      // waits until the client has acknowledged the echo
				_, _ = io.Copy(c, c) // echo until the client half-closes
			}()
		}
	}()

	// Client: Dial returns after the handshake, bounded by the context and
	// Config.HandshakeTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, "udp", ln.Addr().String(), clientTLS, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(c, "hello, tlsgram"); err != nil {
		log.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil { // TLS close_notify: the server's Copy ends
		log.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%s)\n", reply, tls.VersionName(c.ConnectionState().Version))
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	// Output: hello, tlsgram (TLS 1.3)
}

// exampleTLSConfigs returns a server config with a fresh self-signed certificate for localhost
// and a client config that trusts it. Real deployments load certificates instead.
func exampleTLSConfigs() (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	return server, client
}
