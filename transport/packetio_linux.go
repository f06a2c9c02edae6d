//go:build linux

package transport

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const msgTrunc = unix.MSG_TRUNC

// maxBatch is the number of datagrams one recvmmsg/sendmmsg call moves at most.
const maxBatch = 64

// connectDialSocket: Dial connects its socket to the server, so that the kernel reports an ICMP
// port unreachable as ECONNREFUSED on it (an unconnected UDP socket never sees it without
// IP_RECVERR) and routes each send without a lookup.
const connectDialSocket = true

// newMmsgIO returns recvmmsg/sendmmsg based I/O for u. We issue the system calls ourselves
// instead of using golang.org/x/net/ipv4.PacketConn.ReadBatch, which allocates a *net.UDPAddr
// per datagram: the sockaddrs are parsed into netip.AddrPort values in place, so a batch costs
// no allocation. On a connected socket sends carry no address: the kernel then uses the route
// cached on the socket instead of looking one up per datagram.
//
// The writers use UDP generic segmentation offload when the kernel has it and gso is true (see
// mmsgWriter); the reader uses UDP generic receive offload as gro says (see mmsgReader).
func newMmsgIO(u *net.UDPConn, connected, gso bool, gro groMode, family int) (mmsgIO, bool) {
	rc, err := u.SyscallConn()
	if err != nil {
		return mmsgIO{}, false
	}
	calls := 0
	if cerr := rc.Control(func(fd uintptr) {
		if family == 0 { // a caller's socket: ask the kernel
			family, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
			calls++
		}
		if gso {
			var probed bool
			gso, probed = kernelHasGSO(int(fd))
			if probed {
				calls++
			}
		}
	}); cerr != nil || err != nil || (family != unix.AF_INET && family != unix.AF_INET6) {
		return mmsgIO{}, false
	}
	r := &mmsgReader{rc: rc}
	r.fn, r.eachFn = r.recv, r.recvEach
	gsoOn := new(atomic.Bool)
	gsoOn.Store(gso)
	io := mmsgIO{
		reader: r,
		newWriter: func() batchWriter {
			w := &mmsgWriter{rc: rc, family: family, connected: connected, gso: gsoOn}
			w.fn = w.send
			return w
		},
		gso: gsoOn,
		// Everything of an mmsgWriter but these fields is scratch space of a single write.
		rebind: func(bw batchWriter) bool {
			w, ok := bw.(*mmsgWriter)
			if !ok || w.failGSO != 0 {
				return false
			}
			w.rc, w.family, w.connected, w.gso = rc, family, connected, gsoOn
			return true
		},
	}
	switch gro {
	case groNow:
		r.gro, r.nbig = new(atomic.Bool), groListenBufs
		r.switchToGRO()
	case groLazy:
		r.gro, r.nbig, r.lazy = new(atomic.Bool), groDialBufs, true
	}
	io.gro = r.gro
	io.family, io.calls = family, calls
	return io, true
}

// gsoProbe is what the process learnt about UDP_SEGMENT: 0 nothing yet, gsoYes or gsoNo. The
// kernel has the option or not for every socket alike, so one socket is asked (issue 8: each
// Dial asked its own, one system call of the 14 its setup made).
var gsoProbe atomic.Int32

const (
	gsoYes = 1
	gsoNo  = 2
)

// kernelHasGSO reports whether the kernel has UDP generic segmentation offload, asking it on fd
// (probed) the first time. Kernels before 4.18 do not know the option and fail with ENOPROTOOPT;
// reading it changes nothing: the segment size comes with each send, as a control message. An
// error other than ENOPROTOOPT says nothing about the kernel: that socket goes without, and the
// next one asks again.
func kernelHasGSO(fd int) (gso, probed bool) {
	switch gsoProbe.Load() {
	case gsoYes:
		return true, false
	case gsoNo:
		return false, false
	}
	_, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	switch {
	case err == nil:
		gsoProbe.Store(gsoYes)
	case errors.Is(err, unix.ENOPROTOOPT):
		gsoProbe.Store(gsoNo)
	}
	return err == nil, true
}

