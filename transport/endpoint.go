package transport

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlsgram/tlsgram/header"
)

// endpoint owns one UDP socket and the goroutine reading it. It routes each datagram by the
// destination connection ID it carries (header.PeekDstConnID) to the connection that chose that
// ID, or, for a listener, to the code that admits new clients. A dialed Conn has an endpoint of
// its own; a Listener's endpoint is shared by all its connections.
//
// Lifetime: the socket is closed when the endpoint is closing (its listener was closed, or it
// belongs to a dialed Conn) and the last connection is released.
type endpoint struct {
	sock     *socket
	conf     *Config // resolved defaults
	recvPool *bufPool
	sendPool *bufPool
	// states recycles the *driverState of steps on this socket (tryLockSend, Conn.drive): a connection holds
	// one only while it steps or sends.
	states sync.Pool

	mu      sync.Mutex       // guards the fields below
	conns   map[uint64]*Conn // by every connection ID a conn is known under
	ln      *Listener        // nil for a dialed Conn's endpoint
	closing bool             // no new connections; close the socket with the last one
	closed  bool             // the socket was closed

	readerDone chan struct{}
	readErr    error // why the reader stopped, set before readerDone is closed
	// parked: the reader ended while the socket was quiet, and readerPoller starts another
	// when a datagram comes (park_linux.go). parkToken names the socket's registration with
	// readerPoller (0: none). Both guarded by mu.
	parked    bool
	parkToken uint64
	parkArmed bool // readerPoller watches the socket for a parked reader; guarded by readerPoller.mu

	// single: the endpoint is one dialled connection's, and ends with it. Set before start.
	single bool
	// refuseFast: the socket is a connected UDP socket Dial opened for one connection, on which
	// the kernel reports ICMP port unreachable as ECONNREFUSED. Set before start.
	refuseFast bool
	heard      atomic.Bool   // a datagram was received on the socket
	icmpErrors atomic.Uint64 // ICMP errors the kernel reported on reads and writes

	rcvBuf, sndBuf int // kernel socket buffers granted, 0 if unknown

	// batch is how many datagrams one read takes at most: maxBatch for a listener's socket, which
	// serves many connections, dialBatch for a dialed connection's own, whose reader holds that
	// many receive buffers for as long as the connection lives.
	batch int

	// Datagrams the reader dropped before any connection saw them.
	dropMalformed  atomic.Uint64 // too short or fixed bit clear
	dropTruncated  atomic.Uint64 // larger than the receive buffer
	dropUnknownCID atomic.Uint64 // no connection has this ID and it cannot start one
}

// newEndpoint sets up the endpoint of socket pc: a dialled connection's own (dialled), or a
// listener's. setBuffers sizes the kernel's socket buffers (Config.SocketBuffer).
func newEndpoint(pc net.PacketConn, conf *Config, setBuffers, dialled bool, family int) *endpoint {
	// UDP GRO reads need 64 KiB buffers: a listener's socket has them from the start, a
	// dialled one, most of which never receive in bulk, only once it does (see mmsgReader).
	gro, batch := groNow, maxBatch
	if dialled {
		gro, batch = groLazy, min(dialBatch, maxBatch)
	}
	if conf.DisableGRO {
		gro = groOff
	}
	ep := &endpoint{
		sock:       newSocket(pc, conf.DisableGSO, gro, family),
		conf:       conf,
		recvPool:   sharedBufPool(conf.recvBufSize()),
		sendPool:   sharedBufPool(conf.MaxDatagramSize),
		conns:      make(map[uint64]*Conn),
		readerDone: make(chan struct{}),
		batch:      batch,
	}
	switch {
	case ep.sock.udp == nil:
	case setBuffers:
		var calls int
		ep.rcvBuf, ep.sndBuf, calls = tuneSocket(ep.sock.udp, conf.SocketBuffer, !conf.DisablePathMTUDiscovery, ep.sock.family)
		ep.sock.setupCalls += calls
	default: // a caller's socket is left alone; only its sizes are read
		ep.rcvBuf, ep.sndBuf = socketBuffers(ep.sock.udp)
		ep.sock.setupCalls += 2
	}
	return ep
}

// start runs the reader goroutine.
func (ep *endpoint) start() { go ep.readLoop() }

// newConnIDLocked returns a random connection ID that no connection of ep uses. Must hold ep.mu.
func (ep *endpoint) newConnIDLocked() uint64 {
	for {
		id := randomConnID()
		if _, ok := ep.conns[id]; !ok && id != 0 {
			return id
		}
	}
}

func randomConnID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return binary.LittleEndian.Uint64(b[:])
}

