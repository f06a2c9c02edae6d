package main

import (
	"context"
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

On start, stderr gets a line "listening on ADDR" (the real port with
-listen HOST:0) and, for an ephemeral certificate, "pin: SHA256".

Ctrl-C closes open sessions properly; a second Ctrl-C exits at once.`

func runServe(ctx context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "[-listen ADDR] [-cert FILE -key FILE] [-mode stdio|echo|discard] [-once]", serveDescription, true)
	listen := f.String("listen", "127.0.0.1:4433", "UDP `address` to listen on (port 0: any free port)")
	certFile := f.String("cert", "", "server certificate `file` (PEM; may hold the chain)")
	keyFile := f.String("key", "", "server private key `file` (PEM)")
	mode := f.String("mode", "stdio", "what to do with sessions, the `mode`: stdio, echo or discard")
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
	ln, err := listenSessions(*listen, tlsConf, so.config())
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *listen, err)
	}
	addr := ln.Addr().String()
	fmt.Fprintf(e.stderr, "%s: listening on %s (udp, mode %s)\n", name, addr, *mode)
	connectAddr := addr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			connectAddr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	if *certFile == "" {
		fmt.Fprintf(e.stderr, "%s: ephemeral self-signed certificate, pin: %s\n", name, pin)
		fmt.Fprintf(e.stderr, "%s: connect with: tlsgram connect -pin %s %s\n", name, pin, connectAddr)
	} else {
		fmt.Fprintf(e.stderr, "%s: certificate %s, SHA-256 fingerprint %s\n", name, *certFile, pin)
	}

	srv := &server{e: e, f: f, name: name, mode: *mode, once: *once || *mode == "stdio",
		ln: ln, active: make(map[session]struct{})}
	return srv.run(ctx)
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
	// listenerClosed: stdio mode closed the listener after its session.
	listenerClosed bool
	firstErr       error // result of the first session, for -once
	served         int

	wg sync.WaitGroup
}

func (s *server) run(ctx context.Context) error {
	s.prog = startProgress(s.f.showProgress(s.mode == "stdio"), s.e.stderr, func() progressSample {
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
			closeAll(open)
		}
	}()

	var acceptErr error
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			if !s.stopping && !s.listenerClosed {
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
		s.active[c] = struct{}{}
		if s.mode == "stdio" {
			// One session owns stdin and stdout. Later clients get no
			// answer (their handshake times out) rather than a session
			// that ends at once and looks like success.
			s.listenerClosed = true
			s.ln.Close()
		}
		s.mu.Unlock()
		cs := c.ConnectionState()
		s.e.log.Debug("session accepted", "remote", c.RemoteAddr(), "cipher", cipherName(cs.CipherSuite),
			"server_name", cs.ServerName, "resumed", cs.DidResume)
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

// closeAll closes sessions concurrently: each Close waits for the peer to
// acknowledge what was written, so one slow peer must not hold up the rest.
func closeAll(list []session) {
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
		}()
	}
	wg.Wait()
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
