package session

import (
	"strings"
	"time"
)

// Events says what calls into the core changed that someone outside it waits for, so the
// transport wakes exactly who must run and restates no core rule (as quinn-proto's poll() does).
// Every entry point adds to the set — HandleDatagram, HandleDatagramFrom, HandleTimeout,
// PollDatagram, Write, Read, CloseWrite, Close, SetHandshakeComplete, HoldReceiveWindow,
// SendDatagram, Migrate, IssueConnID — and TakeEvents returns it and starts a new one. A caller
// that takes the events after each call (or batch of calls) under the same lock misses nothing.
//
// An event may be reported when its waiter then finds nothing to do (a Writable that grew the
// send space by less than the writer waits for, a ShouldSend the congestion window then holds
// back), never omitted when the waiter has something to do.
type Events uint8

const (
	// EventReadable: Read returns something it did not before — in-order bytes, or io.EOF.
	EventReadable Events = 1 << iota
	// EventWritable: SendSpace grew, or AllAcked became true.
	EventWritable
	// EventShouldSend: something was queued to send — stream data or a FIN, a retransmission
	// or probe, a control frame (a MAX_DATA that reading made due, CLOSE, …), or an ACK due
	// now — so PollDatagram should be called until it returns false. It may still find the
	// congestion window or the pacer closed; NextTimeout and the next ACK cover that.
	EventShouldSend
	// EventTimerMoved: NextTimeout differs from what it was at the last TakeEvents.
	EventTimerMoved
	// EventClosed: the connection ended (Err is no longer nil): everyone waiting must look.
	EventClosed
	// EventDatagram: a datagram arrived for ReceiveDatagram.
	EventDatagram
)

// Has reports whether e contains any of f.
func (e Events) Has(f Events) bool { return e&f != 0 }

var eventNames = [...]string{"Readable", "Writable", "ShouldSend", "TimerMoved", "Closed", "Datagram"}

func (e Events) String() string {
	if e == 0 {
		return "0"
	}
	var b strings.Builder
	for i, name := range eventNames {
		if e&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// eventState is the core's side of Events.
type eventState struct {
	pending Events
	timer   time.Time // NextTimeout at the last TakeEvents
	closed  bool      // EventClosed was reported
}

// TakeEvents returns what changed since the last call and clears it.
func (c *Conn) TakeEvents() Events {
	ev := c.ev.pending
	c.ev.pending = 0
	if t := c.NextTimeout(); !t.Equal(c.ev.timer) {
		ev |= EventTimerMoved
		c.ev.timer = t
	}
	if c.err != nil && !c.ev.closed {
		ev |= EventClosed
		c.ev.closed = true
	}
	return ev
}

// TakenTimeout is NextTimeout as the last TakeEvents computed it. Right after TakeEvents it is
// NextTimeout, without walking the timers again: for a caller that takes the events and then
// sets its timer.
func (c *Conn) TakenTimeout() time.Time { return c.ev.timer }

// observed is the state that entry points handling datagrams and timers compare before and
// after, to report what the application waits for.
type observed struct {
	readable int
	readDone bool // every byte before the FIN is readable: Read ends in io.EOF
	space    int
	allAcked bool
	dgrams   int
}

func (c *Conn) observe() observed {
	return observed{
		readable: c.rx.buf.Readable(),
		readDone: c.readDone(),
		space:    c.SendSpace(),
		allAcked: c.tx.allAcked(),
		dgrams:   c.dgram.in.n,
	}
}

// readDone reports whether the stream's end is known and everything before it is readable.
func (c *Conn) readDone() bool {
	size, ok := c.rx.buf.FinKnown()
	return ok && c.rx.buf.ReadOffset()+uint64(c.rx.buf.Readable()) == size
}

// noteChanges adds the events that the state changes since before call for, and ShouldSend
// when anything is queued to send.
func (c *Conn) noteChanges(before observed) {
	after := c.observe()
	if after.readable > before.readable || after.readDone && !before.readDone {
		c.ev.pending |= EventReadable
	}
	if after.space > before.space || after.allAcked && !before.allAcked {
		c.ev.pending |= EventWritable
	}
	if after.dgrams > before.dgrams {
		c.ev.pending |= EventDatagram
	}
	c.noteSendPending()
}

// noteSendPending reports ShouldSend if PollDatagram has anything to send (window and pacer
// permitting) or the receive window is due to be raised.
func (c *Conn) noteSendPending() {
	if c.sendPending() {
		c.ev.pending |= EventShouldSend
	}
}

func (c *Conn) sendPending() bool {
	switch c.state {
	case stateClosing:
		return c.closeSend
	case stateOpen:
	default:
		return false
	}
	return (c.rx.ackPending && c.rx.ackNow) || c.rec.probes > 0 || c.wantsToSend() ||
		c.rx.windowUpdateDue(c.receiveWindowHeld())
}

// receiveWindowHeld reports whether the receive window is still the handshake's: see
// receiver.updateWindow.
func (c *Conn) receiveWindowHeld() bool { return !c.handshakeComplete || c.rx.windowHeld }