// familyOf is the address family of a socket Dial opens for a peer of that kind, which its setup
// then need not ask the kernel for.
func familyOf(is4 bool) int {
	if is4 {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// gsoDisabledByEnv reports whether the environment turns UDP GSO off for the process
// (TLSGRAM_DISABLE_GSO=1, see Config.DisableGSO).
func gsoDisabledByEnv() bool {
	v, _ := strconv.ParseBool(os.Getenv("TLSGRAM_DISABLE_GSO"))
	return v
}

// groDisabledByEnv reports whether the environment turns UDP GRO off for the process
// (TLSGRAM_DISABLE_GRO=1, see Config.DisableGRO).
func groDisabledByEnv() bool {
	v, _ := strconv.ParseBool(os.Getenv("TLSGRAM_DISABLE_GRO"))
	return v
}

// mmsgHeaders is the scratch space of one batch system call: message headers, one iovec per
// message, and room for an IPv4 or IPv6 socket address per message. The pointers in hdrs
// point into iovs and names and into the caller's packet buffers, which the garbage collector
// does not move.
//
// They are sized for the messages posted, not for maxBatch (grow): a dialled connection's
// reader blocks with readPostMin buffers posted while the socket is quiet, and headers for 64
// were 8.5 KiB of every idle session pair (issue 8). They grow, by doubling, when more are
// posted, and stay: a reader's batch grows under load and the headers then cost no allocation.
type mmsgHeaders struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
}

// grow makes room for n messages, n ≤ maxBatch, and at least one: a system call passes &hdrs[0].
func (h *mmsgHeaders) grow(n int) {
	if n <= len(h.hdrs) && len(h.hdrs) > 0 {
		return
	}
	n = min(max(n, 2*len(h.hdrs), 1), maxBatch)
	h.hdrs = make([]unix.Mmsghdr, n)
	h.iovs = make([]unix.Iovec, n)
	h.names = make([]unix.RawSockaddrInet6, n)
}

// UDP generic receive offload (GRO, Linux 5.0): with the UDP_GRO socket option set, the kernel
// queues a run of datagrams of one flow, of equal size but for a shorter last one, as one
// coalesced datagram, and a read returns it whole with the segment size in a control message.
// On loopback this is what a GSO send becomes, uncut: without the option the kernel segments
// it in the sender's system call, which was the largest CPU cost of a bulk transfer. From a
// network card, the kernel's GRO coalesces a bulk flow's datagrams for such a socket too.
//
// A coalesced datagram takes up to 64 KiB, so its reads need buffers that large; one in a
// pooled 2 KiB buffer would be cut off. Each reader in GRO mode holds a few 64 KiB buffers,
// taken from groBufs: groListenBufs for a listener's socket, which has GRO on from the start
// (one per listener, shared by all its sessions), groDialBufs for a dialled socket, which turns
// it on only once it receives in bulk (see bulkWatch), because an idle client keeping 256 KiB
// of buffers would be most of its memory.
const (
	// groListenBufs is the number of coalesced datagrams one read of a listener's socket
	// takes: up to 512 datagrams, what its 64 pooled buffers per batch take in 8 calls. In
	// BenchmarkThroughput 4 did as well within the noise, 2 about 10% worse.
	groListenBufs = 8
	// groDialBufs is that number for a dialled socket. One 64 KiB read already fills several
	// of its 16-datagram batches (dialBatch), but fewer system calls and wake-ups still pay:
	// in BenchmarkDownload 4 buffers gained 22% over no GRO, 1 or 2 about 11%.
	groDialBufs = 4
	maxGROBufs  = max(groListenBufs, groDialBufs)
)

// groCmsgBuf receives one read's control messages: CMSG_SPACE(sizeof(int)) is 24 bytes on
// 64-bit systems, 16 on 32-bit. uint64 elements keep the headers aligned.
type groCmsgBuf [4]uint64

// groRead describes one message of a coalesced read.
type groRead struct {
	ap    netip.AddrPort
	n     int  // bytes received
	seg   int  // segment size: every piece but the last has this length
	trunc bool // the kernel cut the datagram (MSG_TRUNC): its last piece is incomplete
}

// bulkWatch tells a bulk receiver from other traffic by how full its reads come back. A
// request, a reply, a handshake flight or a keep-alive leave the socket empty after one small
// read; a transfer keeps it ahead of the reader, so most of its datagrams come in reads that
// fill the batch. Taking the share of datagrams over a window, rather than a run of full
// reads, tolerates the partial read at the end of each burst when the reader keeps up.
type bulkWatch struct {
	seen, full int // datagrams read in this window, and those of them in full reads
}

// bulkWindow is the number of datagrams (about 300 KB) over which bulkWatch judges.
const bulkWindow = 256

// add counts a read of n datagrams out of at most max, and reports whether the window it
// completed was bulk: at least half of its datagrams came in full reads.
func (w *bulkWatch) add(n, max int) bool {
	if max < 2 {
		return false // every read is full; nothing to tell
	}
	w.seen += n
	if n == max {
		w.full += n
	}
	if w.seen < bulkWindow {
		return false
	}
	bulk := 2*w.full >= w.seen
	*w = bulkWatch{}
	return bulk
}

// mmsgReader reads with recvmmsg, into the caller's buffers, or with UDP GRO into its own
// 64 KiB buffers, which it cuts into the caller's: see readBatch.
type mmsgReader struct {
	rc syscall.RawConn
	mmsgHeaders
	// pool, if set, lends the plain reads' buffers (lendBuffers): ms is then the read under way,
	// whose messages take a buffer from pool once the socket is readable and give them all back
	// when it turns out empty (recv). A reader waiting for a quiet socket holds no buffer.
	pool  *bufPool
	ms    []message
	cnt   int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // r.recv, bound once so a read allocates nothing
	// readEach's state: its callback (r.recvEach, bound once) and its arguments.
	eachFn     func(fd uintptr) bool
	eachNext   func() []message
	eachHandle func(k int) (wait bool)
	calls      atomic.Uint64 // read callbacks run (recvmmsg calls, but for EINTR), for tests

	// GRO state, the reader goroutine's. gro mirrors on for Stats; it is nil with groOff.
	gro       *atomic.Bool
	on        bool      // UDP_GRO is set: every read goes to big
	lazy      bool      // turn GRO on once watch sees bulk traffic
	watch     bulkWatch // while lazy
	nbig      int       // big buffers read into once on
	*groReads           // from the first switch to GRO on (most dialled readers never switch)
	// The last coalesced read held nread messages; message next, from byte off on, is the
	// first piece not handed out yet.
	nread, next, off int
	coalesced        int // messages read that held more than one datagram, for tests
}

// groReads is the space of a reader's coalesced reads: 0.8 KiB, which a dialled connection's
// reader took whether or not it ever received in bulk (issue 8).
type groReads struct {
	big  [maxGROBufs]*groBuf // nbig of them while on, each held by the reader (nil: take one)
	ctls [maxGROBufs]groCmsgBuf
	got  [maxGROBufs]groRead
}

// heldBig reports whether the reader holds big buffer i.
func (r *mmsgReader) heldBig(i int) bool { return r.groReads != nil && r.big[i] != nil }

// readBatch fills ms from the socket. Without GRO, the kernel reads straight into ms's
// buffers. With GRO, each message of a read is a coalesced datagram in one of the reader's
// big buffers, and every piece of it is copied into a buffer of ms, so that the rest of the
// transport handles ordinary datagrams in pooled buffers. The pieces that do not fit ms stay
// pending and come out first in the next call, which reads the socket only once none are
// left.
func (r *mmsgReader) readBatch(ms []message) (int, error) {
	if r.on {
		for r.next == r.nread {
			if err := r.readCoalesced(); err != nil {
				return 0, err
			}
		}
		return r.split(ms), nil
	}
	n, err := r.readPlain(ms)
	if err == nil && r.lazy && r.watch.add(n, r.cnt) {
		// Between reads: the datagrams queued until now were queued without GRO, and the
		// coalesced reads that follow take them as ordinary ones.
		r.lazy = false
		r.switchToGRO()
	}
	return n, err
}

// switchToGRO takes the big buffers and then sets UDP_GRO, in that order: from the moment the
// option is set, a read into a small buffer may cut a coalesced datagram. A kernel without the
// option (before 5.0) refuses it, and the reader goes on without GRO.
func (r *mmsgReader) switchToGRO() {
	if r.groReads == nil {
		r.groReads = new(groReads)
	}
	for i := range r.nbig {
		r.big[i] = getGROBuf()
	}
	var err error
	if cerr := r.rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	}); cerr != nil || err != nil {
		r.putBig()
		return
	}
	r.on = true
	r.gro.Store(true)
}

