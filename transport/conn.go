package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/transport/internal/deadline"
)

// Conn is one TLS 1.3 session over UDP. It is a net.Conn: Read and Write carry the application
// bytes of the TLS connection; deadlines apply to them and a Read or Write that timed out leaves
// the Conn usable. Conns are created by Dial, DialPacketConn and Listener.Accept and are safe
// for concurrent use.
//
// Inside, crypto/tls runs over an in-memory adapter around the session core's byte stream
// (session.Conn). Datagrams move between the core and the socket, and the core's timers run, on
// the goroutines that have a reason to step it: the socket reader, a writer, a timer's callback,
// or a worker started while there is work (work.go); an idle Conn has no goroutine.
type Conn struct {
	ep      *endpoint
	conf    *Config
	network string
	remote  net.Addr
	peer    message // addressing template for datagrams to the peer
	tls     *tls.Conn
	bio     *bio

	mu            sync.Mutex    // guards core and the fields up to the blank line
	core          *session.Conn // not safe for concurrent use: every call holds mu
	handshakeDone bool          // SetHandshakeComplete was called
	corked        bool          // bio.Write collects TLS output in cork: see closeStream
	cork          []byte        // what TLS wrote while corked
	err           error         // the core's terminal error, once done is closed
	refusedICMP   bool          // refused closed the core: ICMP port unreachable during Dial
	armed         time.Time     // when timer fires; zero if it is stopped (see armLocked)

	// 1-slot signals sent to the waiters the core's events concern (wakeApp): readable for
	// Readable, writable and acked for Writable, all of them for Closed.
	// Each has at most one waiter at a time, so a buffered signal is never lost and never needs
	// a broadcast: crypto/tls reads the adapter under its input lock (readable), Writes hold
	// writeSem (writable), and only the first Close waits for acknowledgements (acked). A waiter
	// re-checks the core after every signal; a stale one costs a spurious check.
	readable, writable, acked chan struct{}
	datagrams                 chan struct{} // 1 slot, like readable: for ReceiveDatagram

	ids []uint64 // connection IDs this Conn is registered under; guarded by ep.mu

	// sendSem (1 slot) is held by whoever polls the core and hands the datagrams to the socket:
	// a step (the worker's, the socket reader's) or an inline send (work.go, inline.go). So
	// datagrams reach the socket in packet number order. Taken before mu, never while holding
	// it. A channel rather than a mutex, so that a worker waiting for it is durably blocked for
	// testing/synctest.
	sendSem chan struct{}
	timer   *time.Timer // runs onTimer at the core's next deadline; reset under mu (armLocked)
	work    workState   // whether a worker runs and what it must do (work.go)
	// Paths that change: see migrate.go.
	migrated  atomic.Pointer[endpoint] // the endpoint Migrate moved to; nil: ep
	remoteNow atomic.Pointer[net.Addr] // the peer's address since it moved; nil: remote
	noMigrate bool                     // the connection is finishing; guarded by mu

	tracer Tracer // nil unless Config.Tracer or TLSGRAM_QLOGDIR: see trace.go

	in        inbox         // datagrams from the socket reader, bounded
	closing   chan struct{} // closed by Close: pending and later Reads and Writes fail
	closeOnce sync.Once
	done      chan struct{} // closed when the core reports a terminal error (Done)
	finalSent chan struct{} // closed by a step once the core is closed and all it sent is out
	// finalSentOnce closes finalSent: a step on the worker or on the socket reader (inline.go).
	finalSentOnce sync.Once
	driverDone    chan struct{} // closed when the connection has finished (Conn.finish)
	writeSem      chan struct{} // 1 slot: one Write at a time, so a Write's bytes stay contiguous

	readDeadline  deadline.Deadline
	writeDeadline deadline.Deadline

	dropQueueFull atomic.Uint64
	sendErrors    atomic.Uint64
	steps         atomic.Uint64 // driver steps, for tests of how bursts are handled
	workers       atomic.Uint64 // workers started (Conn.drive), for tests of how long they live
}

func newConn(ep *endpoint, core *session.Conn, network string, peer message, remote net.Addr, conf *Config) *Conn {
	readable := make(chan struct{}, 1) // the read deadline signals it too: see bio.Read
	c := &Conn{
		ep:            ep,
		conf:          conf,
		network:       network,
		remote:        remote,
		peer:          message{ap: peer.ap, addr: peer.addr},
		core:          core,
		in:            inbox{limit: conf.InboundQueueLen, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)},
		readable:      readable,
		writable:      make(chan struct{}, 1),
		acked:         make(chan struct{}, 1),
		datagrams:     make(chan struct{}, 1),
		closing:       make(chan struct{}),
		done:          make(chan struct{}),
		finalSent:     make(chan struct{}),
		driverDone:    make(chan struct{}),
		writeSem:      make(chan struct{}, 1),
		readDeadline:  deadline.MakeNotify(readable),
		writeDeadline: deadline.Make(),
		sendSem:       make(chan struct{}, 1),
	}
	c.work.drive = c.drive
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	c.bio = &bio{c: c, closed: make(chan struct{})}
	return c
}