// registerLocked makes datagrams carrying any of ids go to c. It fails once the endpoint is closing
// or an ID is taken.
func (ep *endpoint) registerLocked(c *Conn, ids ...uint64) bool {
	if ep.closed {
		return false
	}
	for _, id := range ids {
		if _, ok := ep.conns[id]; ok {
			return false
		}
	}
	for _, id := range ids {
		ep.conns[id] = c
	}
	c.ids = append(c.ids, ids...)
	return true
}

// release forgets c (its driver has stopped) and closes the socket if c was the last
// connection of a closing endpoint.
func (ep *endpoint) release(c *Conn) {
	ep.mu.Lock()
	for _, id := range c.ids {
		if ep.conns[id] == c {
			delete(ep.conns, id)
		}
	}
	closeSock := ep.closeIfIdleLocked()
	ln := ep.ln
	ep.mu.Unlock()
	if closeSock {
		ep.closeSocket()
	}
	if ln != nil {
		ln.releaseSlot(c)
	}
}

// shutdown marks the endpoint closing: the socket is closed as soon as no connection uses it.
func (ep *endpoint) shutdown() {
	ep.mu.Lock()
	ep.closing = true
	closeSock := ep.closeIfIdleLocked()
	ep.mu.Unlock()
	if closeSock {
		ep.closeSocket()
	}
}

// closeIfIdleLocked marks the endpoint closed if it is closing and no connection is left, and
// reports whether it did: then the caller closes the socket (closeSocket) once it has let go of
// mu.
func (ep *endpoint) closeIfIdleLocked() bool {
	if ep.closing && !ep.closed && len(ep.conns) == 0 {
		ep.closed = true
		ep.forgetLocked() // before the descriptor goes; ends a parked reader
		return true
	}
	return false
}

// closeSocket closes the socket, which unblocks the reader. Never with mu held: closing waits
// until the reader has left its read, and the reader handles datagrams inside it (readEach),
// routing them under mu.
func (ep *endpoint) closeSocket() {
	_ = ep.sock.pc.Close()
}

// readLoop reads datagrams in batches and hands them to their connections, a run of
// datagrams for the same connection at a time. A full inbound queue makes it wait for that
// connection's driver, for one step at most, once the connection is established; during the
// handshake what does not fit is dropped (counted on that connection). See Conn.deliver.
func (ep *endpoint) readLoop() {
	n := ep.batch
	if !ep.sock.batch {
		n = 1
	}
	ms := make([]message, n)
	// ms[:posted] are offered to the next read: with buffers, unless the reader takes them
	// itself only once the socket is readable (bufferLender).
	fill := true
	if l, ok := ep.sock.reader.(bufferLender); ok {
		fill = !l.lendBuffers(ep.recvPool)
	}
	posted := postBuffers(ep.recvPool, ms, 0, min(n, readPostMin), fill)
	run := make([]*packetBuf, 0, n)
	putBuffers := func() {
		for i := range ms {
			if ms[i].buf != nil {
				ep.recvPool.put(ms[i].buf)
				ms[i].buf = nil
			}
		}
	}
	// A reader that may park reads with a deadline, parkAfter ahead, moved on when it passes
	// if datagrams came meanwhile: it parks after parkAfter to 2·parkAfter of quiet.
	canPark := ep.canPark() && ep.sock.udp.SetReadDeadline(time.Now().Add(parkDelay())) == nil
	heard := false // since the deadline was set
	next := func() []message { return ms[:posted] }
	// handle reports whether the reader may wait for the socket's readiness without reading it
	// again (readEach): whether it stepped every connection the batch was for itself. A
	// request/response peer's lone datagram is; a run handed to a worker is part of a flow,
	// whose next datagrams likely came while handle ran, and a read finds them sooner than
	// the netpoller would report them with both Ps busy (an upload's goodput was ~10% lower
	// when the reader waited after every batch that emptied the socket).
	handle := func(k int) (wait bool) {
		heard = heard || k > 0
		if k > 0 && !ep.heard.Load() {
			ep.heard.Store(true)
		}
		// Consecutive datagrams of a batch usually belong to one connection: look it up once.
		var runConn *Conn
		var runCID uint64
		behind, queued := false, false
		handOver := func() {
			b, q := ep.handOver(runConn, run)
			behind, queued = behind || b, queued || q
			run = run[:0]
		}
		for i := 0; i < k; i++ {
			c, cid := ep.route(&ms[i], runConn, runCID)
			if c != runConn && len(run) > 0 {
				handOver()
			}
			runConn, runCID = c, cid
			if c != nil {
				ms[i].buf.from, ms[i].buf.fromAddr = ms[i].ap, ms[i].addr
				run = append(run, ms[i].buf)
				ms[i].buf = nil
			}
		}
		if len(run) > 0 {
			handOver()
		}
		// An Endpoint's listener may come after the reader started (Endpoint.Listen): read ln
		// under mu, once per batch.
		ep.mu.Lock()
		ln := ep.ln
		ep.mu.Unlock()
		if ln != nil {
			ln.flushAnswers()
		}
		posted = postBuffers(ep.recvPool, ms, posted, nextPosted(k, posted, n), fill)
		if behind {
			// A driver woken by a hand-over is queued to run next on this goroutine's P, and
			// runs when the reader blocks: when the socket is empty. With a peer sending as
			// fast as we read, that is not before the scheduler preempts the reader, up to
			// 10 ms later, and a fast sender overflows the driver's queue in less. Give the P
			// away: datagrams we do not read meanwhile wait in the socket's buffer (several
			// MiB, Config.SocketBuffer) rather than being dropped from the driver's queue.
			runtime.Gosched()
		}
		return !queued
	}
	for {
		// handle may run inside the read (readEach): it must not wait for anything that
		// closes this socket first (see Conn.finish).
		err := readEach(ep.sock.reader, next, handle)
		if canPark && errors.Is(err, os.ErrDeadlineExceeded) {
			if heard {
				heard = false
				canPark = ep.sock.udp.SetReadDeadline(time.Now().Add(parkDelay())) == nil
				continue
			}
			// Everything is given back before the socket is handed over: the next reader may
			// start as soon as it is.
			putBuffers()
			posted = 0
			ep.sock.reader.(idleReader).idle()
			ep.mu.Lock()
			parked := ep.parkLocked()
			ep.mu.Unlock()
			if parked {
				return
			}
			canPark = false
			_ = ep.sock.udp.SetReadDeadline(time.Time{})
			posted = postBuffers(ep.recvPool, ms, 0, min(n, readPostMin), fill)
			continue
		}
		if ep.readFailed(err) {
			putBuffers()
			ep.sock.reader.release()
			close(ep.readerDone)
			return
		}
	}
}