func (r *mmsgReader) putBig() {
	if r.groReads == nil {
		return
	}
	for i, b := range r.big {
		if b != nil {
			b.release(false)
			r.big[i] = nil
		}
	}
}

// release gives the big buffers back and forgets pending pieces. The socket is closed or
// unusable; nothing is read from it after this.
func (r *mmsgReader) release() {
	r.putBig()
	r.on, r.lazy = false, false
	r.nread, r.next, r.off = 0, 0, 0
}

// prepare sets message header i up to read one datagram into b, with room for its control
// messages if ctl.
func (r *mmsgReader) prepare(i int, b []byte, ctl bool) {
	r.iovs[i].Base = &b[0]
	r.iovs[i].SetLen(len(b))
	h := &r.hdrs[i]
	h.Len = 0
	h.Hdr = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&r.names[i])),
		Namelen: unix.SizeofSockaddrInet6,
		Iov:     &r.iovs[i],
	}
	h.Hdr.SetIovlen(1)
	if ctl {
		h.Hdr.Control = (*byte)(unsafe.Pointer(&r.ctls[i]))
		h.Hdr.SetControllen(int(unsafe.Sizeof(r.ctls[i])))
	}
}

func (r *mmsgReader) readPlain(ms []message) (int, error) {
	r.preparePlain(ms)
	err := r.rc.Read(r.fn)
	r.ms = nil
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.finishPlain(ms), nil
}