// Read reads application data. It returns io.EOF after the peer's TLS close_notify (or the end of
// its stream), a net.Error with Timeout() == true when the read deadline passes, and an error
// matching net.ErrClosed after Close.
func (c *Conn) Read(b []byte) (int, error) {
	if isClosedChan(c.closing) {
		return 0, c.opError("read", net.ErrClosed)
	}
	n, err := c.tls.Read(b)
	if err != nil && err != io.EOF {
		c.tlsFailed(err)
		err = c.opError("read", c.closedErr(err))
	}
	return n, err
}

// tlsFailed ends the session when TLS failed for good (an alert from the peer, a record that did
// not verify): crypto/tls will not read or write again, so there is nothing left to wait for, and
// the peer learns why from the CLOSE. Timeouts leave the Conn usable and are not failures.
func (c *Conn) tlsFailed(err error) {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return
	}
	if errors.Is(err, net.ErrClosed) || isClosedChan(c.closing) {
		return // the session ended, or our own Close is ending it gracefully
	}
	c.mu.Lock()
	if c.core.Err() == nil {
		c.core.Close(time.Now(), session.CodeTLS, err.Error())
		c.noteTerminatedLocked()
	}
	c.mu.Unlock()
	c.poke()
}

// Write writes application data. It blocks while the send buffer (Config.SendBuffer) is full,
// until the write deadline. It returns a net.Error with Timeout() == true when the deadline
// passes (n reports what was written; the Conn stays usable) and an error matching
// net.ErrClosed after Close.
func (c *Conn) Write(b []byte) (int, error) {
	// Take the write lock without a three-way select when it is free, as it is unless Writes
	// overlap: the checks below see the deadline and Close then.
	select {
	case c.writeSem <- struct{}{}:
	default:
		select {
		case c.writeSem <- struct{}{}:
		case <-c.writeDeadline.Wait():
			return 0, c.opError("write", errTimeout)
		case <-c.closing:
			return 0, c.opError("write", net.ErrClosed)
		}
	}
	defer func() { <-c.writeSem }()
	if c.writeDeadline.Expired() {
		return 0, c.opError("write", errTimeout)
	}
	if isClosedChan(c.closing) {
		return 0, c.opError("write", net.ErrClosed)
	}

	// crypto/tls makes any error of the underlying Write permanent, so the adapter's Write must
	// never fail or block. Flow control therefore happens here, above TLS: wait until the core
	// has room, then give TLS at most that much, which the adapter hands to the core at once.
	// A chunk is one TLS record at most, so records are not split by a small window.
	const maxChunk = 16 << 10
	n := 0
	for len(b) > 0 {
		want := min(len(b), maxChunk)
		c.mu.Lock()
		if err := c.core.Err(); err != nil {
			c.mu.Unlock()
			return n, c.opError("write", err)
		}
		space := c.core.SendSpace()
		if space >= want || (space > 0 && space >= c.conf.SendBuffer/2) {
			c.mu.Unlock()
			if testHookWriteChunk != nil {
				testHookWriteChunk(c)
			}
			chunk := b[:min(len(b), space, maxChunk)]
			m, err := c.tls.Write(chunk)
			n += m
			b = b[m:]
			if err != nil {
				return n, c.opError("write", c.closedErr(err))
			}
			continue
		}
		c.mu.Unlock()
		select {
		case <-c.writable:
		case <-c.writeDeadline.Wait():
			return n, c.opError("write", errTimeout)
		case <-c.closing:
			return n, c.opError("write", net.ErrClosed)
		}
	}
	return n, nil
}

// testHookWriteChunk, if set, runs in Write right before a chunk goes to TLS. Tests use it to
// hold a Write there while Close runs.
var testHookWriteChunk func(*Conn)

