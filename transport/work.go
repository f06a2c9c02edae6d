package transport

import (
	"sync"
	"sync/atomic"
	"time"
)

// A connection has no goroutine of its own while it is idle (issue 8: an idle session pair held
// three goroutines, two of them drivers parked on their channels and timers). Its core is
// stepped by whoever has a reason to, under sendSem:
//   - the socket reader, for a lone datagram at an idle connection (stepOnReader);
//   - a writer, for a small Write into an idle connection (sendInline);
//   - a worker goroutine, started on demand by kick and ended once nothing is pending: for bursts
//     the reader hands over (the worker batches, and the reader stays free for the socket's other
//     connections), for what the application asks of the core (poke), and for the core's timers.
//
// The timers need no goroutine either: Conn.timer is a time.AfterFunc timer, whose callback
// becomes the worker when it fires. The runtime keeps all timers in per-P heaps already, and
// resetting one costs what resetting the driver's channel timer did; a heap of our own per
// endpoint would add a lock shared by every connection of a listener to each arm.

// Bits of Conn.work.
const (
	workRunning = 1 << iota // a worker goroutine runs (or the connection has finished)
	workPending             // the worker must step once more
	workFired               // the timer fired since the worker last stepped
	workStop                // terminate: step once more and finish
	workParked              // the running worker lingers, parked on workState.wake
)

// workerLinger is how long a worker that ran out of work stays parked, waiting for the next,
// before it ends. A bulk transfer steps its core at every ACK and pacer tick, a few to tens of
// microseconds apart on loopback: a worker that ended at once was started again for each, and a
// new goroutine grows its stack to the step's depth by copying it (runtime.newstack) every time.
// That, the goroutine's creation and exit, and the driverState taken from and given back to the
// pool per step cost 10-12% of a loopback bulk transfer's CPU (issue 8, profile of
// BenchmarkThroughput at 24751f7: newstack 4-5%, goexit0 2-5%, sync.Pool.pin 3-4%). Parked,
// a worker holds its stack and one driverState: a millisecond after the last step an idle
// connection is back to no goroutine.
const workerLinger = time.Millisecond

// workState is a connection's worker state (bits above), and its worker, Conn.drive.
type workState struct {
	bits  atomic.Uint32
	drive func()
	// wake (1 slot) takes the token of the kick that unparked the worker (want); made with
	// the first worker that parks, under sendSem.
	wake chan struct{}
	// linger times a parked worker (park); made by the first worker that parks. The
	// connection's own, not the pooled driverState's: dialled connections share their
	// driverStates across endpoints, and a timer made in one synctest bubble would make a wait
	// in another non-durable (TestSynctestBurstOneStep hung).
	linger *time.Timer
}

// kick tells the worker to step the core, with extra among workFired and workStop. It starts
// the worker if none runs.
func (c *Conn) kick(extra uint32) {
	if c.work.want(extra) {
		c.workers.Add(1)
		go c.work.drive() // a func value bound once: a go statement on c.drive would allocate
	}
}

// stepHere is poke for a goroutine that may do the worker's job itself: it steps the core on
// the calling goroutine, unless a worker runs already (which then steps once more, as for
// poke). Close uses it: it changes the core, then waits for what the step sends (the end of the
// stream, then the CLOSE frame), so starting a worker for each cost a goroutine and a wake-up
// of the other processor, for nothing.
func (c *Conn) stepHere() {
	if c.work.want(0) {
		c.run(false) // no lingering: the caller has its own work to go back to
	}
}

// onTimer is the timer's callback. It runs on a goroutine of its own, which becomes the worker
// if none runs.
func (c *Conn) onTimer() {
	if c.work.want(workFired) {
		c.workers.Add(1)
		c.drive()
	}
}

// want marks a step pending, with extra, and reports whether the caller must run the worker:
// none was running. A parked worker is woken: the kick that clears workParked sends it the
// one token it waits for.
func (w *workState) want(extra uint32) (start bool) {
	for {
		old := w.bits.Load()
		bits := (old | workPending | extra | workRunning) &^ workParked
		if bits == old {
			return false // the running worker will step: nothing new to tell it
		}
		if w.bits.CompareAndSwap(old, bits) {
			if old&workParked != 0 {
				w.wake <- struct{}{} // room: the worker took the last token before it parked
			}
			return old&workRunning == 0
		}
	}
}

