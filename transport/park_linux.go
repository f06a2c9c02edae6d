//go:build linux

package transport

import (
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The reader of a dialled connection's own socket parks while the socket is quiet (issue 8): it
// was the one goroutine an idle session pair kept, and its stack (6-10 KiB, grown by the core
// steps it runs) was the largest part of the pair's memory. A parked reader has ended; the
// socket is watched by readerPoller, one epoll instance for the whole process, which starts a
// new reader when a datagram arrives (or the kernel reports an error on the socket). The epoll
// instance is itself watched by the runtime's network poller, so while sockets are parked one
// goroutine waits on it, parked like any other network read, and none while none are.
//
// A reader parks after parkAfter..2·parkAfter without a datagram (endpoint.readLoop): a
// connection with traffic keeps its reader, and its datagrams take the path they took before;
// only the first datagram after a quiet spell takes the detour through the poller.

// readerPoller watches the sockets of parked readers.
var readerPoller poller

// poller is an epoll instance with the endpoints whose sockets are registered in it. Each
// socket is registered once, with EPOLLONESHOT, at the first park of its reader, re-armed at
// every later one, and removed when the endpoint closes its socket (forget).
type poller struct {
	initOnce sync.Once
	epfd     int
	wakefd   int             // an eventfd in the set: wakes the waiter to see it has nothing left to do
	rc       syscall.RawConn // of epfd, for waiting on it through the runtime's poller

	mu      sync.Mutex           // guards the fields below
	ok      bool                 // set up and working; if not, readers do not park
	eps     map[uint64]*endpoint // by token: the registered sockets
	next    uint64               // the last token given out; wakeToken is 0
	armed   int                  // registered sockets whose reader is parked
	running bool                 // a goroutine runs wait
}

const wakeToken = 0

func (p *poller) init() {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, wakeToken)
	if unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev) != nil || unix.SetNonblock(epfd, true) != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return
	}
	// A non-blocking descriptor handed to os.NewFile joins the runtime's poller; an epoll
	// instance is readable while it has events ready.
	f := os.NewFile(uintptr(epfd), "tlsgram-epoll")
	if f.SetReadDeadline(time.Time{}) != nil { // os.ErrNoDeadline: the runtime could not poll it
		_ = f.Close()
		_ = unix.Close(wakefd)
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		_ = unix.Close(wakefd)
		return
	}
	// f stays open for the life of the process: the package-level poller keeps rc.
	p.epfd, p.wakefd, p.rc, p.ok = epfd, wakefd, rc, true
	p.eps = make(map[uint64]*endpoint)
}

// setToken and token store a registration's token in, and read it from, an epoll event.
func setToken(ev *unix.EpollEvent, t uint64) {
	ev.Fd, ev.Pad = int32(uint32(t)), int32(uint32(t>>32))
}

func tokenOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// park arms the watch on ep's socket, fd, registering it on ep's first park (ep.parkToken is
// then set). The caller holds ep.mu and marks ep's reader parked if park reports true.
func (p *poller) park(ep *endpoint, fd int) bool {
	p.initOnce.Do(p.init)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ok {
		return false
	}
	op := unix.EPOLL_CTL_MOD
	if ep.parkToken == 0 {
		p.next++
		ep.parkToken = p.next
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT}
	setToken(&ev, ep.parkToken)
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		if op == unix.EPOLL_CTL_ADD {
			ep.parkToken = 0
		}
		return false
	}
	p.eps[ep.parkToken] = ep
	ep.parkArmed = true
	p.armed++
	if !p.running {
		p.running = true
		go p.wait()
	}
	return true
}

// forget removes ep's socket, fd, from the set, before the socket is closed. The caller holds
// ep.mu.
func (p *poller) forget(ep *endpoint, fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(p.eps, ep.parkToken)
	ep.parkToken = 0
	if ep.parkArmed {
		ep.parkArmed = false
		p.armed--
		if p.armed == 0 && p.running {
			_, _ = unix.Write(p.wakefd, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // wait ends: nothing to watch
		}
	}
}

// wait waits for parked sockets to become readable and starts their readers, until none is
// parked.
func (p *poller) wait() {
	var evs [32]unix.EpollEvent
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		for {
			n, werr = unix.EpollWait(int(fd), evs[:], 0)
			if werr != unix.EINTR {
				return n > 0 || werr != nil
			}
		}
	}
	for {
		if err := p.rc.Read(poll); err != nil || werr != nil {
			// Not expected: epoll_wait fails only on bad arguments. Wake every parked
			// reader; they find their sockets as they are, and park no more.
			p.failAll()
			return
		}
		for i := range evs[:n] {
			t := tokenOf(&evs[i])
			if t == wakeToken {
				var b [8]byte
				_, _ = unix.Read(p.wakefd, b[:])
				continue
			}
			p.mu.Lock()
			ep := p.eps[t]
			fired := ep != nil && ep.parkArmed
			if fired {
				ep.parkArmed = false
				p.armed--
			}
			p.mu.Unlock()
			if fired {
				ep.unpark()
			}
		}
		p.mu.Lock()
		if p.armed == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// failAll turns parking off and wakes every parked reader.
func (p *poller) failAll() {
	p.mu.Lock()
	p.ok = false
	eps := make([]*endpoint, 0, len(p.eps))
	for _, ep := range p.eps {
		if ep.parkArmed {
			ep.parkArmed = false
			eps = append(eps, ep)
		}
	}
	p.armed, p.running = 0, false
	p.mu.Unlock()
	for _, ep := range eps {
		ep.unpark()
	}
}

// socketFD returns the descriptor of ep's socket, or -1.
func (ep *endpoint) socketFD() int {
	fd := -1
	if ep.sock.udp == nil {
		return fd
	}
	rc, err := ep.sock.udp.SyscallConn()
	if err != nil {
		return fd
	}
	_ = rc.Control(func(s uintptr) { fd = int(s) })
	return fd
}

// canPark reports whether ep's reader may park: it is a dialled connection's own socket, read
// with recvmmsg.
func (ep *endpoint) canPark() bool {
	_, ok := ep.sock.reader.(*mmsgReader)
	return ep.single && ok
}

// parkLocked hands ep's socket to readerPoller and reports whether it took it; the reader then
// ends, and the poller starts another. Must hold ep.mu.
func (ep *endpoint) parkLocked() bool {
	if ep.closed {
		return false
	}
	fd := ep.socketFD()
	if fd < 0 || !readerPoller.park(ep, fd) {
		return false
	}
	ep.parked = true
	return true
}

// forgetLocked takes ep's socket out of readerPoller before it is closed, and ends the parked
// reader, if any: readerDone is closed. Must hold ep.mu.
func (ep *endpoint) forgetLocked() {
	if ep.parkToken == 0 {
		return
	}
	readerPoller.forget(ep, ep.socketFD())
	if ep.parked {
		ep.parked = false
		close(ep.readerDone)
	}
}

// unpark starts the reader of a parked endpoint again.
func (ep *endpoint) unpark() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.parked {
		ep.parked = false
		go ep.readLoop()
	}
}