// closedErr reports net.ErrClosed for errors that are a consequence of our own Close.
func (c *Conn) closedErr(err error) error {
	if isClosedChan(c.closing) && !errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// CloseWrite ends the sending direction: it sends the TLS close_notify alert (a TLS 1.3
// half-close, RFC 8446 §6.1) and the end of the stream, in the same packet. The peer's Read
// returns io.EOF once it has read everything before it; this side can still Read. Writes fail
// afterwards.
func (c *Conn) CloseWrite() error {
	if isClosedChan(c.closing) {
		return c.opError("close", net.ErrClosed)
	}
	select {
	case c.writeSem <- struct{}{}:
	case <-c.closing:
		return c.opError("close", net.ErrClosed)
	}
	defer func() { <-c.writeSem }()
	return c.opError("close", c.closeStream())
}

// closeStream has TLS send close_notify and ends the core's stream right behind it. The caller
// holds writeSem, so no Write is in progress.
//
// The two must reach the core together: if the driver polled in between, close_notify would
// leave without the FIN, and a peer that closes as soon as its Read returns io.EOF (on
// close_notify) might never acknowledge a FIN that follows in a packet of its own, failing our
// Close with ErrNotAcknowledged. So the adapter is corked while TLS writes: what TLS writes
// then (close_notify, or in theory a KeyUpdate racing with it from a Read) is collected, and
// handed to the core with the FIN under one acquisition of mu.
func (c *Conn) closeStream() error {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
	err := c.tls.CloseWrite() // an error means close_notify was sent before, or failed then
	if testHookCloseNotifySent != nil {
		testHookCloseNotifySent(c)
	}
	c.mu.Lock()
	c.corked = false
	if len(c.cork) > 0 {
		// Fails only if the core has closed meanwhile; then there is nobody to tell.
		_, _ = c.core.Write(c.cork)
		c.cork = c.cork[:0]
	}
	c.core.CloseWrite()
	c.mu.Unlock()
	c.stepHere()
	return err
}

// testHookCloseNotifySent, if set, runs right after TLS wrote close_notify, before the end of
// the stream is queued behind it. Tests use it to let the driver run at that moment.
var testHookCloseNotifySent func(*Conn)

// Close closes the connection gracefully: pending Reads and Writes return at once (with errors
// matching net.ErrClosed), then Close sends the TLS close_notify and the end of the stream and
// waits, at most Config.CloseTimeout, until the peer has acknowledged everything. Then it sends
// the CLOSE frame, which also acknowledges everything received, and returns once that datagram
// has been handed to the socket (waiting at most a second for that), so the process may exit
// right after Close. It returns nil if every byte written reached the peer, an error matching
// ErrNotAcknowledged otherwise. The connection's closing period (RFC 9000 §10.2), in which it
// answers the peer's stray packets, runs on in the background while the process lives.
func (c *Conn) Close() error { return c.close(nil) }

// close is Close, and CloseWithError when app is not nil: then no close_notify and no end of
// stream are sent, and the CLOSE frame carries app's code and reason.
func (c *Conn) close(app *session.ApplicationError) error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closing)
		notify(c.readable) // a Read waiting in bio.Read
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	c.readDeadline.Stop()
	c.writeDeadline.Stop()

	// Wait for a Write past its checks (closing makes any other return): its bytes count as
	// written, so they must be in the core before we look at what was acknowledged, and they
	// must precede close_notify.
	c.writeSem <- struct{}{}
	c.mu.Lock()
	appAcked := c.core.AllAcked() // everything Write accepted has arrived
	alive := c.core.Err() == nil
	hs := c.handshakeDone
	c.mu.Unlock()
	if alive && hs && app == nil {
		_ = c.closeStream()
	}
	<-c.writeSem
	if alive && hs {
		c.waitAcked()
	}

	c.mu.Lock()
	acked := c.core.AllAcked()
	cause := c.core.Err()
	if app != nil {
		c.core.CloseApplication(time.Now(), app.Code, app.Reason)
	} else {
		c.core.Close(time.Now(), session.CodeNoError, "")
	}
	c.noteTerminatedLocked()
	c.mu.Unlock()
	c.stepHere()
	c.bio.close()
	c.waitFinalSent()

	if acked || appAcked {
		return nil
	}
	if cause != nil {
		return c.opError("close", errors.Join(ErrNotAcknowledged, cause))
	}
	return c.opError("close", ErrNotAcknowledged)
}

// finalSendTimeout bounds how long Close waits for the driver to hand the CLOSE datagram to the
// socket: a socket write does not block for long, but a full send buffer must not hang Close.
const finalSendTimeout = time.Second

// waitFinalSent blocks until the driver has sent everything the closed core had to send (its
// CLOSE frame), or has stopped, or finalSendTimeout has passed.
func (c *Conn) waitFinalSent() {
	t := time.NewTimer(finalSendTimeout)
	defer t.Stop()
	select {
	case <-c.finalSent:
	case <-t.C:
	}
}

