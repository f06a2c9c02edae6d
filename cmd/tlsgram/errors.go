package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	tgsession "github.com/tlsgram/tlsgram/session"
)

// explain returns err's message with a hint for the mistakes users make most
// often. The message itself (the TLS or x509 reason) is kept: it is what
// people search for.
func explain(err error) string {
	msg := err.Error()
	hint := hintFor(err)
	if hint == "" || strings.Contains(msg, hint) {
		return msg
	}
	return msg + " (" + hint + ")"
}

func hintFor(err error) string {
	var (
		pin      *pinError
		expired  *expiredError
		unknown  x509.UnknownAuthorityError
		unknownP *x509.UnknownAuthorityError
		host     x509.HostnameError
		hostP    *x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		recHdr   tls.RecordHeaderError
		netErr   net.Error
		addr     *net.AddrError
		dns      *net.DNSError
		closed   *tgsession.CloseError
	)
	switch {
	case errors.As(err, &pin):
		return "the server's certificate changed, or this is not the server you meant"
	case errors.As(err, &expired):
		return "renew the server's certificate, or accept it anyway with -allow-expired"
	case errors.As(err, &unknown), errors.As(err, &unknownP):
		return "give the CA that signed the server certificate with -ca FILE, or pin it with -pin"
	case errors.As(err, &host), errors.As(err, &hostP):
		return "use -servername with a name the certificate covers"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "the certificate has expired or the clock is wrong"
		}
		return ""
	case strings.Contains(err.Error(), "remote error: tls: no application protocol"):
		return "the server accepts none of the -alpn protocols offered"
	case errors.As(err, &closed) && closed.Remote && closed.Code == tgsession.CodeTLS:
		return "the server refused the handshake and its log says why: it may want a client certificate " +
			"(-cert, -key), another -alpn, or be a 'tlsgram serve -mode stdio' busy with another client"
	case errors.As(err, &alert):
		return "the peer rejected the handshake"
	case errors.As(err, &recHdr):
		return "the peer does not speak TLS 1.3 over tlsgram"
	case errors.As(err, &dns):
		return "check the host name"
	case errors.As(err, &addr):
		return "addresses look like 127.0.0.1:4433, [::1]:4433 or example.com:4433"
	case errors.Is(err, syscall.ECONNREFUSED):
		if strings.Contains(err.Error(), "nothing listens") {
			return "" // the transport's message says it already
		}
		return "nothing is listening at that address"
	case errors.Is(err, syscall.EADDRINUSE):
		return "another process uses that port; pick another or use port 0"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "that address is not one of this machine's"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time: is a tlsgram server listening there? -timeout sets the limit"
	}
	return ""
}

// addrErr shortens net's address parse errors ("address x: missing port in
// address") to the reason.
func addrErr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// checkAddr rejects what is not host:port before any socket is opened, so a
// typo gives "bad address" rather than a resolver error.
func checkAddr(flagName, addr string) error {
	if addr == "" {
		return usagef("%s: an address is required (host:port)", flagName)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("bad address %q for %s: %v (want host:port, e.g. 127.0.0.1:4433)", addr, flagName, addrErr(err))
	}
	if _, err := net.LookupPort("udp", port); err != nil {
		return usagef("bad address %q for %s: bad port %q", addr, flagName, port)
	}
	return nil
}