// preparePlain sets the message headers up to read into ms's buffers.
func (r *mmsgReader) preparePlain(ms []message) {
	r.cnt = min(len(ms), maxBatch)
	r.grow(r.cnt)
	if r.pool != nil {
		r.ms = ms[:r.cnt] // recv posts them
	} else {
		r.post(ms[:r.cnt])
	}
}

// finishPlain fills ms from the headers after a read into them and returns how many it read.
func (r *mmsgReader) finishPlain(ms []message) int {
	for i := 0; i < r.n; i++ {
		m := &ms[i]
		m.buf.n = int(r.hdrs[i].Len)
		m.trunc = r.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		m.ap = parseSockaddr(&r.names[i])
	}
	return r.n
}

// post sets the message headers up to read into ms's buffers, taking a buffer from r.pool for
// each message without one.
func (r *mmsgReader) post(ms []message) {
	for i := range ms {
		if ms[i].buf == nil {
			ms[i].buf = r.pool.get()
		}
		ms[i].buf.unlend()
		r.prepare(i, ms[i].buf.b, false)
	}
}

// unpost gives the buffers of ms back to r.pool.
func (r *mmsgReader) unpost(ms []message) {
	for i := range ms {
		r.pool.put(ms[i].buf)
		ms[i].buf = nil
	}
}

// idle gives back the reader's scratch space and its coalesced reads' buffers while its
// reader is parked (endpoint.readLoop): it has handed out every piece (it parks after a read
// that timed out, and readBatch hands out pending pieces before it reads). The next read
// takes them anew.
func (r *mmsgReader) idle() {
	if r.next == r.nread {
		r.putBig()
	}
	r.mmsgHeaders = mmsgHeaders{}
}

// lendBuffers makes the reader take the buffers of plain reads from pool while the socket has
// datagrams, and give them back while it waits (see mmsgReader.pool). A listener's reader, or a
// dialled connection's, waits most of the time, and held readPostMin buffers (4 KiB) doing so.
func (r *mmsgReader) lendBuffers(pool *bufPool) bool {
	r.pool = pool
	return true
}

// readCoalesced reads up to nbig coalesced datagrams into the big buffers. A message without
// the UDP_GRO control message is one ordinary datagram: one that was queued before the option
// was set, or that the kernel had nothing to coalesce with.
func (r *mmsgReader) readCoalesced() error {
	r.prepareCoalesced()
	if err := r.rc.Read(r.fn); err != nil {
		return err
	}
	if r.errno != 0 {
		return os.NewSyscallError("recvmmsg", r.errno)
	}
	r.finishCoalesced()
	return nil
}

