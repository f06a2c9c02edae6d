package transport

import "time"

// A small Write into an idle connection is sent by the writing goroutine itself, not handed to
// the driver: a request/response then costs no driver wake-up on the sending side (issue 8: a
// message used to cross app → driver → socket, a goroutine hand-off on the critical path).
// Bulk still goes through the driver, which batches datagrams into one system call (DESIGN.md:
// sending everything inline was measured 2× slower for bulk): a Write goes inline only if the core
// had nothing queued before it and it is at most inlineMax bytes, and then at most inlineBatch
// datagrams leave inline; whatever is left the driver sends.
const (
	inlineMax   = 4 << 10
	inlineBatch = 4
)

// mayInlineLocked reports whether a Write of n bytes may be sent inline, asked before the core
// takes it: the core has no stream data queued, so this Write is all the data there is to send.
// Control frames the core has queued go along in its datagram: the first Write after the
// handshake finds those of its completion (connection IDs, HANDSHAKE_DONE and the reset token
// from a server), and handed to the driver for their sake, the first message and its answer each
// waited for a driver wake-up. That holds for TLS's handshake flights too (the ClientHello, the
// server's flight, the client's Finished: each one Write of at most a few KiB): the handshake
// goroutine sends them itself, instead of waking the driver for each, which put a goroutine
// hand-off on every flight of the handshake.
func (c *Conn) mayInlineLocked(n int) bool {
	return n <= inlineMax && !c.core.StreamQueued() && c.core.Err() == nil
}

// sendInline polls the core and sends what it produces from the calling goroutine. It reports
// false if the worker must run instead: someone else is stepping (it holds sendSem and will see
// the new data, or already polled and must poll again), or the core has more than inlineBatch
// datagrams to send.
func (c *Conn) sendInline() bool {
	d := c.tryLockSend()
	if d == nil {
		return false
	}
	defer c.unlockSend(d)
	d.follow(c.endpoint())
	c.mu.Lock()
	n := c.pollLocked(time.Now(), d.out[:inlineBatch])
	// What the Write queued is being sent and the timer is set below; the rest concerns the
	// application.
	ev := c.core.TakeEvents()
	// The send armed the loss-detection timer (or the pacer set a time to send): move the
	// connection's timer to the core's next deadline, which TakeEvents has just computed.
	c.armLocked(c.core.TakenTimeout())
	c.mu.Unlock()
	c.wakeApp(ev)
	if n > 0 {
		c.send(d, n)
	}
	return n < inlineBatch
}

// readerStepMax is the largest run of datagrams the socket reader handles itself.
const readerStepMax = 2

// stepOnReader runs the driver's step on the socket reader's goroutine, for a lone datagram (at
// most readerStepMax) arriving at an idle connection: nothing queued for the driver, nothing
// queued to send, nobody sending. A reply then reaches the application with one goroutine
// hand-off, not two (reader → driver → application). Bursts and busy connections go to the
// driver as before: it batches, and it keeps the reader free for the socket's other
// connections. It reports whether it took pbs.
func (c *Conn) stepOnReader(pbs []*packetBuf) bool {
	if len(pbs) > readerStepMax {
		return false
	}
	d := c.tryLockSend()
	if d == nil {
		return false // the worker is stepping or someone is sending
	}
	defer c.unlockSend(d)
	c.mu.Lock()
	idle := !c.core.SendQueued() && c.core.Err() == nil
	c.mu.Unlock()
	if !idle || !c.in.putIdle(pbs) {
		return false
	}
	c.steps.Add(1)
	if c.stepSending(d, false) {
		c.poke() // the core is done: the worker finishes the connection
	}
	return true
}

// armLocked sets the connection's timer to next (zero: stop it), unless it is set there
// already. Whoever changed the core calls it with mu held: a step, an inline send. A timer that
// fires while it is being reset may still run its callback: the worker then steps once for
// nothing (the core handles a timeout only once it is due) and re-arms it.
func (c *Conn) armLocked(next time.Time) {
	if next.Equal(c.armed) {
		return // most steps leave the deadline where it was (an ACK deadline, the idle timeout)
	}
	c.armed = next
	if next.IsZero() {
		c.timer.Stop()
	} else {
		c.timer.Reset(time.Until(next))
	}
}
