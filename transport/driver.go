package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/session"
)

// sendBatch is how many datagrams a driver polls from the core before it hands them to the
// socket in one batch write. 64 is what one sendmmsg takes (maxBatch), and with UDP GSO it lets
// a run of full-size datagrams fill one coalesced message (54 of 1200 bytes fit the 64 KiB
// limit): with 32, runs were cut at 32 datagrams and bulk goodput on loopback was 4-14% lower
// (two interleaved benchmark runs on a noisy machine).
const sendBatch = 64

// inbox is the bounded queue of received datagrams between the socket reader and one
// connection's driver. The reader appends a run of datagrams at a time (those of one batch read
// that belong to the connection), and the driver takes everything queued at once by swapping
// slices. So the hand-over costs a few lock operations per batch rather than channel operations
// per datagram, and a burst that queued while the driver was busy is handled in one step.
//
// A full queue pushes back rather than drops once the connection is established (see
// Conn.deliver): the reader waits for the driver to take the queue, and meanwhile the kernel's
// socket buffer (Config.SocketBuffer) holds what arrives. Dropping there was self-inflicted loss
// that the congestion controller read as congestion (issue 8: 0.2-1.8% of a loopback bulk
// transfer), though the sender was within the flow-control window we advertised.
type inbox struct {
	mu      sync.Mutex // guards bufs, closed and waiting
	bufs    []*packetBuf
	closed  bool // the driver has stopped: put takes nothing
	waiting bool // the reader waits for room: take and close signal room

	limit int           // Config.InboundQueueLen
	ready chan struct{} // 1 slot: holds a token while bufs is non-empty
	room  chan struct{} // 1 slot: the queue was emptied or closed while the reader waited
	// established: the handshake is complete, so a full queue makes the reader wait rather
	// than drop (Conn.deliver).
	established atomic.Bool
}

// put queues as many of pbs as fit. It reports how many it took (the caller keeps the rest),
// how many are queued now, and whether the driver has stopped. With wait, a put that cannot take
// everything marks the reader as waiting, so that the next take or close signals room.
func (q *inbox) put(pbs []*packetBuf, wait bool) (n, queued int, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, 0, true
	}
	n = min(len(pbs), q.limit-len(q.bufs))
	if n > 0 && len(q.bufs) == 0 {
		// Under mu, so that ready holds a token exactly while bufs is non-empty: the driver
		// never wakes to an empty queue.
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	q.bufs = append(q.bufs, pbs[:n]...)
	if wait && n < len(pbs) {
		q.waiting = true
	}
	return n, len(q.bufs), false
}

// putIdle queues pbs without waking the driver, if the queue is empty and open: the caller
// holds the connection's sendSem and runs the step itself, which takes them (stepOnReader).
func (q *inbox) putIdle(pbs []*packetBuf) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.bufs) > 0 || len(pbs) > q.limit {
		return false
	}
	q.bufs = append(q.bufs, pbs...)
	return true
}

// take returns everything queued and keeps spare, emptied, as the new queue.
func (q *inbox) take(spare []*packetBuf) []*packetBuf {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.ready: // the token for what we take now
	default:
	}
	got := q.bufs
	q.bufs = spare[:0]
	q.signalRoomLocked()
	return got
}