// next takes the pending step, if any, and reports it with the bits that came with it. If
// nothing is pending, the worker parks: next sets workParked and reports ok false, and the
// caller lingers (park).
func (w *workState) next() (bits uint32, ok bool) {
	for {
		old := w.bits.Load()
		if old&workPending == 0 {
			if w.bits.CompareAndSwap(old, old|workParked) {
				return 0, false
			}
			continue
		}
		// workStop stays set: a connection told to stop does not start another worker, and a
		// finished one keeps workRunning set forever.
		if w.bits.CompareAndSwap(old, old&^(workPending|workFired)) {
			return old, true
		}
	}
}

// park waits, parked, for a kick, at most workerLinger, and reports whether one came. If none
// did, the worker ends: park clears workRunning. t is the worker's linger timer, stopped.
func (w *workState) park(t *time.Timer) (woken bool) {
	t.Reset(workerLinger)
	select {
	case <-w.wake:
		t.Stop()
		return true
	case <-t.C:
	}
	return w.unpark()
}

// unpark ends a parked worker: it clears workParked and workRunning and reports false, unless a
// kick unparked the worker first; then it takes that kick's token and reports true (step on).
func (w *workState) unpark() (woken bool) {
	for {
		old := w.bits.Load()
		if old&workParked == 0 {
			// A kick unparked us after all, and sends its token: take it.
			<-w.wake
			return true
		}
		if w.bits.CompareAndSwap(old, old&^(workParked|workRunning)) {
			return false
		}
	}
}

// drive is the worker: it steps the core while steps are pending, and finishes the connection
// once the core is done or terminate stopped it. While it runs, kick only marks a step
// pending, so a burst of hand-overs and pokes costs one goroutine; out of work, it lingers
// (workerLinger) for the next before it ends, keeping its driverState.
func (c *Conn) drive() { c.run(true) }

// run is drive, on a goroutine that lingers out of work or (stepHere) one that does not.
func (c *Conn) run(linger bool) {
	var d *driverState
	defer func() {
		if d != nil {
			d.ep.putDriverState(d)
		}
	}()
	for {
		// sendSem first: hand-overs and pokes that come while someone else steps or sends
		// are then taken by this step, not left pending for an empty one after it.
		c.sendSem <- struct{}{}
		if d == nil {
			d = c.endpoint().driverState()
		}
		if c.work.wake == nil {
			c.work.wake = make(chan struct{}, 1) // before next can set workParked
		}
		bits, ok := c.work.next()
		if !ok {
			<-c.sendSem
			if !linger {
				if c.work.unpark() {
					continue
				}
				return
			}
			if c.work.linger == nil {
				c.work.linger = time.NewTimer(workerLinger)
				c.work.linger.Stop()
			}
			if c.work.park(c.work.linger) {
				continue
			}
			return
		}
		if bits&workStop == 0 {
			c.steps.Add(1)
		}
		done := c.stepSending(d, bits&workFired != 0)
		<-c.sendSem
		if done || bits&workStop != 0 {
			c.finish()
			return
		}
	}
}

// tryLockSend takes sendSem if nobody holds it, and returns a driverState from the endpoint's
// pool for the step or send: a connection holds its batch buffers only while it steps or sends
// (or its worker lingers, see drive), so an idle one holds none. It returns nil if someone holds
// sendSem. unlockSend gives both back.
func (c *Conn) tryLockSend() *driverState {
	select {
	case c.sendSem <- struct{}{}:
		return c.endpoint().driverState()
	default:
		return nil
	}
}

func (c *Conn) unlockSend(d *driverState) {
	d.ep.putDriverState(d)
	<-c.sendSem
}

// driverState takes a driverState for a step on ep's socket.
func (ep *endpoint) driverState() *driverState {
	if ep.single {
		// A dialled connection's endpoint is its own, and its pool was a new one for every Dial:
		// each took 2-3 driverStates (a sync.Pool hands what one processor put to another only
		// through its shared queue), 18 KB a handshake with their writers, a tenth of what a
		// handshake allocated (BenchmarkHandshake). They come from one pool for all dialled
		// endpoints instead, their writers pointed at this socket (follow).
		if d, ok := dialledStates.Get().(*driverState); ok {
			d.follow(ep)
			return d
		}
	} else if d, ok := ep.states.Get().(*driverState); ok {
		return d
	}
	return &driverState{ep: ep, w: ep.sock.newWriter(), out: make([]message, sendBatch)}
}

// dialledStates recycles the driverStates of dialled connections' endpoints (ep.single).
var dialledStates sync.Pool

// putDriverState recycles d, which a step may have moved to ep (driverState.follow). A step
// leaves no datagram in d: send clears out, and stepSending recycles in.
func (ep *endpoint) putDriverState(d *driverState) {
	if ep.single {
		d.ep = nil // a pooled state does not keep the endpoint alive; follow sets it again
		dialledStates.Put(d)
		return
	}
	ep.states.Put(d)
}