// waitAcked blocks until the peer acknowledged everything sent, the core failed, or
// CloseTimeout passed.
func (c *Conn) waitAcked() {
	t := time.NewTimer(c.conf.CloseTimeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		if c.core.AllAcked() || c.core.Err() != nil {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		select {
		case <-c.acked:
		case <-t.C:
			return
		}
	}
}

// Done returns a channel that is closed when the connection has ended, for whatever reason:
// Close, the peer's CLOSE, the idle timeout, a protocol violation, a failed socket. It lets an
// application that is not blocked in Read or Write learn that an idle connection ended (select
// on it next to its own channels). Data that arrived before the end can still be read.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, and why it ended once Done is closed: a
// *session.CloseError for a CLOSE frame sent (by Close, or after a protocol violation or a
// socket failure; Remote == false) or received (the peer closed; Remote == true, Code is the
// peer's), or a *session.TimeoutError (a net.Error with Timeout() == true) for the idle
// timeout. Every such error matches net.ErrClosed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// noteTerminatedLocked closes done once the core has a terminal error. Everything that can
// end the core calls it: the driver after every step, Close, abort and fail.
func (c *Conn) noteTerminatedLocked() {
	if c.err != nil {
		return
	}
	if err := c.core.Err(); err != nil {
		c.err = err
		close(c.done)
		c.traceLocked(session.TraceClosed, err)
	}
}

// abort tears the connection down without the graceful part of Close: a failed handshake, a
// listener that closes, a dial that is cancelled.
func (c *Conn) abort(code uint64, reason string) {
	c.closeOnce.Do(func() {
		close(c.closing)
		notify(c.readable) // a Read waiting in bio.Read
	})
	c.mu.Lock()
	c.core.Close(time.Now(), code, reason)
	c.noteTerminatedLocked()
	c.mu.Unlock()
	c.poke()
	c.bio.close()
	c.readDeadline.Stop()
	c.writeDeadline.Stop()
}

// terminate aborts the connection and finishes it at once, skipping the closing period
// (RFC 9000 §10.2 lets an endpoint that has nothing more to hear from the peer discard state),
// and waits until it has finished and, for a dialed Conn, the socket reader has ended. Dial uses
// it so that a failed dial leaves nothing behind.
func (c *Conn) terminate(code uint64, reason string) {
	c.abort(code, reason)
	c.kick(workStop)
	<-c.driverDone
	if ep := c.endpoint(); ep.single {
		<-ep.readerDone
	}
}

// fail ends the connection because its socket failed.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	c.core.Close(time.Now(), session.CodeInternal, "socket: "+err.Error())
	c.noteTerminatedLocked()
	c.mu.Unlock()
	c.poke()
}