// signalRoomLocked wakes a reader waiting for room.
func (q *inbox) signalRoomLocked() {
	if q.waiting {
		q.waiting = false
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
}

// close makes put refuse everything from now on and returns what is still queued.
func (q *inbox) close() []*packetBuf {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	got := q.bufs
	q.bufs = nil
	q.signalRoomLocked()
	return got
}

// deliver queues datagrams for the driver. It reports how many it took (the rest were dropped
// and counted; the caller keeps their buffers), whether the driver is falling behind (a
// quarter of its queue is waiting), and whether it queued any for the driver rather than
// stepping the core itself (stepOnReader). Called by the socket reader.
//
// When the queue is full, an established connection's datagrams wait: the reader blocks until
// the driver takes the queue, which it does within one step, so a sender within the
// flow-control window never loses a datagram here. The socket's other connections wait as well
// for as long, as they would for a reader busy with this one's datagrams; their datagrams wait
// in the socket's buffer. During the handshake a full queue drops (counted in
// Stats.DroppedQueueFull): an address that has not proven itself does not get to hold up the
// reader.
func (c *Conn) deliver(pbs ...*packetBuf) (n int, behind, queued bool) {
	if c.stepOnReader(pbs) {
		return len(pbs), false, false
	}
	wait := c.in.established.Load()
	for {
		k, queued, closed := c.in.put(pbs[n:], wait)
		n += k
		if k > 0 {
			c.kick(0) // a worker takes the queue (and makes room for what waits)
		}
		if closed || n == len(pbs) || !wait {
			if !closed && n < len(pbs) {
				c.dropQueueFull.Add(uint64(len(pbs) - n))
			}
			return n, queued >= max(c.in.limit/4, 1), n > 0
		}
		<-c.in.room
	}
}

// driverState is the scratch space of a step: the batch write's messages and writer, and the
// datagrams taken from the inbox. Whoever holds a connection's sendSem (its worker, an inline
// send, the socket reader: work.go, inline.go) uses one, taken from the endpoint's pool for as
// long as it holds sendSem, so idle connections hold none.
type driverState struct {
	ep  *endpoint // the endpoint w writes to: see Conn.Migrate
	w   batchWriter
	out []message    // datagrams polled from the core, sent in one batch write
	in  []*packetBuf // datagrams taken from the inbox, recycled after each step
}

// follow makes d write to ep, the connection's endpoint now: Migrate may have moved it to a new
// socket since d was last used.
func (d *driverState) follow(ep *endpoint) {
	if d.ep == ep {
		return
	}
	if d.w == nil || ep.sock.rebind == nil || !ep.sock.rebind(d.w) {
		d.w = ep.sock.newWriter()
	}
	d.ep = ep
}

// stepSending runs the core once, with sendSem held (Conn.drive, tryLockSend): it feeds it every datagram
// queued and the timers that are due, then sends all the core has to send, and wakes the
// application. All of that happens under one acquisition of mu (more only if more than sendBatch
// datagrams are due), which the application's Reads and Writes contend for: the fewer times a
// step takes it, the less either side waits, and on a fast path whether the worker keeps up
// with the socket reader, or its inbox overflows, depends on this per-step cost. It sets the
// timer to the core's next deadline (fired: the timer has fired since it was last set) and
// reports whether the core is done.
func (c *Conn) stepSending(d *driverState, fired bool) (done bool) {
	d.follow(c.endpoint())
	c.mu.Lock()
	if fired {
		c.armed = time.Time{}
	}
	now := time.Now()
	// Taken only now, the queue includes what arrived while we waited for mu.
	d.in = c.in.take(d.in)
	for _, pb := range d.in {
		// The core copies what it keeps and holds no reference to the datagram after it returns
		// (session.Conn.HandleDatagram), so the buffer goes back to the pool after this step.
		c.handleDatagramLocked(now, pb, d)
	}
	if t := c.core.NextTimeout(); !t.IsZero() && !now.Before(t) {
		c.core.HandleTimeout(now)
	}
	for {
		n := c.pollLocked(now, d.out)
		last := n < len(d.out) // the core has nothing more to send now
		// The core says whom what it just did concerns (session.Events). The driver polls
		// anyway and sets the timer: it wakes only the application.
		ev := c.core.TakeEvents()
		closed := false
		if last {
			c.noteTerminatedLocked()
			closed = c.err != nil
			// TakeEvents has just computed the deadline (NextTimeout walks every timer of the
			// core: issue 8 counted 14 calls per request/response).
			c.armLocked(c.core.TakenTimeout())
			done = c.core.Done()
		}
		c.mu.Unlock()
		// Wake readers and writers only now: woken while we held mu, they would block on it.
		c.wakeApp(ev)
		if len(d.in) > 0 {
			d.ep.recvPool.putAll(d.in)
			d.in = d.in[:0]
		}
		if n > 0 {
			c.send(d, n)
		}
		if last {
			// A closed core had its CLOSE frame (if any) polled by now, and it is in the
			// socket: Close may return.
			if closed {
				c.finalSentOnce.Do(func() { close(c.finalSent) })
			}
			return done
		}
		c.mu.Lock()
		now = time.Now()
	}
}

// pollLocked fills out with datagrams from the core and returns how many.
func (c *Conn) pollLocked(now time.Time, out []message) int {
	n := 0
	for n < len(out) {
		pb := c.endpoint().sendPool.get()
		k, ok := c.core.PollDatagram(now, pb.b)
		if !ok {
			c.endpoint().sendPool.put(pb)
			break
		}
		pb.n = k
		// d.out comes from the endpoint's pool: address every datagram (see tryLockSend).
		out[n] = message{buf: pb, ap: c.peer.ap, addr: c.peer.addr}
		n++
	}
	return n
}

// send writes d.out[:n] to the socket, without mu, and recycles the buffers, all under one
// acquisition of the pool's lock.
func (c *Conn) send(d *driverState, n int) {
	if err := d.w.writeBatch(d.out[:n]); err != nil {
		c.sendErrors.Add(1)
		d.ep.socketError(err) // an ICMP error reported on a send
	}
	d.ep.sendPool.putSent(d.out[:n])
}

// finish runs when the core is done, or terminate stopped it, on the worker.
func (c *Conn) finish() {
	c.mu.Lock()
	c.noMigrate = true // from now on the endpoint stays as it is
	c.mu.Unlock()
	ep := c.endpoint()
	// The inbox closes first: release may close the socket, which waits for the socket reader
	// to leave its read, and the reader may be waiting inside it for room in this inbox
	// (deliver; readEach handles datagrams inside the read).
	for _, pb := range c.in.close() {
		ep.recvPool.put(pb)
	}
	ep.release(c)
	c.mu.Lock()
	c.noteTerminatedLocked()
	if c.err == nil { // the core is done only after a terminal error; this is belt and braces
		c.err = net.ErrClosed
		close(c.done)
	}
	c.mu.Unlock()
	c.finishObserving()
	c.finalSentOnce.Do(func() { close(c.finalSent) })
	c.signal()
	c.readDeadline.Stop()
	c.writeDeadline.Stop()
	close(c.driverDone)
}

// signal wakes the reader, writer and closer waiting for the core, if any.
func (c *Conn) signal() {
	for _, ch := range [...]chan struct{}{c.readable, c.writable, c.acked, c.datagrams} {
		notify(ch)
	}
}

// wakeApp wakes exactly whom the core's events concern: a Read if there is something new to
// read, a Write or a Close waiting for acknowledgements if send space grew or everything was
// acknowledged, ReceiveDatagram if a datagram came; all of them when the connection ended.
func (c *Conn) wakeApp(ev session.Events) {
	if ev.Has(session.EventReadable | session.EventClosed) {
		notify(c.readable)
	}
	if ev.Has(session.EventWritable | session.EventClosed) {
		notify(c.writable)
		notify(c.acked)
	}
	if ev.Has(session.EventDatagram | session.EventClosed) {
		notify(c.datagrams)
	}
}

// wakeFor acts on events taken by someone other than the driver: it wakes the application as
// wakeApp does, and the driver if the core has something to send or a new deadline for its
// timer.
func (c *Conn) wakeFor(ev session.Events) {
	c.wakeApp(ev)
	if ev.Has(session.EventShouldSend | session.EventTimerMoved) {
		c.poke()
	}
}

// notify leaves a token in the 1-slot channel ch, if it has none.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// poke tells the worker that the application changed something (wrote, read, closed).
func (c *Conn) poke() { c.kick(0) }
