//go:build linux

package transport

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
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
func newMmsgIO(u *net.UDPConn, connected bool) (batchReader, func() batchWriter, bool) {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	family := -1
	if cerr := rc.Control(func(fd uintptr) {
		family, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); cerr != nil || err != nil || (family != unix.AF_INET && family != unix.AF_INET6) {
		return nil, nil, false
	}
	r := &mmsgReader{rc: rc}
	r.fn = r.recv
	newWriter := func() batchWriter {
		w := &mmsgWriter{rc: rc, family: family, connected: connected}
		w.fn = w.send
		return w
	}
	return r, newWriter, true
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

type mmsgWriter struct {
	rc        syscall.RawConn
	family    int
	connected bool // send without addresses
	mmsgHeaders
	cnt, sent int
	first     syscall.Errno
	fn        func(fd uintptr) bool // w.send, bound once
}

func (w *mmsgWriter) writeBatch(ms []message) error {
	var first error
	for len(ms) > 0 {
		w.cnt = min(len(ms), maxBatch)
		for i := 0; i < w.cnt; i++ {
			b := ms[i].buf.bytes()
			w.iovs[i].Base = &b[0]
			w.iovs[i].SetLen(len(b))
			h := &w.hdrs[i]
			h.Len = 0
			h.Hdr = unix.Msghdr{Iov: &w.iovs[i]}
			if !w.connected {
				h.Hdr.Name = (*byte)(unsafe.Pointer(&w.names[i]))
				h.Hdr.Namelen = w.putSockaddr(&w.names[i], ms[i].ap)
			}
			h.Hdr.SetIovlen(1)
		}
		w.sent, w.first = 0, 0
		if err := w.rc.Write(w.fn); err != nil {
			return err
		}
		if w.first != 0 && first == nil {
			first = os.NewSyscallError("sendmmsg", w.first)
		}
		ms = ms[w.cnt:]
	}
	return first
}

// send runs when the socket is writable. sendmmsg reports an error only for the first message
// of a call; that message is skipped (UDP is lossy anyway, the core retransmits) and the rest
// sent.
func (w *mmsgWriter) send(fd uintptr) bool {
	for w.sent < w.cnt {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.sent])), uintptr(w.cnt-w.sent), 0, 0, 0)
		switch e {
		case 0:
			w.sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			if w.first == 0 {
				w.first = e
			}
			w.sent++
		}
	}
	return true
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