// prepareCoalesced sets the message headers up to read into the big buffers.
func (r *mmsgReader) prepareCoalesced() {
	r.cnt = r.nbig
	r.grow(r.cnt)
	for i := range r.cnt {
		if r.big[i] == nil {
			r.big[i] = getGROBuf() // the last one's pieces are still out
		}
		r.prepare(i, r.big[i].b[:], true)
	}
}

// finishCoalesced notes what a read into the big buffers brought: pieces for split.
func (r *mmsgReader) finishCoalesced() {
	for i := range r.n {
		h := &r.hdrs[i]
		g := &r.got[i]
		g.ap = parseSockaddr(&r.names[i])
		g.n = int(h.Len)
		g.trunc = h.Hdr.Flags&unix.MSG_TRUNC != 0
		ctl := unsafe.Slice((*byte)(unsafe.Pointer(&r.ctls[i])), min(int(h.Hdr.Controllen), int(unsafe.Sizeof(r.ctls[i]))))
		g.seg = groSegmentSize(ctl)
		if g.seg <= 0 {
			g.seg = g.n
		}
		if g.seg < g.n {
			r.coalesced++
		}
	}
	r.nread, r.next, r.off = r.n, 0, 0
}

// split hands out pending pieces into ms, in order, and returns how many. A short header
// datagram (an established connection's) is lent, not copied: ms's packetBuf points into the
// big buffer and holds it until it goes back to its pool, which a connection's driver does
// right after its step. Others (long headers: handshakes, which a listener may keep a while)
// are copied, so that a half-open session never pins 64 KiB. A piece longer than its buffer is
// cut and marked truncated, as the kernel marks an ordinary datagram too long for its buffer.
// An empty datagram is one empty piece.
func (r *mmsgReader) split(ms []message) int {
	k := 0
	for k < len(ms) && r.next < r.nread {
		g := &r.got[r.next]
		end := min(r.off+g.seg, g.n)
		big := r.big[r.next]
		piece := big.b[r.off:end:end]
		m := &ms[k]
		if m.buf == nil {
			m.buf = r.pool.get() // lendBuffers: only a plain read's are lent
		}
		m.buf.unlend()
		m.ap = g.ap
		m.trunc = len(piece) > len(m.buf.b) || (g.trunc && end == g.n)
		if len(piece) > 0 && piece[0]&0x80 == 0 && !m.trunc { // the form bit: short header
			m.buf.lend(big, piece)
		} else {
			m.buf.n = copy(m.buf.b, piece)
		}
		k++
		if end == g.n {
			// Handed out whole: drop the reader's hold. Unless pieces are still out, the
			// buffer is free for the next read.
			if big.release(true) {
				big.refs.Store(1)
			} else {
				r.big[r.next] = nil
			}
			r.next, r.off = r.next+1, 0
		} else {
			r.off = end
		}
	}
	return k
}

// groSegmentSize returns the segment size from a read's control messages, or 0 if they carry
// none (the datagram was not coalesced).
func groSegmentSize(ctl []byte) int {
	for len(ctl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(ctl) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(int32(binary.NativeEndian.Uint32(ctl[unix.CmsgLen(0):])))
		}
		ctl = ctl[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(ctl)):]
	}
	return 0
}

// readEach is readBatch in a loop, handing each batch to handle, which may repost ms's
// buffers (next returns the messages to read into). It returns only the error that ends a
// read. The difference is in the system calls: handle runs inside the read, in RawConn.Read's
// callback, so after a batch that left the socket empty (the kernel returned fewer datagrams
// than asked for) and that handle says was not part of a flow (it returns wait), the reader
// waits for the socket's next readiness at once, instead of asking the kernel again to be
// told EAGAIN. That read cannot be skipped between two reads: each
// RawConn.Read starts by forgetting the readiness the netpoller noted meanwhile, and a
// datagram that came while handle ran would wait for the next one.
//
// Issue 8: a request/response read each message with two recvmmsg calls, one with the
// datagram and one EAGAIN, and the second ran between waking the application and letting it
// run. Counted with strace -c -f on 4000 round trips: 4.0 recvmmsg per round trip before, 2.0
// after (TestPingPongReadsPerDatagram).
func (r *mmsgReader) readEach(next func() []message, handle func(k int) (wait bool)) error {
	r.eachNext, r.eachHandle = next, handle
	defer func() { r.eachNext, r.eachHandle = nil, nil }()
	for {
		if r.on && r.next < r.nread {
			handle(r.split(next())) // pieces of the last coalesced read come first
			continue
		}
		if err := r.rc.Read(r.eachFn); err != nil {
			return err
		}
		if r.errno != 0 {
			return os.NewSyscallError("recvmmsg", r.errno)
		}
	}
}

