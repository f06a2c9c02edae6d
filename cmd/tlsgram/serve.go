package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

const serveDescription = `
Listens for tlsgram sessions (TLS 1.3 over UDP).

Modes:
  stdio    pipe one session to stdin/stdout, like "ncat --ssl -l": stdin goes
           to the client (half-closed at EOF), what the client sends goes to
           stdout. Serves one session, then exits; later clients are refused
           while it runs.
  echo     send back whatever each client sends; many clients at once.
  discard  read and count what each client sends; many clients at once.

echo and discard run until interrupted (or, with -once, until the first
session ends), and print one line per session on stderr.

Without -cert and -key, the server makes an ephemeral self-signed certificate
and prints its SHA-256 fingerprint; clients pin it with "connect -pin".

With -client-ca, clients must present a certificate signed by one of its
CAs (mutual TLS; "tlsgram cert" makes one: client.pem, client-key.pem).

On start, stderr gets a line "listening on ADDR" (the real port with
-listen HOST:0) and, for an ephemeral certificate, "pin: SHA256".

Ctrl-C closes open sessions properly; a second Ctrl-C exits at once.`

func runServe(ctx context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "[-listen ADDR] [-cert FILE -key FILE] [-client-ca FILE] [-mode stdio|echo|discard] [-once]", serveDescription, true)
	listen := f.String("listen", "127.0.0.1:4433", "UDP `address` to listen on (port 0: any free port)")
	certFile := f.String("cert", "", "server certificate `file` (PEM; may hold the chain)")
	keyFile := f.String("key", "", "server private key `file` (PEM)")
	clientCA := f.String("client-ca", "", "require a client certificate signed by a CA in this PEM `file` (mutual TLS)")
	mode := f.String("mode", "stdio", "what to do with sessions, the `mode`: stdio, echo or discard")
	var extras tlsExtras
	extras.register(f, true)
	f.addJSON("per session, one line each, on stderr, instead of the session line")
	once := f.Bool("once", false, "exit after the first session ends")
	var so sessionFlags
	so.register(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (the address goes in -listen; see '%s -h')", pos[0], name)
	}
	switch *mode {
	case "stdio", "echo", "discard":
	default:
		return usagef("invalid value %q for flag -mode: want stdio, echo or discard", *mode)
	}
	if err := checkAddr("-listen", *listen); err != nil {
		return err
	}
	tlsConf, pin, err := serverTLS(*certFile, *keyFile, defaultHosts(*listen))
	if err != nil {
		return err
	}
	if w := serverCertWarning(tlsConf.Certificates[0], time.Now()); w != "" {
		fmt.Fprintf(e.stderr, "%s: %s\n", name, w)
	}
	if *clientCA != "" {
		pool, err := loadCAPool("-client-ca", *clientCA)
		if err != nil {
			return err
		}
		tlsConf.ClientCAs = pool
		tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	closeKeyLog, err := extras.apply(tlsConf, e, name)
	if err != nil {
		return err
	}
	defer closeKeyLog()
	srv := &server{e: e, f: f, name: name, mode: *mode, once: *once || *mode == "stdio",
		active: make(map[session]struct{})}
	if *mode == "stdio" {
		tlsConf.GetConfigForClient = srv.refuseBusy
	}
	conf := so.config()
	if f.verbose {
		conf.Tracer = handshakeLogger(e.log)
	}
	ln, err := listenSessions(*listen, tlsConf, conf)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *listen, err)
	}
	srv.ln = ln
	srv.announce(ln.Addr().String(), *certFile, pin)
	return srv.run(ctx)
}

// errBusy refuses a client's handshake while a stdio session runs: one session owns stdin and
// stdout, and a later client should hear so at once (its handshake fails within a round trip)
// rather than wait for a handshake timeout or get a session that ends at once and looks like
// success.
var errBusy = errors.New("serving one session already (-mode stdio)")

// refuseBusy is the stdio server's tls.Config.GetConfigForClient.
func (s *server) refuseBusy(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	s.mu.Lock()
	busy := len(s.active) > 0
	s.mu.Unlock()
	if busy {
		s.refused(hello.Conn.RemoteAddr())
		return nil, errBusy
	}
	return nil, nil
}

func (s *server) refused(addr net.Addr) {
	s.prog.Print(fmt.Sprintf("%s: refused %s: %v\n", s.name, addr, errBusy))
}

