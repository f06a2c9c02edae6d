package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tlsgram/tlsgram/transport"
)

const connectDescription = `
Opens a tlsgram session (TLS 1.3 over UDP) to ADDR, copies stdin to it,
half-closes it at EOF, and copies what the server sends to stdout until the
server closes its side: "ncat --ssl" / "openssl s_client" for tlsgram.

The exit status is 0 only if everything read from stdin was acknowledged by
the server and everything the server sent was written to stdout.

How the server is authenticated:
  (default)     its certificate must chain to the system's trusted CAs
  -ca FILE      ... or to the CA certificates in FILE (PEM), e.g. from
                "tlsgram cert"
  -pin SHA256   its certificate must have this SHA-256 fingerprint (as
                printed by "tlsgram serve"); with -ca as well, both checks
  -insecure     no check at all (testing only: anyone on the path can read
                and change the session)

A pinned certificate must still be within its validity period unless
-allow-expired says otherwise. -cert and -key present a client certificate
to a server that asks for one (serve -client-ca).

The name checked against the certificate is ADDR's host unless -servername
is given. Ctrl-C closes the session properly; a second one exits at once.`

const connectSynopsis = "[-ca FILE | -pin SHA256 [-allow-expired] | -insecure] [-servername NAME] [-cert FILE -key FILE] ADDR"

func runConnect(ctx context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, connectSynopsis, connectDescription, true)
	var o clientTLS
	f.StringVar(&o.caFile, "ca", "", "trust the CA certificates in this PEM `file` instead of the system's")
	f.StringVar(&o.pin, "pin", "", "accept only a server certificate with this SHA-256 `fingerprint` (64 hex digits, colons allowed, as serve and cert print it)")
	f.BoolVar(&o.insecure, "insecure", false, "do not verify the server at all (DANGEROUS: for testing only)")
	f.StringVar(&o.serverName, "servername", "", "`name` to send (SNI) and to verify the certificate against (default: ADDR's host)")
	f.BoolVar(&o.allowExpired, "allow-expired", false, "with -pin: accept the pinned certificate even if it has expired (or is not yet valid)")
	f.StringVar(&o.certFile, "cert", "", "client certificate `file` (PEM) to present, for a server that requires one (serve -client-ca)")
	f.StringVar(&o.keyFile, "key", "", "client private key `file` (PEM)")
	var extras tlsExtras
	extras.register(f, false)
	f.addJSON("on stderr (stdout carries the data)")
	timeout := durationValue(transport.DefaultHandshakeTimeout)
	f.Var(&timeout, "timeout", "give up if the handshake has not completed after this `duration`")
	var so sessionFlags
	so.register(f, "handshake-timeout") // -timeout
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		return usagef("missing server address, e.g. 127.0.0.1:4433 (see '%s -h')", name)
	case 1:
	default:
		return usagef("unexpected argument %q after the address (see '%s -h')", pos[1], name)
	}
	addr := pos[0]
	if err := checkAddr("connect", addr); err != nil {
		return err
	}
	o.warn = func(msg string) { fmt.Fprintf(e.stderr, "%s: %s\n", name, msg) }
	tlsConf, err := o.config(addr)
	if err != nil {
		return err
	}
	closeKeyLog, err := extras.apply(tlsConf, e, name)
	if err != nil {
		return err
	}
	defer closeKeyLog()
	if o.insecure {
		fmt.Fprintf(e.stderr, "%s: WARNING: -insecure: the server's certificate is NOT verified; "+
			"anyone on the path can read and change this session\n", name)
	}

	conf := so.config()
	conf.HandshakeTimeout = time.Duration(timeout)
	dialCtx, cancel := context.WithTimeout(ctx, time.Duration(timeout))
	start := time.Now()
	s, err := dialSession(dialCtx, addr, tlsConf, conf)
	timedOut := errors.Is(dialCtx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return &interruptedError{what: "before the handshake completed"}
		case timedOut || isTimeout(err):
			return fmt.Errorf("no handshake with %s within %s: %w", addr, time.Duration(timeout), err)
		}
		return fmt.Errorf("handshake with %s failed: %w", addr, err)
	}
	handshake := time.Since(start)
	cs := s.ConnectionState()
	e.log.Debug("session established", "remote", s.RemoteAddr(), "local", s.LocalAddr(),
		"handshake", handshake, "cipher", cipherName(cs.CipherSuite), "server_name", tlsConf.ServerName,
		"alpn", cs.NegotiatedProtocol)

	var sent, received counter
	total := inputSize(e.stdin)
	prog := startProgress(f.progressMode(true), time.Duration(f.interval), e.stderr, func() progressSample {
		p := progressSample{sent: sent.Load(), received: received.Load(), total: total}
		if st, ok := statsOf(s); ok {
			p.rtt = st.SmoothedRTT
		}
		return p
	})
	err = pipe(ctx, s, e.stdin, e.stdout, &sent, &received)
	prog.Stop()
	e.log.Debug("session ended", "sent", sent.Load(), "received", received.Load(), "elapsed", time.Since(start), "err", err)
	switch {
	case f.json:
		j := sessionToJSON(s, sent.Load(), received.Load(), time.Since(start), err, f.stats)
		j.HandshakeMS = ms(handshake)
		if jerr := writeJSON(e.stderr, j); jerr != nil && err == nil {
			err = jerr
		}
	case f.stats:
		fmt.Fprint(e.stderr, statsText("session "+addr, s))
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
