package transport

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// packetBuf is a pooled datagram buffer: b has the pool's fixed size, n bytes of it are in use.
// Buffers are handed from the socket reader to a connection's driver and back to the pool, so
// the receive and send paths allocate nothing per datagram in steady state. A received buffer
// is recycled as soon as the core has handled it: session.Conn.HandleDatagram copies what it
// keeps and holds no reference to the datagram once it returns.
type packetBuf struct {
	b []byte
	n int
	// own is the buffer's own storage, which b is but while b is lent a piece of a coalesced
	// read's buffer (big != nil; see mmsgReader.split). Putting the packetBuf back to its pool
	// returns the piece and restores b.
	own []byte
	big *groBuf
	// The source of a received datagram, set by the socket reader: from for UDP sockets,
	// fromAddr (with from zero) for any other net.PacketConn. See Conn.handleDatagramLocked.
	from     netip.AddrPort
	fromAddr net.Addr
}

func (p *packetBuf) bytes() []byte { return p.b[:p.n] }

// bufPool recycles packetBufs of one size. A bounded free list comes first: unlike a sync.Pool,
// which every garbage collection empties, it keeps the buffers of a busy socket across
// collections, so a long transfer allocates no buffers once it has as many as it keeps in
// flight. Beyond the free list's capacity a sync.Pool takes the surplus, which the collector may
// reclaim when the load goes away.
//
// The free list is a mutex-guarded stack rather than a channel: the pools are shared by the whole
// process, and a channel made inside a testing/synctest bubble may not be used outside it.
type bufPool struct {
	size int
	mu   sync.Mutex   // guards free
	free []*packetBuf // at most freeListLen
	pool sync.Pool
}

// freeListLen bounds the buffers a bufPool keeps regardless of garbage collection (2 MiB of
// 2 KiB receive buffers).
const freeListLen = 1024

// dialBatch is the read batch of a dialed connection's socket: 16 datagrams per recvmmsg keep
// the system call cost of a download low, and hold 32 KiB of buffers instead of 128 KiB.
const dialBatch = 16

// bufPools holds one bufPool per buffer size, shared by every endpoint: a pool per endpoint kept
// up to freeListLen buffers for each dialled connection, so an idle client held a few hundred KiB
// of buffers it had used once.
var bufPools sync.Map // int → *bufPool

// sharedBufPool returns the process-wide pool of size-byte buffers.
func sharedBufPool(size int) *bufPool {
	if p, ok := bufPools.Load(size); ok {
		return p.(*bufPool)
	}
	p, _ := bufPools.LoadOrStore(size, newBufPool(size))
	return p.(*bufPool)
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.pool.New = func() any {
		b := make([]byte, size)
		return &packetBuf{b: b, own: b}
	}
	return bp
}

func (bp *bufPool) get() *packetBuf {
	var p *packetBuf
	bp.mu.Lock()
	if n := len(bp.free); n > 0 {
		p = bp.free[n-1]
		bp.free[n-1] = nil
		bp.free = bp.free[:n-1]
	}
	bp.mu.Unlock()
	if p == nil {
		p = bp.pool.Get().(*packetBuf)
	}
	p.n = 0
	return p
}

// getInto gives each ms[i] without a buffer one, taking the free list's lock once for all.
func (bp *bufPool) getInto(ms []message) {
	bp.mu.Lock()
	for i := range ms {
		if ms[i].buf != nil {
			continue
		}
		n := len(bp.free)
		if n == 0 {
			break
		}
		ms[i].buf = bp.free[n-1]
		bp.free[n-1] = nil
		bp.free = bp.free[:n-1]
		ms[i].buf.n = 0
	}
	bp.mu.Unlock()
	for i := range ms {
		if ms[i].buf == nil {
			ms[i].buf = bp.pool.Get().(*packetBuf)
			ms[i].buf.n = 0
		}
	}
}

// putAll recycles every buffer of pbs (nil ones are skipped) under one acquisition of the free
// list's lock, and clears pbs.
func (bp *bufPool) putAll(pbs []*packetBuf) {
	for _, p := range pbs {
		if p != nil {
			p.unlend()
		}
	}
	bp.mu.Lock()
	i := 0
	for ; i < len(pbs) && len(bp.free) < freeListLen; i++ {
		if pbs[i] != nil {
			bp.free = append(bp.free, pbs[i])
		}
	}
	bp.mu.Unlock()
	for _, p := range pbs[i:] {
		if p != nil {
			bp.pool.Put(p)
		}
	}
	clear(pbs)
}

// putSent recycles the buffers of ms, which were sent (none is lent), under one acquisition of
// the free list's lock, and clears them from ms.
func (bp *bufPool) putSent(ms []message) {
	bp.mu.Lock()
	i := 0
	for ; i < len(ms) && len(bp.free) < freeListLen; i++ {
		bp.free = append(bp.free, ms[i].buf)
		ms[i].buf = nil
	}
	bp.mu.Unlock()
	for ; i < len(ms); i++ {
		bp.pool.Put(ms[i].buf)
		ms[i].buf = nil
	}
}