// parkAfter is how long a dialled connection's socket stays quiet before its reader parks:
// long against the gaps of a conversation, so that a connection in use keeps its reader and its
// datagrams the direct path, short against keep-alive intervals (Config.KeepAlive).
const parkAfter = time.Second

// parkAfterTest, if positive, replaces parkAfter: tests of parking shorten it.
var parkAfterTest atomic.Int64

func parkDelay() time.Duration {
	if d := parkAfterTest.Load(); d > 0 {
		return time.Duration(d)
	}
	return parkAfter
}

// idleReader is a batchReader that can give back what it holds between reads while its
// reader is parked (on Linux, mmsgReader).
type idleReader interface {
	idle()
}

// readPostMin is the number of datagrams a reader asks for while its socket is quiet. A read
// that blocks with its buffers in hand holds them while the socket is empty, which it is most
// of the time: a dialled connection's reader held its whole batch (16 pooled 2 KiB buffers, a
// quarter of an idle session pair's memory), a listener's 64. Two, not one, so that a read that
// is not full tells a quiet socket from a busy one. A reader that lends its buffers
// (bufferLender) holds none while it waits.
const readPostMin = 2

// bufferLender is a batchReader that can take the buffers of a read from pool itself, once the
// socket is readable, and give them back while it waits for the socket: lendBuffers reports
// whether it will. Messages offered to its reads may then come without a buffer. (On Linux,
// mmsgReader: an idle session pair's dialled reader held 2 receive buffers, 4 KiB, while it
// waited, and a listener's reader 2 more.)
type bufferLender interface {
	lendBuffers(pool *bufPool) bool
}

// nextPosted is how many buffers the next read posts, after a read that took k datagrams into
// posted buffers, out of at most max: all max once a read came back full (the socket has more
// queued than we asked for: a burst), twice what the last one took otherwise, so a reader
// that catches up with a burst drops back to readPostMin as the socket quietens.
func nextPosted(k, posted, limit int) int {
	if posted > 0 && k >= posted {
		return limit
	}
	return min(limit, max(readPostMin, 2*k))
}

// postBuffers gives ms[:want] a buffer each if fill, and takes those of ms[want:] back to pool;
// ms[have:] hold none (have is what the last call posted). It returns want. Buffers come under
// one lock for the batch (the reader reposts after every read), and only ms[want:max(have,
// want)] are looked at for buffers to give back: a quiet listener's reader posts 2 of its 64
// messages, and walking all 64 after every read was 1.9% of a 64-byte request/response's
// instructions (callgrind). Without fill (a reader that lends its buffers, bufferLender) the
// messages get theirs in the read.
func postBuffers(pool *bufPool, ms []message, have, want int, fill bool) int {
	if fill {
		pool.getInto(ms[:want])
	}
	for i := want; i < max(have, want); i++ {
		if ms[i].buf != nil {
			pool.put(ms[i].buf)
			ms[i].buf = nil
		}
	}
	return want
}