// LocalAddr returns the local address of the socket.
func (c *Conn) LocalAddr() net.Addr { return c.endpoint().sock.pc.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr {
	if a := c.remoteNow.Load(); a != nil {
		return *a
	}
	return c.remote
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.readDeadline.Set(t)
	c.writeDeadline.Set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads; zero means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.readDeadline.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes; zero means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.writeDeadline.Set(t)
	return nil
}

// ConnectionState returns the TLS connection state (version, cipher suite, peer certificates,
// ALPN protocol, exporter).
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// setHandshakeComplete tells the core that TLS finished, which stops its handshake timer, and
// gives it the packet authentication key both ends derive from the TLS session
// (header/README.md §11): from then on forged datagrams cannot reach TLS.
func (c *Conn) setHandshakeComplete() {
	state := c.tls.ConnectionState()
	c.mu.Lock()
	keyContext := c.core.PacketKeyContext()
	c.mu.Unlock()
	key, err := state.ExportKeyingMaterial(session.PacketKeyLabel, keyContext, session.PacketKeyLen)
	c.mu.Lock()
	if err == nil {
		err = c.core.InstallPacketKey(key)
	}
	if err == nil {
		// Datagrams are encrypted under a key of their own (session/datagram.go).
		key, err = state.ExportKeyingMaterial(session.DatagramKeyLabel, nil, session.PacketKeyLen)
		if err == nil {
			err = c.core.InstallDatagramKey(key)
		}
	}
	if err != nil {
		// Cannot happen with TLS 1.3; without a key the session would still work, CRC only, but
		// both ends must agree, so give up rather than guess.
		c.core.Close(time.Now(), session.CodeInternal, "packet key: "+err.Error())
	}
	now := time.Now()
	c.core.SetHandshakeComplete(now)
	c.handshakeDone = true
	c.in.established.Store(true)
	c.issueConnIDsLocked()
	c.traceLocked(session.TraceHandshakeDone, nil)
	if c.core.IsClient() && err == nil {
		// What the completion queued (connection IDs, the receive window) waits, at most
		// completionHold, for the application's first Write to carry it (mayInlineLocked).
		next := now.Add(completionHold)
		if t := c.core.NextTimeout(); !t.IsZero() && t.Before(next) {
			next = t
		}
		c.armLocked(next)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.poke()
}

// completionHold bounds how long the control frames a client's handshake completion queued wait
// for a datagram to ride in: Dial returns to an application that usually writes at once, and the
// first Write's datagram carries them (mayInlineLocked). Sent by a worker started at completion,
// as they were, they cost a goroutine and a datagram of their own per Dial (issue 8). Nothing
// waits for them: they are the spare connection IDs for a migration and the receive window's
// update, and the server's own frames do not depend on them. An ACK the core has due sooner keeps
// its deadline. As the held ACK's (session/ackhold.go), 1 ms.
const completionHold = time.Millisecond

// openWindow gives an accepted connection its configured receive window: until Accept returned
// it, it kept the handshake's (session.Conn.HoldReceiveWindow).
func (c *Conn) openWindow() {
	c.mu.Lock()
	c.core.HoldReceiveWindow(false, time.Now())
	c.mu.Unlock()
	c.poke()
}

// bio is the net.Conn that crypto/tls reads and writes: an adapter around the core's in-memory
// stream, the Go analog of an OpenSSL memory BIO. Its Write never blocks and never fails while
// the core is open (flow control happens above TLS, in Conn.Write). Its Read blocks until the
// core has stream data, the end of the stream, a terminal error, or the read deadline, which it
// reports as a temporary net.Error so crypto/tls keeps the connection usable.
type bio struct {
	c         *Conn
	closeOnce sync.Once
	closed    chan struct{} // closed by Close: crypto/tls calls it when a handshake context ends
}

func (a *bio) Read(p []byte) (int, error) {
	c := a.c
	for {
		c.mu.Lock()
		n, err := c.core.Read(p)
		if n > 0 || err != nil {
			// Reading may have made a MAX_DATA due: the core says so (ShouldSend).
			ev := c.core.TakeEvents()
			c.mu.Unlock()
			c.wakeFor(ev)
			return n, err
		}
		if err := c.core.Err(); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		// Reading nothing may have released an ACK the core held for a reply (session.ackHold).
		ev := c.core.TakeEvents()
		c.mu.Unlock()
		c.wakeFor(ev)
		// One channel to wait on rather than a select over four: besides the core's events,
		// the read deadline (deadline.MakeNotify), Close and abort (closing) and a.close
		// signal readable after the state they change, which is checked here after every
		// token. (A select over four channels locked all four on every wait, on the path of
		// every request/response.)
		if c.readDeadline.Expired() {
			return 0, errTimeout
		}
		if isClosedChan(c.closing) || isClosedChan(a.closed) {
			return 0, net.ErrClosed
		}
		<-c.readable
		if c.readDeadline.Expired() {
			return 0, errTimeout
		}
		if isClosedChan(c.closing) || isClosedChan(a.closed) {
			return 0, net.ErrClosed
		}
	}
}

func (a *bio) Write(p []byte) (int, error) {
	c := a.c
	c.mu.Lock()
	if c.corked {
		// closeStream hands this to the core together with the FIN. TLS reuses p: copy it.
		c.cork = append(c.cork, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	inline := c.mayInlineLocked(len(p))
	n, err := c.core.Write(p)
	if err == nil && inline {
		c.mu.Unlock()
		if !c.sendInline() { // it takes the core's events
			c.poke()
		}
		return n, nil
	}
	ev := c.core.TakeEvents()
	c.mu.Unlock()
	c.wakeFor(ev)
	return n, err
}

func (a *bio) close() {
	a.closeOnce.Do(func() {
		close(a.closed)
		notify(a.c.readable) // a Read waiting in Read
	})
}

// Close is called by crypto/tls when a handshake's context is done; it unblocks Read. The
// session itself is torn down by the transport.
func (a *bio) Close() error {
	a.close()
	return nil
}

func (a *bio) LocalAddr() net.Addr                { return a.c.LocalAddr() }
func (a *bio) RemoteAddr() net.Addr               { return a.c.RemoteAddr() }
func (a *bio) SetDeadline(t time.Time) error      { return nil }
func (a *bio) SetReadDeadline(t time.Time) error  { return nil }
func (a *bio) SetWriteDeadline(t time.Time) error { return nil }