func (bp *bufPool) put(p *packetBuf) {
	if p == nil {
		return
	}
	p.unlend()
	bp.mu.Lock()
	if len(bp.free) < freeListLen {
		bp.free = append(bp.free, p)
		p = nil
	}
	bp.mu.Unlock()
	if p != nil {
		bp.pool.Put(p)
	}
}

// groBufs recycles the 64 KiB buffers of readers that use UDP generic receive offload (see
// mmsgReader on Linux): listeners and bulk downloads come and go, and a sync.Pool lets the
// collector reclaim them once they stop coming.
var groBufs = sync.Pool{New: func() any { return new(groBuf) }}

// groBufSize is the largest coalesced datagram: the largest UDP payload.
const groBufSize = 1 << 16

// groBuf is the buffer of one coalesced read. Its pieces, the datagrams, are lent to packetBufs
// rather than copied into them (mmsgReader.split): a bulk receiver's reader then copies nothing
// in user space. refs counts the holders: the reader while it reads into it or has pieces left
// to hand out, and each packetBuf holding a piece. The last to let go recycles it.
type groBuf struct {
	b    [groBufSize]byte
	refs atomic.Int32
}

// getGROBuf returns a buffer held once, by the caller.
func getGROBuf() *groBuf {
	g := groBufs.Get().(*groBuf)
	g.refs.Store(1)
	return g
}

// release drops one hold and reports whether it was the last; then g is recycled, unless keep.
func (g *groBuf) release(keep bool) (last bool) {
	if g.refs.Add(-1) != 0 {
		return false
	}
	if !keep {
		groBufs.Put(g)
	}
	return true
}

// lend makes p's bytes piece, a datagram in g, which p holds until unlend.
func (p *packetBuf) lend(g *groBuf, piece []byte) {
	p.unlend()
	if p.own == nil {
		p.own = p.b
	}
	g.refs.Add(1)
	p.big, p.b, p.n = g, piece, len(piece)
}

// unlend gives back the piece p holds, if any, and restores its own storage.
func (p *packetBuf) unlend() {
	if p.big != nil {
		p.big.release(false)
		p.big, p.b = nil, p.own
	}
}

// message is one datagram of a batch read or write.
type message struct {
	buf   *packetBuf
	ap    netip.AddrPort // the peer, for *net.UDPConn sockets
	addr  net.Addr       // the peer, for any other net.PacketConn
	trunc bool           // read: the datagram did not fit buf and was cut
}

// batchReader reads up to len(ms) datagrams into ms[i].buf (whose n it sets) and their source
// addresses. It blocks until at least one datagram is there. It is used by one goroutine, which
// calls release once it has stopped reading: the reader gives back buffers of its own (those of
// coalesced reads), and drops what it has read but not yet returned.
type batchReader interface {
	readBatch(ms []message) (int, error)
	release()
}

// An eachReader reads as readEach does, in a way of its own: see mmsgReader.readEach.
type eachReader interface {
	readEach(next func() []message, handle func(k int) (wait bool)) error
}

// readEach reads batches from r into next()'s messages and hands each to handle, until a read
// fails; it returns that error. What handle returns is a hint for an eachReader: true if the
// next datagram is not expected soon, so that a batch that emptied the socket may be followed
// by a wait for readiness rather than by another read.
func readEach(r batchReader, next func() []message, handle func(k int) (wait bool)) error {
	if e, ok := r.(eachReader); ok {
		return e.readEach(next, handle)
	}
	for {
		k, err := r.readBatch(next())
		if err != nil {
			return err
		}
		handle(k)
	}
}

// groMode says when a socket's reader uses UDP generic receive offload (see mmsgReader).
type groMode int

const (
	groOff  groMode = iota // never
	groNow                 // from the start: a listener's socket, shared by many connections
	groLazy                // once the socket is seen receiving in bulk: a dialled socket
)

// batchWriter sends ms[i].buf.bytes() to its address. Each driver owns its own batchWriter, so
// implementations may keep scratch space.
type batchWriter interface {
	writeBatch(ms []message) error
}