// announce prints where the server listens and how to reach it.
func (s *server) announce(addr, certFile, pin string) {
	name, e := s.name, s.e
	fmt.Fprintf(e.stderr, "%s: listening on %s (udp, mode %s)\n", name, addr, s.mode)
	connectAddr := addr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			connectAddr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	if certFile == "" {
		fmt.Fprintf(e.stderr, "%s: ephemeral self-signed certificate, pin: %s\n", name, pin)
		fmt.Fprintf(e.stderr, "%s: connect with: tlsgram connect -pin %s %s\n", name, pin, connectAddr)
	} else {
		fmt.Fprintf(e.stderr, "%s: certificate %s, SHA-256 fingerprint %s\n", name, certFile, pin)
	}
}

// server runs the accept loop and one goroutine per session.
type server struct {
	e    *env
	f    *cmdFlags
	name string
	mode string
	once bool
	ln   sessionListener
	prog *progress

	sent, received counter // all sessions together, for the progress line

	mu       sync.Mutex           // guards the fields up to the blank line
	active   map[session]struct{} // sessions being served
	stopping bool                 // no new sessions: shutting down
	firstErr error                // result of the first session, for -once
	served   int

	wg sync.WaitGroup
}

func (s *server) run(ctx context.Context) error {
	s.prog = startProgress(s.f.progressMode(s.mode == "stdio"), time.Duration(s.f.interval), s.e.stderr, func() progressSample {
		s.mu.Lock()
		n := len(s.active)
		var rtt time.Duration
		if n == 1 {
			for c := range s.active {
				if st, ok := statsOf(c); ok {
					rtt = st.SmoothedRTT
				}
			}
		}
		s.mu.Unlock()
		return progressSample{sent: s.sent.Load(), received: s.received.Load(), rtt: rtt, sessions: n, server: true}
	})
	prog := s.prog
	defer prog.Stop()

	stop := make(chan struct{})
	var stopOnce sync.Once
	shutdown := func() { stopOnce.Do(func() { close(stop) }) }
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		interrupted := false
		select {
		case <-ctx.Done():
			interrupted = true
		case <-stop:
		}
		s.mu.Lock()
		s.stopping = true
		open := make([]session, 0, len(s.active))
		for c := range s.active {
			open = append(open, c)
		}
		s.mu.Unlock()
		// Closing the listener ends Accept and aborts handshakes in
		// progress; sessions already accepted live on until closed here.
		s.ln.Close()
		if interrupted && len(open) > 0 {
			prog.Print(fmt.Sprintf("%s: interrupted, closing %s (Ctrl-C again to quit at once)\n",
				s.name, plural(len(open), "open session")))
		}
		if s.mode != "stdio" {
			// A stdio session closes itself on interrupt, more patiently
			// (see closeOnInterrupt).
			why := "the server is shutting down (-once)"
			if interrupted {
				why = "the server was interrupted"
			}
			if n := closeAll(open, shutdownGrace, why); n > 0 {
				prog.Print(fmt.Sprintf("%s: not waiting for %s whose peer did not acknowledge the close within %s\n",
					s.name, plural(n, "session"), shutdownGrace))
			}
		}
	}()

	var acceptErr error
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			if !s.stopping {
				acceptErr = err
			}
			s.mu.Unlock()
			break
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if s.mode == "stdio" && len(s.active) > 0 {
			// Two handshakes raced past refuseBusy: the first one owns
			// stdin and stdout.
			s.mu.Unlock()
			s.refused(c.RemoteAddr())
			c.Close()
			continue
		}
		s.active[c] = struct{}{}
		s.mu.Unlock()
		cs := c.ConnectionState()
		s.e.log.Debug("session accepted", "remote", c.RemoteAddr(), "cipher", cipherName(cs.CipherSuite),
			"server_name", cs.ServerName, "resumed", cs.DidResume, "alpn", cs.NegotiatedProtocol,
			"client_certificate", clientSubject(cs))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.serve(ctx, c)
			s.mu.Lock()
			delete(s.active, c)
			s.served++
			first := s.served == 1
			if first {
				s.firstErr = err
			}
			s.mu.Unlock()
			if s.once && first {
				shutdown()
			}
		}()
	}
	if acceptErr != nil {
		shutdown()
	}
	s.wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case acceptErr != nil:
		return fmt.Errorf("accept: %w", acceptErr)
	case s.once && s.served > 0 && s.firstErr != nil:
		// The session line said what went wrong.
		return &reportedError{s.firstErr}
	case s.once && ctx.Err() != nil:
		return &interruptedError{what: "no session was served"}
	}
	return nil
}

