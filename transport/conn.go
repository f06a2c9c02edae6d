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
)

// sendBatch is how many datagrams a driver polls from the core before it hands them to the
// socket in one batch write.
const sendBatch = 32

// inboundBurst is how many queued datagrams a driver feeds the core before it polls for output,
// so that a burst of arrivals is answered by one ACK rather than one per datagram.
const inboundBurst = 64

// Conn is one TLS 1.3 session over UDP. It is a net.Conn: Read and Write carry the application
// bytes of the TLS connection; deadlines apply to them and a Read or Write that timed out leaves
// the Conn usable. Conns are created by Dial, DialPacketConn and Listener.Accept and are safe
// for concurrent use.
//
// Inside, crypto/tls runs over an in-memory adapter around the session core's byte stream
// (session.Conn), and one driver goroutine moves datagrams between the core and the socket and
// runs the core's timers.
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

	// 1-slot signals the driver sends after every step (the core's state may have changed).
	// Each has at most one waiter at a time, so a buffered signal is never lost and never needs
	// a broadcast: crypto/tls reads the adapter under its input lock (readable), Writes hold
	// writeSem (writable), and only the first Close waits for acknowledgements (acked). A waiter
	// re-checks the core after every signal; a stale one costs a spurious check.
	readable, writable, acked chan struct{}

	ids []uint64 // connection IDs this Conn is registered under; guarded by ep.mu

	inbound    chan *packetBuf // datagrams from the socket reader, bounded
	wake       chan struct{}   // 1 slot: the application did something the core should act on
	closing    chan struct{}   // closed by Close: pending and later Reads and Writes fail
	closeOnce  sync.Once
	stop       chan struct{} // closed by terminate: the driver sends what is due and returns
	stopOnce   sync.Once
	driverDone chan struct{} // closed when the driver goroutine has returned
	writeSem   chan struct{} // 1 slot: one Write at a time, so a Write's bytes stay contiguous

	readDeadline  deadline
	writeDeadline deadline

	dropQueueFull atomic.Uint64
	sendErrors    atomic.Uint64
}

func newConn(ep *endpoint, core *session.Conn, network string, peer message, remote net.Addr, conf *Config) *Conn {
	c := &Conn{
		ep:            ep,
		conf:          conf,
		network:       network,
		remote:        remote,
		peer:          message{ap: peer.ap, addr: peer.addr},
		core:          core,
		inbound:       make(chan *packetBuf, conf.InboundQueueLen),
		readable:      make(chan struct{}, 1),
		writable:      make(chan struct{}, 1),
		acked:         make(chan struct{}, 1),
		wake:          make(chan struct{}, 1),
		closing:       make(chan struct{}),
		stop:          make(chan struct{}),
		driverDone:    make(chan struct{}),
		writeSem:      make(chan struct{}, 1),
		readDeadline:  makeDeadline(),
		writeDeadline: makeDeadline(),
	}
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
		err = c.opError("read", c.closedErr(err))
	}
	return n, err
}

// Write writes application data. It blocks while the send buffer (Config.SendBuffer) is full,
// until the write deadline. It returns a net.Error with Timeout() == true when the deadline
// passes (n reports what was written; the Conn stays usable) and an error matching
// net.ErrClosed after Close.
func (c *Conn) Write(b []byte) (int, error) {
	select {
	case c.writeSem <- struct{}{}:
	case <-c.writeDeadline.wait():
		return 0, c.opError("write", errTimeout)
	case <-c.closing:
		return 0, c.opError("write", net.ErrClosed)
	}
	defer func() { <-c.writeSem }()
	if c.writeDeadline.expired() {
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
		case <-c.writeDeadline.wait():
			return n, c.opError("write", errTimeout)
		case <-c.closing:
			return n, c.opError("write", net.ErrClosed)
		}
	}
	return n, nil
}

