package transport

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
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

	mu      sync.Mutex       // guards the fields below
	conns   map[uint64]*Conn // by every connection ID a conn is known under
	ln      *Listener        // nil for a dialed Conn's endpoint
	closing bool             // no new connections; close the socket with the last one
	closed  bool             // the socket was closed

	readerDone chan struct{}
	readErr    error // why the reader stopped, set before readerDone is closed

	rcvBuf, sndBuf int // kernel socket buffers granted, 0 if unknown

	// Datagrams the reader dropped before any connection saw them.
	dropMalformed  atomic.Uint64 // too short or fixed bit clear
	dropTruncated  atomic.Uint64 // larger than the receive buffer
	dropUnknownCID atomic.Uint64 // no connection has this ID and it cannot start one
}

func newEndpoint(pc net.PacketConn, conf *Config, setBuffers bool) *endpoint {
	ep := &endpoint{
		sock:       newSocket(pc),
		conf:       conf,
		recvPool:   newBufPool(conf.recvBufSize()),
		sendPool:   newBufPool(conf.MaxDatagramSize),
		conns:      make(map[uint64]*Conn),
		readerDone: make(chan struct{}),
	}
	if ep.sock.udp != nil {
		size := 0 // a caller's socket is left alone; only its sizes are read
		if setBuffers {
			size = conf.SocketBuffer
		}
		ep.rcvBuf, ep.sndBuf = setSocketBuffers(ep.sock.udp, size)
	}
	return ep
}

// start runs the reader goroutine.
func (ep *endpoint) start() { go ep.readLoop() }

// newConnID returns a random connection ID that no connection of ep uses. Must hold ep.mu.
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

// register makes datagrams carrying any of ids go to c. It fails once the endpoint is closing
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
	ep.closeIfIdleLocked()
	ep.mu.Unlock()
}

// shutdown marks the endpoint closing: the socket is closed as soon as no connection uses it.
func (ep *endpoint) shutdown() {
	ep.mu.Lock()
	ep.closing = true
	ep.closeIfIdleLocked()
	ep.mu.Unlock()
}

func (ep *endpoint) closeIfIdleLocked() {
	if ep.closing && !ep.closed && len(ep.conns) == 0 {
		ep.closed = true
		_ = ep.sock.pc.Close() // unblocks the reader
	}
}

// readLoop reads datagrams in batches and hands each to its connection. It never blocks on a
// connection: a full inbound queue drops the datagram (counted on that connection), so one slow
// connection cannot stall the others sharing the socket.
func (ep *endpoint) readLoop() {
	defer close(ep.readerDone)
	n := maxBatch
	if !ep.sock.batch {
		n = 1
	}
	ms := make([]message, n)
	for i := range ms {
		ms[i].buf = ep.recvPool.get()
	}
	defer func() {
		for i := range ms {
			ep.recvPool.put(ms[i].buf)
		}
	}()
	for {
		k, err := ep.sock.reader.readBatch(ms)
		if err != nil {
			if ep.readFailed(err) {
				return
			}
			continue
		}
		for i := 0; i < k; i++ {
			ep.dispatch(&ms[i])
			if ms[i].buf == nil {
				ms[i].buf = ep.recvPool.get()
			}
		}
	}
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

// dispatch routes one received datagram. If it hands m.buf to a connection it sets m.buf to nil.
func (ep *endpoint) dispatch(m *message) {
	if m.trunc {
		ep.dropTruncated.Add(1)
		return
	}
	dg := m.buf.bytes()
	cid, long, ok := header.PeekDstConnID(dg)
	if !ok {
		ep.dropMalformed.Add(1)
		return
	}
	ep.mu.Lock()
	c := ep.conns[cid]
	ln := ep.ln
	ep.mu.Unlock()
	if c != nil {
		if c.deliver(m.buf) {
			m.buf = nil
		}
		return
	}
	if ln != nil && long {
		ln.handleUnknown(m, time.Now())
		return
	}
	ep.dropUnknownCID.Add(1)
}

// writeOne sends one datagram from the reader goroutine (Retry, Version Negotiation).
func (ep *endpoint) writeOne(w batchWriter, b *packetBuf, m *message) {
	out := [1]message{{buf: b, ap: m.ap, addr: m.addr}}
	_ = w.writeBatch(out[:])
}

func isICMPError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