// handOver queues run for c, recycles what its queue did not take, and reports whether c's
// driver is falling behind and whether it was handed any of run (c's core was not stepped on
// the reader: see deliver).
func (ep *endpoint) handOver(c *Conn, run []*packetBuf) (behind, queued bool) {
	n, behind, queued := c.deliver(run...)
	for _, pb := range run[n:] {
		ep.recvPool.put(pb)
	}
	clear(run)
	return behind, queued
}

// readFailed decides whether a read error ends the reader. Closing the socket (our own
// shutdown) ends it quietly; any error other than a timeout means the socket is unusable, and
// every connection on it is failed.
func (ep *endpoint) readFailed(err error) bool {
	ep.mu.Lock()
	closed := ep.closed
	ep.mu.Unlock()
	if closed {
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false // someone set a deadline on a socket handed to NewListener; keep going
	}
	if isTransientReadError(err) {
		ep.socketError(err)
		return false
	}
	ep.readErr = err
	ep.mu.Lock()
	conns := make([]*Conn, 0, len(ep.conns))
	for _, c := range ep.conns {
		conns = append(conns, c)
	}
	ln := ep.ln
	ep.mu.Unlock()
	for _, c := range conns {
		c.fail(err)
	}
	if ln != nil {
		ln.fail(err)
	}
	return true
}

// isTransientReadError reports errors a UDP read may return that say nothing about the socket
// (ICMP errors queued on the socket).
func isTransientReadError(err error) bool {
	return !errors.Is(err, net.ErrClosed) && isICMPError(err)
}

// route finds the connection a received datagram is for and returns it with its connection
// ID; prev and prevCID are the previous datagram's, which saves a lookup. Datagrams for no
// connection it handles itself (drops them, or gives them to the listener, which may take
// m.buf) and returns nil.
func (ep *endpoint) route(m *message, prev *Conn, prevCID uint64) (*Conn, uint64) {
	if m.trunc {
		ep.dropTruncated.Add(1)
		return nil, 0
	}
	dg := m.buf.bytes()
	cid, long, ok := header.PeekDstConnID(dg)
	if !ok {
		ep.dropMalformed.Add(1)
		return nil, 0
	}
	if prev != nil && cid == prevCID {
		return prev, cid
	}
	ep.mu.Lock()
	c := ep.conns[cid]
	ln := ep.ln
	ep.mu.Unlock()
	if c != nil {
		return c, cid
	}
	if ln != nil && long {
		ln.handleUnknown(m, time.Now())
		return nil, 0
	}
	if ln == nil && !long {
		// A dialled connection's socket is its own: a short header for an ID that is not ours
		// may be a stateless reset from its server (RFC 9000 §10.3), which only the session
		// can recognise. It drops anything else, counted.
		if c := ep.dialled(); c != nil {
			return c, cid
		}
	}
	ep.dropUnknownCID.Add(1)
	if ln != nil {
		ln.statelessReset(m, cid, time.Now())
	}
	return nil, 0
}

// dialled returns the connection of a dialled endpoint.
func (ep *endpoint) dialled() *Conn {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, c := range ep.conns {
		return c
	}
	return nil
}

// socketError looks at an error from a read or write on the socket. ICMP errors the kernel
// queued on it are counted; on a socket Dial opened, a port unreachable ends a handshake that
// has not heard from the server at all (see Conn.refused). Any later one is ignored: ICMP
// errors are easily forged (RFC 5927 describes such attacks on TCP), and a server that has
// answered once is there.
func (ep *endpoint) socketError(err error) {
	if !isICMPError(err) {
		return
	}
	ep.icmpErrors.Add(1)
	if !ep.refuseFast || ep.heard.Load() || !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	ep.mu.Lock()
	conns := make([]*Conn, 0, 1)
	for _, c := range ep.conns {
		conns = append(conns, c)
	}
	ep.mu.Unlock()
	for _, c := range conns {
		c.refused()
	}
}

// writeAnswers sends the datagrams the reader goroutine queued (Retry, Version Negotiation,
// refusals, stateless resets; Listener.answer) in one batch write and recycles their buffers.
func (ep *endpoint) writeAnswers(w batchWriter, ms []message) {
	_ = w.writeBatch(ms)
	for i := range ms {
		ep.sendPool.put(ms[i].buf)
		ms[i] = message{}
	}
}

func isICMPError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