// socket is the packet I/O of one net.PacketConn, chosen by what the conn supports: batch
// system calls on Linux UDP sockets, allocation-free single calls on other *net.UDPConns, and
// plain ReadFrom/WriteTo for any other net.PacketConn (such as an in-memory test network).
type socket struct {
	pc        net.PacketConn
	udp       *net.UDPConn // nil if pc is not a *net.UDPConn
	reader    batchReader
	newWriter func() batchWriter
	// rebind, if set, points a writer of another socket at this one, without allocating, and
	// reports whether it could (see dialledStates).
	rebind    func(batchWriter) bool
	batch     bool // reader and writers use recvmmsg/sendmmsg
	connected bool // a connected *net.UDPConn: it hears only from, and sends only to, its peer
	// gso reports whether the writers coalesce datagrams with UDP generic segmentation
	// offload; it turns false if the kernel refuses that on this socket. Nil without GSO.
	gso *atomic.Bool
	// gro reports whether the reader receives coalesced datagrams (UDP generic receive
	// offload); it turns true when the reader switches the socket over. Nil without GRO.
	gro *atomic.Bool
	// family is the socket's address family (unix.AF_INET or AF_INET6) if known, 0 otherwise.
	family int
	// setupCalls is how many socket options the package set or read on the socket while
	// setting it up (TestDialSocketSetup), not counting package net's.
	setupCalls int
}

// newSocket sets up the packet I/O of pc; disableGSO keeps the writers from using UDP GSO
// (Config.DisableGSO), gro says when the reader turns UDP GRO on (groOff for
// Config.DisableGRO). family is the socket's address family if the caller opened it (familyOf),
// 0 to ask the kernel.
func newSocket(pc net.PacketConn, disableGSO bool, gro groMode, family int) *socket {
	s := &socket{pc: pc}
	if u, ok := pc.(*net.UDPConn); ok {
		s.udp = u
		s.connected = u.RemoteAddr() != nil
		gso := !disableGSO && !gsoDisabledByEnv()
		if groDisabledByEnv() {
			gro = groOff
		}
		if io, ok := newMmsgIO(u, s.connected, gso, gro, family); ok {
			s.family, s.setupCalls = io.family, io.calls
			s.reader, s.newWriter, s.rebind, s.batch = io.reader, io.newWriter, io.rebind, true
			if gso {
				s.gso = io.gso
			}
			s.gro = io.gro
			return s
		}
		s.reader = udpIO{u, s.connected}
		s.newWriter = func() batchWriter { return udpIO{u, s.connected} }
		return s
	}
	s.reader = genericIO{pc}
	s.newWriter = func() batchWriter { return genericIO{pc} }
	return s
}

// usesGSO reports whether sends coalesce datagrams with UDP GSO now.
func (s *socket) usesGSO() bool { return s.gso != nil && s.gso.Load() }

// usesGRO reports whether reads take coalesced datagrams with UDP GRO now.
func (s *socket) usesGRO() bool { return s.gro != nil && s.gro.Load() }

// mmsgIO is the batch I/O of one Linux UDP socket (see newMmsgIO).
type mmsgIO struct {
	reader    batchReader
	newWriter func() batchWriter
	rebind    func(batchWriter) bool
	gso       *atomic.Bool // the writers use GSO now
	gro       *atomic.Bool // the reader uses GRO now; nil if it never will (groOff)
	family    int          // unix.AF_INET or AF_INET6
	calls     int          // socket options set or read in the setup
}

// remoteAddr is the net.Addr of a datagram's source, as RemoteAddr reports it: for UDP sockets
// an unmapped *net.UDPAddr (the writers keep using the AddrPort), the net.Addr otherwise.
func (s *socket) remoteAddr(m *message) net.Addr {
	if s.udp != nil {
		return net.UDPAddrFromAddrPort(unmapAddrPort(m.ap))
	}
	return m.addr
}

func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// udpIO is the portable *net.UDPConn path: one system call per datagram, no allocation.
type udpIO struct {
	c         *net.UDPConn
	connected bool // package net refuses WriteTo on a connected socket: use Write
}

func (u udpIO) readBatch(ms []message) (int, error) {
	m := &ms[0]
	n, _, flags, ap, err := u.c.ReadMsgUDPAddrPort(m.buf.b, nil)
	if err != nil {
		return 0, err
	}
	m.buf.n, m.ap, m.trunc = n, ap, flags&msgTrunc != 0
	return 1, nil
}

func (udpIO) release() {}

func (u udpIO) writeBatch(ms []message) error {
	var first error
	for i := range ms {
		var err error
		if u.connected {
			_, err = u.c.Write(ms[i].buf.bytes())
		} else {
			_, err = u.c.WriteToUDPAddrPort(ms[i].buf.bytes(), ms[i].ap)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// genericIO drives any net.PacketConn.
type genericIO struct{ pc net.PacketConn }

func (g genericIO) readBatch(ms []message) (int, error) {
	m := &ms[0]
	n, addr, err := g.pc.ReadFrom(m.buf.b)
	if err != nil {
		return 0, err
	}
	m.buf.n, m.addr, m.trunc = n, addr, false
	return 1, nil
}

func (genericIO) release() {}

func (g genericIO) writeBatch(ms []message) error {
	var first error
	for i := range ms {
		if _, err := g.pc.WriteTo(ms[i].buf.bytes(), ms[i].addr); err != nil && first == nil {
			first = err
		}
	}
	return first
}
