//go:build linux

package transport

import (
	"encoding/binary"
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
// mmsgWriter); the returned *atomic.Bool reports whether they still do.
func newMmsgIO(u *net.UDPConn, connected, gso bool) (batchReader, func() batchWriter, *atomic.Bool, bool) {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil, nil, nil, false
	}
	family := -1
	if cerr := rc.Control(func(fd uintptr) {
		family, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		// Kernels before 4.18 do not know the option and fail with ENOPROTOOPT. Reading it
		// changes nothing: the segment size comes with each send, as a control message.
		if gso {
			_, gerr := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gso = gerr == nil
		}
	}); cerr != nil || err != nil || (family != unix.AF_INET && family != unix.AF_INET6) {
		return nil, nil, nil, false
	}
	r := &mmsgReader{rc: rc}
	r.fn = r.recv
	gsoOn := new(atomic.Bool)
	gsoOn.Store(gso)
	newWriter := func() batchWriter {
		w := &mmsgWriter{rc: rc, family: family, connected: connected, gso: gsoOn}
		w.fn = w.send
		return w
	}
	return r, newWriter, gsoOn, true
}

// gsoDisabledByEnv reports whether the environment turns UDP GSO off for the process
// (TLSGRAM_DISABLE_GSO=1, see Config.DisableGSO).
func gsoDisabledByEnv() bool {
	v, _ := strconv.ParseBool(os.Getenv("TLSGRAM_DISABLE_GSO"))
	return v
}

// mmsgHeaders is the scratch space of one batch system call: message headers, one iovec per
// message, and room for an IPv4 or IPv6 socket address per message. The pointers in hdrs
// point into the same struct and into the caller's packet buffers, which the garbage collector
// does not move.
type mmsgHeaders struct {
	hdrs  [maxBatch]unix.Mmsghdr
	iovs  [maxBatch]unix.Iovec
	names [maxBatch]unix.RawSockaddrInet6
}

type mmsgReader struct {
	rc syscall.RawConn
	mmsgHeaders
	cnt   int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // r.recv, bound once so a read allocates nothing
}

func (r *mmsgReader) readBatch(ms []message) (int, error) {
	r.cnt = min(len(ms), maxBatch)
	for i := 0; i < r.cnt; i++ {
		b := ms[i].buf.b
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
	}
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	for i := 0; i < r.n; i++ {
		m := &ms[i]
		m.buf.n = int(r.hdrs[i].Len)
		m.trunc = r.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		m.ap = parseSockaddr(&r.names[i])
	}
	return r.n, nil
}

// recv runs when the socket is readable; returning false waits for readiness again.
func (r *mmsgReader) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.cnt), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
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

// setSocketBuffers asks for size-byte kernel buffers, with the *FORCE options first (they
// ignore net.core.rmem_max/wmem_max but need CAP_NET_ADMIN), and returns what was granted.
// Linux reports twice the requested value (it counts its bookkeeping), which we pass on as is.
func setSocketBuffers(u *net.UDPConn, size int) (rcv, snd int) {
	rc, err := u.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = rc.Control(func(fd uintptr) {
		if size > 0 {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, size)
			}
		}
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}