// shutdownGrace bounds how long a shutting-down server waits for its sessions' peers to
// acknowledge the close. A live peer does so within a round trip; a peer that is gone (a killed
// client whose session has not yet timed out) never does, and must not hold the shutdown for the
// whole Config.CloseTimeout.
const shutdownGrace = time.Second

// shutdownCode is the application close code a shutting-down server sends its clients, with the
// reason in words: the client prints "the peer closed the connection with application code 1:
// the server was interrupted" rather than a bare code.
const shutdownCode = 1

// closeAll closes sessions concurrently with shutdownCode and why: each close waits for the peer
// to acknowledge what was written, so one slow peer must not hold up the rest. It returns after
// at most grace, with the number of closes still waiting (they go on in the background until the
// process exits; every peer has been sent the end of the stream and the reason by then).
func closeAll(list []session, grace time.Duration, why string) (waiting int) {
	done := make(chan struct{}, len(list))
	for _, c := range list {
		go func() {
			c.CloseWithError(shutdownCode, why)
			done <- struct{}{}
		}()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	for n := len(list); n > 0; n-- {
		select {
		case <-done:
		case <-t.C:
			return n
		}
	}
	return 0
}

// serve handles one session and prints its summary.
func (s *server) serve(ctx context.Context, c session) error {
	start := time.Now()
	remote := c.RemoteAddr().String()
	var sent, received counter
	var err error
	switch s.mode {
	case "stdio":
		err = pipe(ctx, c, s.e.stdin, s.e.stdout, multiCounter{&sent, &s.sent}, multiCounter{&received, &s.received})
	case "echo":
		err = echo(c, multiCounter{&sent, &s.sent}, multiCounter{&received, &s.received})
	case "discard":
		err = discard(c, multiCounter{&received, &s.received})
	}
	if err != nil && !isInterrupted(err) && errors.Is(err, net.ErrClosed) {
		// Our own shutdown closed the session; say so rather than show
		// "use of closed network connection".
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			err = &interruptedError{what: "session closed"}
		case stopping:
			err = errors.New("closed: the server is shutting down (-once)")
		}
	}
	elapsed := time.Since(start)
	s.e.log.Debug("session ended", "remote", remote, "received", received.Load(), "sent", sent.Load(),
		"elapsed", elapsed, "err", err)
	if s.f.json {
		j := sessionToJSON(c, sent.Load(), received.Load(), elapsed, err, s.f.stats)
		j.ClientCert = clientSubject(c.ConnectionState())
		b, jerr := json.Marshal(j)
		if jerr != nil {
			return jerr
		}
		s.prog.Print(string(b) + "\n")
		return err
	}
	if s.mode != "stdio" || s.f.verbose || err != nil {
		line := fmt.Sprintf("%s: session %s: received %s, sent %s in %s", s.name, remote,
			formatBytes(received.Load()), formatBytes(sent.Load()), formatDuration(elapsed))
		if n := max(received.Load(), sent.Load()); n >= 64<<10 {
			line += ", " + formatRate(n, elapsed)
		}
		if err != nil {
			line += ": " + oneLine(explain(err))
		}
		s.prog.Print(line + "\n")
	}
	if s.f.stats {
		s.prog.Print(statsText("session "+remote, c))
	}
	return err
}

// clientSubject names the client's certificate, if it sent one.
func clientSubject(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.String()
}

func isInterrupted(err error) bool {
	var ie *interruptedError
	return errors.As(err, &ie)
}

// echo sends back what it receives; at the client's EOF it half-closes and
// closes, which waits until the echo is acknowledged.
func echo(c session, sent, received meter) error {
	_, err := io.Copy(writerOnly{countingWriter{c, sent}}, readerOnly{countingReader{c, received}})
	if err != nil {
		c.Close()
		return err
	}
	if err := c.CloseWrite(); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}

// discard reads everything; at the client's EOF it closes its side, so the
// client sees EOF too and knows everything arrived.
func discard(c session, received meter) error {
	_, err := io.Copy(io.Discard, readerOnly{countingReader{c, received}})
	if err != nil {
		c.Close()
		return err
	}
	if err := c.CloseWrite(); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}

type readerOnly struct{ io.Reader }

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}
