package transport

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// A dialled connection's socket is its own, so a Read waiting for data may read the socket
// itself instead of waiting for the reader goroutine to read it, step the core and wake it: a
// reply then reaches the application with no goroutine hand-off at all (issue 8: the last one
// on the receiving side of a dialled connection). The reader goroutine stays, for when nobody
// reads: to take ACKs, keep-alives and the peer's CLOSE while the application is busy or idle.
//
// Who reads the socket holds ownRead.role: the reader goroutine from the start; a Read takes it
// over by setting want and interrupting the goroutine's read (a read deadline in the past, which
// wakes a read blocked in the netpoller without a system call); the goroutine then parks until
// the role comes back. A Read gives the role up when it returns, but the goroutine gets it back
// only once no Read took it for ownReadGrace: a request/response application reads again within
// microseconds, and so never pays for the take-over.
//
// A Read reading the socket must still return when what it waits for happens elsewhere: a step
// on another goroutine made data readable or ended the connection (signal), Close, a read
// deadline set meanwhile. Those interrupt it the same way (interruptRead), and a Read with a
// read deadline leaves the socket to the goroutine.

// ownReadGrace is how long the socket stays with no reader after a Read returned before the
// reader goroutine takes it back. Datagrams arriving meanwhile wait in the socket's buffer.
// Much shorter than any timer they could matter to (the ACK delay, 25 ms by default; a PTO),
// much longer than an application takes between receiving a reply and reading the next one.
const ownReadGrace = time.Millisecond

// ownRead is the reading role of a dialled connection's own socket.
type ownRead struct {
	role chan struct{} // 1 slot: held by whoever reads the socket; the reader goroutine first
	back chan struct{} // 1 slot: the role handed back to the parked reader goroutine
	done chan struct{} // closed once reading has ended for good (stopReading)
	rs   *readState    // the reading state; whoever holds role uses it

	want    atomic.Bool // a Read waits for the role: the goroutine yields it after this read
	byRead  atomic.Bool // a Read holds the role
	blocked atomic.Bool // the role holder is in (or about to enter) the read system call
	kick    atomic.Bool // a Read holding the role should look at what changed (interruptRead)
	past    atomic.Bool // the socket's read deadline may be in the past: reset it before reading
	grace   *time.Timer // gives the role back to the reader goroutine (onGrace)
	ep      *endpoint

	// Datagrams read by Reads and by the reader goroutine, for tests.
	byReads, byLoop atomic.Uint64
}

// enableOwnRead lets Reads of ep's connection read ep's socket. Called before ep starts.
func (ep *endpoint) enableOwnRead() {
	o := &ownRead{
		role: make(chan struct{}, 1),
		back: make(chan struct{}, 1),
		done: make(chan struct{}),
		ep:   ep,
	}
	o.role <- struct{}{} // the reader goroutine's, from its start
	o.rs = ep.newReadState()
	o.grace = time.AfterFunc(time.Hour, o.onGrace)
	o.grace.Stop()
	ep.own = o
}

// aLongTimeAgo is a read deadline that has passed: it makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// readBatch reads into rs for the holder of the role, unless it has been asked to look up
// (kick, want): then, as when an interrupt cut the read short, it reports no datagram.
func (o *ownRead) readBatch(ep *endpoint, rs *readState) (int, error) {
	if o.past.Swap(false) {
		_ = ep.sock.pc.SetReadDeadline(time.Time{})
	}
	// blocked is set before kick and want are looked at, and interrupt sets those before it
	// looks at blocked: either the check here sees the request, or interrupt sees blocked and
	// cuts the read short.
	o.blocked.Store(true)
	if o.kick.Swap(false) || o.want.Load() {
		o.blocked.Store(false)
		return 0, nil
	}
	n, err := ep.sock.reader.readBatch(rs.ms[:rs.posted])
	o.blocked.Store(false)
	if o.byRead.Load() {
		o.byReads.Add(uint64(n))
	} else {
		o.byLoop.Add(uint64(n))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		o.past.Store(true)
		return 0, nil
	}
	return n, err
}

// interrupt cuts short a read the role holder is blocked in.
func (o *ownRead) interrupt() {
	if o.blocked.Load() {
		o.past.Store(true)
		_ = o.ep.sock.pc.SetReadDeadline(aLongTimeAgo)
	}
}

// interruptRead makes a Read reading the socket look at what changed, if one does.
func (o *ownRead) interruptRead() {
	o.kick.Store(true)
	if o.byRead.Load() {
		o.interrupt()
	}
}

// acquire takes the role for a Read, taking it from the reader goroutine if that holds it. It
// reports false once reading has ended.
func (o *ownRead) acquire() bool {
	select {
	case o.role <- struct{}{}:
	default:
		o.want.Store(true)
		o.interrupt()
		select {
		case o.role <- struct{}{}:
		case <-o.done:
			o.want.Store(false)
			return false
		}
		o.want.Store(false)
	}
	if isClosedChan(o.done) {
		<-o.role
		return false
	}
	o.byRead.Store(true)
	o.kick.Swap(false) // what it was about is looked at now, before the first read
	return true
}

// release gives the role up after a Read; the reader goroutine gets it back after ownReadGrace
// unless a Read takes it first.
func (o *ownRead) release() {
	o.byRead.Store(false)
	<-o.role
	o.grace.Reset(ownReadGrace)
}

// onGrace hands the role back to the reader goroutine, if no Read holds it.
func (o *ownRead) onGrace() {
	select {
	case o.role <- struct{}{}:
	default:
		return // a Read holds it, and arms the timer again when it lets go
	}
	if isClosedChan(o.done) {
		<-o.role // the goroutine has returned
		return
	}
	o.back <- struct{}{} // the goroutine has yielded, and took the last token: back is empty
}

// yield is the reader goroutine's part, after each batch: if a Read wants the role, it gives
// it up and waits until it comes back. It reports whether reading has ended meanwhile.
func (o *ownRead) yield() (stopped bool) {
	if !o.want.Load() {
		return false
	}
	<-o.role
	select {
	case <-o.back:
		return false
	case <-o.done:
		return true
	}
}

// stop marks reading ended (by the role holder, in stopReading): a parked goroutine returns,
// and Reads wait for data the usual way.
func (o *ownRead) stop() {
	close(o.done)
	o.grace.Stop()
}

// readOwnSocket is a Read's wait for data on a dialled connection: it reads the socket until a
// step made something readable (the step may be its own: a reply the socket brought), or
// something else a Read waits for happened. It reports false if the Read must wait the usual
// way instead (not the socket's only user, a read deadline, reading ended), true when the Read
// should look at the core again.
func (c *Conn) readOwnSocket(a *bio) bool {
	ep := c.endpoint()
	o := ep.own
	if o == nil || c.readDeadline.IsSet() || isClosedChan(c.closing) || isClosedChan(a.closed) {
		return false
	}
	if !o.acquire() {
		return false
	}
	defer o.release()
	for {
		select {
		case <-c.readable:
			return true
		default:
		}
		if c.readDeadline.IsSet() || isClosedChan(c.closing) || isClosedChan(a.closed) {
			return true
		}
		if ep.readOnce(o.rs) {
			return true // the socket is closed: the core has ended, or Migrate moved us
		}
	}
}

// interruptRead makes a Read that reads the socket look at what changed.
func (c *Conn) interruptRead() {
	if o := c.endpoint().own; o != nil {
		o.interruptRead()
	}
}