// recvEach is readEach's callback: it reads one batch and handles it, and reports whether
// readEach must read again at once (true: the batch was full, or left pieces to hand out,
// or handle expects more, or the read failed) or wait for readiness first (false: EAGAIN, or
// the socket was empty after the read and handle expects nothing soon; on an edge-triggered
// poller, any datagram that came after the read signals).
func (r *mmsgReader) recvEach(fd uintptr) bool {
	ms := r.eachNext()
	on := r.on
	if on {
		r.prepareCoalesced()
	} else {
		r.preparePlain(ms)
	}
	ok := r.recv(fd)
	r.ms = nil // posted or given back: what recv lent is ms's now
	if !ok {
		return false
	}
	if r.errno != 0 {
		return true
	}
	again := r.n == r.cnt
	var k int
	if on {
		r.finishCoalesced()
		k = r.split(ms)
		again = again || r.next < r.nread
	} else {
		k = r.finishPlain(ms)
		if r.lazy && r.watch.add(k, r.cnt) {
			r.lazy = false
			r.switchToGRO() // between reads, as readBatch does
			again = true
		}
	}
	wait := r.eachHandle(k)
	return again || !wait
}

// recv runs when the socket may be readable; returning false waits for readiness again. The
// buffers of a plain read with lent buffers (r.ms) are taken for the system call and given back
// if it finds the socket empty, so that the wait holds none.
func (r *mmsgReader) recv(fd uintptr) bool {
	r.calls.Add(1)
	if r.ms != nil {
		r.post(r.ms)
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.cnt), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.ms != nil {
				r.unpost(r.ms)
			}
			return false
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// Limits of one UDP_SEGMENT message. The kernel refuses more than 64 segments
// (UDP_MAX_SEGMENTS), and the whole payload must fit one IP packet: 65535 bytes less the IPv4
// and UDP headers (IPv6 would allow 20 bytes more; one bound for both keeps it simple).
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65535 - 20 - 8
)

// segmentCmsg is a control message carrying the UDP_SEGMENT segment size, laid out as
// CMSG_SPACE(sizeof(uint16)) bytes: the header is followed directly by its data.
type segmentCmsg struct {
	hdr  unix.Cmsghdr
	size uint16
	_    [6]byte
}

// mmsgWriter sends with sendmmsg. With UDP generic segmentation offload (GSO, Linux 4.18),
// consecutive datagrams of a batch for the same peer and of the same size, the last of them
// possibly shorter, go as one message whose iovecs are the datagrams, with a UDP_SEGMENT
// control message giving the size: the kernel builds one large packet and cuts it into
// datagrams only at the end of its stack (or the NIC does), so a run of up to 64 datagrams
// costs one traversal of the stack instead of one each. That traversal was most of the send
// cost. The receiver sees ordinary datagrams.
//
// The datagrams stay in their pooled buffers: the iovecs point at them, and the kernel
// gathers them as it copies anyway, so coalescing costs no copy in user space.
type mmsgWriter struct {
	rc        syscall.RawConn
	family    int
	connected bool // send without addresses
	// gso is whether the socket's writers coalesce datagrams, shared by all of them: a refusal
	// says something about the socket's route or device, not about one batch.
	gso *atomic.Bool
	mmsgHeaders
	cmsgs     [maxBatch]segmentCmsg
	segs      [maxBatch]int // datagrams in hdrs[i]
	cnt, sent int           // messages in hdrs, messages done
	first     syscall.Errno
	refused   syscall.Errno         // a GSO message failed with this; nothing from it on was sent
	fn        func(fd uintptr) bool // w.send, bound once

	// failGSO, when set, fails every GSO message with this error without a system call: a
	// test hook standing in for a device that refuses segmentation offload.
	failGSO syscall.Errno
}