// closedErr reports net.ErrClosed for errors that are a consequence of our own Close.
func (c *Conn) closedErr(err error) error {
	if isClosedChan(c.closing) && !errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// CloseWrite ends the sending direction: it sends the TLS close_notify alert (a TLS 1.3
// half-close, RFC 8446 §6.1) and then the end of the stream. The peer's Read returns io.EOF once
// it has read everything before it; this side can still Read. Writes fail afterwards.
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
	err := c.tls.CloseWrite()
	c.mu.Lock()
	c.core.CloseWrite()
	c.mu.Unlock()
	c.poke()
	return c.opError("close", err)
}

// Close closes the connection gracefully: pending Reads and Writes return at once (with errors
// matching net.ErrClosed), then Close sends the TLS close_notify and the end of the stream and
// waits, at most Config.CloseTimeout, until the peer has acknowledged everything. It returns nil
// if every byte written reached the peer, an error matching ErrNotAcknowledged otherwise. The
// connection's CLOSE frame and its closing period (RFC 9000 §10.2) run on in the background.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closing)
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	c.readDeadline.stop()
	c.writeDeadline.stop()

	c.mu.Lock()
	appAcked := c.core.AllAcked() // everything Write accepted so far has arrived
	alive := c.core.Err() == nil
	hs := c.handshakeDone
	c.mu.Unlock()

	if alive && hs {
		// Wait for a Write still inside tls.Write, so its bytes precede close_notify.
		c.writeSem <- struct{}{}
		_ = c.tls.CloseWrite() // an error here means close_notify was sent before (CloseWrite)
		<-c.writeSem
		c.mu.Lock()
		c.core.CloseWrite()
		c.mu.Unlock()
		c.poke()
		c.waitAcked()
	}

	c.mu.Lock()
	acked := c.core.AllAcked()
	cause := c.core.Err()
	c.core.Close(time.Now(), session.CodeNoError, "")
	c.mu.Unlock()
	c.poke()
	c.bio.close()

	if acked || appAcked {
		return nil
	}
	if cause != nil {
		return c.opError("close", errors.Join(ErrNotAcknowledged, cause))
	}
	return c.opError("close", ErrNotAcknowledged)
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

// abort tears the connection down without the graceful part of Close: a failed handshake, a
// listener that closes, a dial that is cancelled.
func (c *Conn) abort(code uint64, reason string) {
	c.closeOnce.Do(func() { close(c.closing) })
	c.mu.Lock()
	c.core.Close(time.Now(), code, reason)
	c.mu.Unlock()
	c.poke()
	c.bio.close()
	c.readDeadline.stop()
	c.writeDeadline.stop()
}

// terminate aborts the connection and stops its driver at once, skipping the closing period
// (RFC 9000 §10.2 lets an endpoint that has nothing more to hear from the peer discard state),
// and waits until the driver and, for a dialed Conn, the socket reader have ended. Dial uses it
// so that a failed dial leaves nothing behind.
func (c *Conn) terminate(code uint64, reason string) {
	c.abort(code, reason)
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.driverDone
	if c.ep.ln == nil {
		<-c.ep.readerDone
	}
}

// fail ends the connection because its socket failed.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	c.core.Close(time.Now(), session.CodeInternal, "socket: "+err.Error())
	c.mu.Unlock()
	c.poke()
}

// LocalAddr returns the local address of the socket.
func (c *Conn) LocalAddr() net.Addr { return c.ep.sock.pc.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads; zero means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes; zero means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if isClosedChan(c.closing) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.writeDeadline.set(t)
	return nil
}

// ConnectionState returns the TLS connection state (version, cipher suite, peer certificates,
// ALPN protocol, exporter).
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// signal wakes the reader, writer and closer waiting for the core, if any.
func (c *Conn) signal() {
	for _, ch := range [...]chan struct{}{c.readable, c.writable, c.acked} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// poke tells the driver that the application changed something (wrote, read, closed).
func (c *Conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver queues a datagram for the driver; it reports false (and counts a drop) when the queue
// is full. Called by the socket reader.
func (c *Conn) deliver(pb *packetBuf) bool {
	select {
	case c.inbound <- pb:
		return true
	default:
		c.dropQueueFull.Add(1)
		return false
	}
}

// setHandshakeComplete tells the core that TLS finished, which stops its handshake timer.
func (c *Conn) setHandshakeComplete() {
	c.mu.Lock()
	c.core.SetHandshakeComplete(time.Now())
	c.handshakeDone = true
	c.mu.Unlock()
	c.poke()
}

// run is the driver goroutine: it feeds received datagrams and timer expiries to the core, sends
// what the core produces, and wakes Reads and Writes waiting for the core. It returns when the
// core is done (closed and its closing period over).
func (c *Conn) run() {
	defer c.finish()
	w := c.ep.sock.newWriter()
	batch := make([]message, sendBatch)
	for i := range batch {
		batch[i] = c.peer
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case pb := <-c.inbound:
			now := time.Now()
			c.mu.Lock()
			c.core.HandleDatagram(now, pb.bytes())
			c.ep.recvPool.put(pb)
			c.drainInboundLocked(now)
		case <-c.wake:
			c.mu.Lock()
		case <-timer.C:
			c.mu.Lock()
		case <-c.stop:
			c.mu.Lock()
			c.flushLocked(time.Now(), w, batch)
			c.mu.Unlock()
			return
		}
		now := time.Now()
		if next := c.core.NextTimeout(); !next.IsZero() && !now.Before(next) {
			c.core.HandleTimeout(now)
		}
		c.signal()
		c.flushLocked(now, w, batch)
		c.signal()
		if c.core.Done() {
			c.mu.Unlock()
			return
		}
		next := c.core.NextTimeout()
		c.mu.Unlock()
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
	}
}

func (c *Conn) drainInboundLocked(now time.Time) {
	for range inboundBurst {
		select {
		case pb := <-c.inbound:
			c.core.HandleDatagram(now, pb.bytes())
			c.ep.recvPool.put(pb)
		default:
			return
		}
	}
}

// flushLocked sends every datagram the core has for now, in batches, with mu released during
// each socket write so the application can keep going.
func (c *Conn) flushLocked(now time.Time, w batchWriter, batch []message) {
	for {
		n := 0
		for n < len(batch) {
			pb := c.ep.sendPool.get()
			k, ok := c.core.PollDatagram(now, pb.b)
			if !ok {
				c.ep.sendPool.put(pb)
				break
			}
			pb.n = k
			batch[n].buf = pb
			n++
		}
		if n == 0 {
			return
		}
		c.mu.Unlock()
		if err := w.writeBatch(batch[:n]); err != nil {
			c.sendErrors.Add(1)
		}
		for i := range n {
			c.ep.sendPool.put(batch[i].buf)
			batch[i].buf = nil
		}
		c.mu.Lock()
		if n < len(batch) {
			return
		}
		now = time.Now()
	}
}

// finish runs when the driver returns.
func (c *Conn) finish() {
	c.ep.release(c)
	for {
		select {
		case pb := <-c.inbound:
			c.ep.recvPool.put(pb)
			continue
		default:
		}
		break
	}
	c.signal()
	c.readDeadline.stop()
	c.writeDeadline.stop()
	close(c.driverDone)
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
			c.mu.Unlock()
			if n > 0 {
				c.poke() // reading frees receive window: the core may owe the peer a MAX_DATA
			}
			return n, err
		}
		if err := c.core.Err(); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		select {
		case <-c.readable:
		case <-c.readDeadline.wait():
			return 0, errTimeout
		case <-c.closing:
			return 0, net.ErrClosed
		case <-a.closed:
			return 0, net.ErrClosed
		}
	}
}

func (a *bio) Write(p []byte) (int, error) {
	c := a.c
	c.mu.Lock()
	n, err := c.core.Write(p)
	c.mu.Unlock()
	c.poke()
	return n, err
}

func (a *bio) close() {
	a.closeOnce.Do(func() { close(a.closed) })
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