func (w *mmsgWriter) writeBatch(ms []message) error {
	var first error
	for len(ms) > 0 {
		k := w.build(ms, w.gso.Load())
		w.sent, w.first, w.refused = 0, 0, 0
		if err := w.rc.Write(w.fn); err != nil {
			return err
		}
		if w.first != 0 && first == nil {
			first = os.NewSyscallError("sendmmsg", w.first)
		}
		if w.refused != 0 {
			// Send the refused message's datagrams and the rest one by one from now on.
			// Those before it are in the socket; from it on nothing is, so nothing is sent
			// twice or skipped.
			w.gso.Store(false)
			k = 0
			for i := range w.sent {
				k += w.segs[i]
			}
		}
		ms = ms[k:]
	}
	return first
}

// build fills the headers for as many datagrams from ms[0] on as one system call takes, and
// returns how many that is.
func (w *mmsgWriter) build(ms []message, gso bool) int {
	w.grow(min(len(ms), maxBatch))
	nmsg, ndg := 0, 0
	for ndg < len(ms) && ndg < maxBatch {
		segs := 1
		if gso {
			segs = gsoRun(ms[ndg:min(len(ms), maxBatch)], w.connected)
		}
		for j := ndg; j < ndg+segs; j++ {
			b := ms[j].buf.bytes()
			w.iovs[j].Base = &b[0]
			w.iovs[j].SetLen(len(b))
		}
		h := &w.hdrs[nmsg]
		h.Len = 0
		h.Hdr = unix.Msghdr{Iov: &w.iovs[ndg]}
		h.Hdr.SetIovlen(segs)
		if !w.connected {
			h.Hdr.Name = (*byte)(unsafe.Pointer(&w.names[nmsg]))
			h.Hdr.Namelen = w.putSockaddr(&w.names[nmsg], ms[ndg].ap)
		}
		if segs > 1 {
			c := &w.cmsgs[nmsg]
			c.hdr.Level = unix.IPPROTO_UDP
			c.hdr.Type = unix.UDP_SEGMENT
			c.hdr.SetLen(unix.CmsgLen(2))
			c.size = uint16(ms[ndg].buf.n)
			h.Hdr.Control = (*byte)(unsafe.Pointer(c))
			h.Hdr.SetControllen(unix.CmsgSpace(2))
		}
		w.segs[nmsg] = segs
		nmsg++
		ndg += segs
	}
	w.cnt = nmsg
	return ndg
}

// gsoRun returns how many datagrams from ms[0] on one UDP_SEGMENT message can carry: those
// for ms[0]'s peer and of its size, and at most one shorter one to end the run, since the
// kernel cuts the payload into pieces of the segment size and only the last may be short.
func gsoRun(ms []message, connected bool) int {
	size := ms[0].buf.n
	total := size
	n := 1
	for n < len(ms) && n < gsoMaxSegments {
		l := ms[n].buf.n
		if l > size || total+l > gsoMaxBytes || (!connected && ms[n].ap != ms[0].ap) {
			break
		}
		total += l
		n++
		if l < size {
			break
		}
	}
	return n
}

// send runs when the socket is writable. sendmmsg reports an error only for the first message
// of a call; that message is skipped (UDP is lossy anyway, the core retransmits; for a
// coalesced message, all its datagrams) and the rest sent. A coalesced message the kernel
// refuses for its segmentation instead ends the call, and writeBatch sends its datagrams again
// without GSO.
func (w *mmsgWriter) send(fd uintptr) bool {
	for w.sent < w.cnt {
		var n uintptr
		var e syscall.Errno
		if w.failGSO != 0 && w.segs[w.sent] > 1 {
			e = w.failGSO
		} else {
			n, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.sent])), uintptr(w.cnt-w.sent), 0, 0, 0)
		}
		switch e {
		case 0:
			w.sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			if w.segs[w.sent] > 1 && gsoRefusal(e) {
				w.refused = e
				return true
			}
			if w.first == 0 {
				w.first = e
			}
			w.sent++
		}
	}
	return true
}

// gsoRefusal reports the errors with which the kernel refuses a UDP_SEGMENT message for its
// segmentation rather than for its content or destination, so the same datagrams can go
// without it: EIO when the route's device cannot checksum segments (or IPsec transforms
// them), EINVAL when the socket has UDP checksums turned off (SO_NO_CHECK), and EMSGSIZE or
// EINVAL (it depends on the kernel version) when a segment does not fit the route's MTU, which a
// plain send may still fragment.
func gsoRefusal(e syscall.Errno) bool {
	return e == unix.EIO || e == unix.EINVAL || e == unix.EMSGSIZE
}

// putSockaddr writes ap in the socket's address family and returns the length.
func (w *mmsgWriter) putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	addr := ap.Addr()
	if w.family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], ap.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.As16()}
	if z := addr.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		} else if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.Scope_id = uint32(id)
		}
	}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	return unix.SizeofSockaddrInet6
}

func parseSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		addr := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			// Link-local peers only; the zone string costs an allocation.
			addr = addr.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(addr, port)
	}
	return netip.AddrPort{}
}

// noForce: a *FORCE socket option failed for want of CAP_NET_ADMIN, and the process no longer
// tries them (two system calls per socket saved).
var noForce atomic.Bool

// tuneSocket sets up a socket the package opened: with size > 0 it asks for size-byte kernel
// buffers, with the *FORCE options first (they ignore net.core.rmem_max/wmem_max but need
// CAP_NET_ADMIN), and with df it sets the DF bit on everything the socket sends and stops the
// kernel from applying its own path MTU estimate (IP_PMTUDISC_PROBE, and the IPv6 equivalent):
// path MTU discovery (RFC 8899, session/pmtud.go) needs a datagram too big for the path to be
// dropped, not fragmented, and a probe larger than the kernel's cached estimate to be sent at
// all. A send larger than the device's MTU fails with EMSGSIZE, which the session sees as a lost
// probe. family (unix.AF_INET, AF_INET6, or 0 if unknown) spares an IPv4 socket the IPv6 option,
// which it refuses; an IPv6 one gets both, for the IPv4-mapped peers of a dual-stack socket.
// Errors are ignored.
//
// It returns the buffer sizes granted and how many socket options it set or read (the system
// calls it made). Linux grants twice the size asked for (it counts its bookkeeping; socket(7)),
// which we pass on as is: a *FORCE option that succeeded granted exactly that, so only a size
// that rmem_max/wmem_max may have capped, or one near the kernel's bounds, is read back.
func tuneSocket(u *net.UDPConn, size int, df bool, family int) (rcv, snd, calls int) {
	rc, err := u.SyscallConn()
	if err != nil {
		return 0, 0, 0
	}
	set := func(fd uintptr, level, opt, v int) error {
		calls++
		return unix.SetsockoptInt(int(fd), level, opt, v)
	}
	get := func(fd uintptr, opt int) int {
		calls++
		v, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
		return v
	}
	// The kernel keeps at least SOCK_MIN_RCVBUF/SNDBUF (a few KiB) and doubles INT_MAX/2 at most.
	exact := size >= 64<<10 && size <= 1<<30
	buffer := func(fd uintptr, force, plain int) int {
		if !noForce.Load() {
			err := set(fd, unix.SOL_SOCKET, force, size)
			if err == nil && exact {
				return 2 * size
			}
			if err == nil {
				return get(fd, plain)
			}
			if errors.Is(err, unix.EPERM) {
				noForce.Store(true)
			}
		}
		_ = set(fd, unix.SOL_SOCKET, plain, size)
		return get(fd, plain)
	}
	_ = rc.Control(func(fd uintptr) {
		if size > 0 {
			rcv = buffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF)
			snd = buffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)
		} else {
			rcv, snd = get(fd, unix.SO_RCVBUF), get(fd, unix.SO_SNDBUF)
		}
		if df {
			_ = set(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
			if family != unix.AF_INET {
				_ = set(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
			}
		}
	})
	return rcv, snd, calls
}

// socketBuffers returns the kernel buffer sizes of u (SO_RCVBUF, SO_SNDBUF), 0 if unknown.
func socketBuffers(u *net.UDPConn) (rcv, snd int) {
	rc, err := u.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = rc.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}
