package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEventsString(t *testing.T) {
	require.Equal(t, "0", Events(0).String())
	require.Equal(t, "Readable|ShouldSend|Closed", (EventReadable | EventShouldSend | EventClosed).String())
	require.True(t, (EventReadable | EventClosed).Has(EventClosed|EventWritable))
	require.False(t, EventReadable.Has(EventWritable|EventShouldSend))
}

// evPair drives a pair of cores the way the transport does, but acting only on what TakeEvents
// reports: the application reads only after Readable, writes after Writable once it found the
// send buffer full, and the sender polls only after ShouldSend. An event the core fails to
// report stalls the transfer, and the test fails; an event reported for nothing (a Readable
// with nothing to read, a Writable with no room) is counted as spurious and fails it too.
type evPair struct {
	*pair
	pending   [2]Events
	blocked   [2]bool // the writer found no send space and waits for Writable
	lastTimer [2]time.Time
	stats     struct{ readable, writable, shouldSend, polls, sent int }
}

func (e *evPair) take(i int) {
	c := e.ends[i]
	ev := c.TakeEvents()
	t := c.NextTimeout()
	require.True(e.t, t.Equal(c.TakenTimeout()), "TakenTimeout %v, NextTimeout %v", c.TakenTimeout(), t)
	require.Equal(e.t, !t.Equal(e.lastTimer[i]), ev.Has(EventTimerMoved), "TimerMoved (timer %v → %v)", e.lastTimer[i], t)
	e.lastTimer[i] = t
	e.pending[i] |= ev &^ (EventTimerMoved | EventClosed | EventDatagram)
	if ev.Has(EventClosed) {
		e.t.Fatalf("end %d closed: %v", i, e.ends[i].Err())
	}
}

func (e *evPair) app(i int) {
	c := e.ends[i]
	if !c.HandshakeComplete() {
		c.SetHandshakeComplete(e.now)
		e.take(i)
	}
	if e.pending[i].Has(EventWritable) {
		e.stats.writable++
		require.True(e.t, c.SendSpace() > 0 || c.AllAcked(), "spurious Writable")
		e.pending[i] &^= EventWritable
		e.blocked[i] = false
	}
	if !e.blocked[i] {
		for len(e.out[i]) > 0 && c.SendSpace() > 0 {
			n := min(len(e.out[i]), c.SendSpace(), 7777)
			w, err := c.Write(e.out[i][:n])
			require.NoError(e.t, err)
			e.out[i] = e.out[i][w:]
		}
		e.blocked[i] = len(e.out[i]) > 0
		if len(e.out[i]) == 0 && !e.done[i] {
			c.CloseWrite()
			e.done[i] = true
		}
		e.take(i)
	}
	if e.pending[i].Has(EventReadable) && !e.eof[i] {
		e.stats.readable++
		e.pending[i] &^= EventReadable
		eof := e.eof[i]
		require.True(e.t, e.readAvailable(i) > 0 || e.eof[i] && !eof, "spurious Readable")
		e.take(i)
	}
}

func (e *evPair) send(i int) {
	if !e.pending[i].Has(EventShouldSend) {
		return
	}
	e.stats.shouldSend++
	e.pending[i] &^= EventShouldSend
	c := e.ends[i]
	for {
		e.stats.polls++
		n, ok := c.PollDatagram(e.now, e.buf)
		if !ok {
			break
		}
		e.stats.sent++
		if e.rng.Float64() < e.loss {
			continue
		}
		e.queue = append(e.queue, flight{at: e.now.Add(e.delay), to: 1 - i, data: bytes.Clone(e.buf[:n])})
	}
	e.take(i)
}

func (e *evPair) run(limit time.Duration) {
	end := e.now.Add(limit)
	for e.now.Before(end) {
		for i := range e.ends {
			e.app(i)
			e.send(i)
		}
		if e.eof[0] && e.eof[1] && e.ends[0].AllAcked() && e.ends[1].AllAcked() {
			return
		}
		rest := e.queue[:0]
		for _, f := range e.queue {
			if f.at.After(e.now) {
				rest = append(rest, f)
				continue
			}
			e.ends[f.to].HandleDatagram(e.now, f.data)
			e.take(f.to)
		}
		e.queue = rest
		for i, c := range e.ends {
			if t := c.NextTimeout(); !t.IsZero() && !t.After(e.now) {
				c.HandleTimeout(e.now)
				e.take(i)
			}
		}
		if e.pending[0]|e.pending[1] != 0 {
			continue // act on it at this instant
		}
		next := time.Time{}
		for _, f := range e.queue {
			if next.IsZero() || f.at.Before(next) {
				next = f.at
			}
		}
		for _, c := range e.ends {
			if t := c.NextTimeout(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if next.IsZero() {
			e.t.Fatalf("stalled at %v with no event, datagram or timer: eof=%v in=%d/%d out=%d/%d acked=%v/%v",
				e.now, e.eof, len(e.in[0]), len(e.in[1]), len(e.out[0]), len(e.out[1]), e.ends[0].AllAcked(), e.ends[1].AllAcked())
		}
		e.now = next
	}
	e.t.Fatalf("not done after %v: eof=%v in=%d/%d out=%d/%d", limit, e.eof, len(e.in[0]), len(e.in[1]), len(e.out[0]), len(e.out[1]))
}

// TestEventsDriveATransfer runs transfers, clean and lossy, with a small window and send buffer
// (so flow control and send space stall and resume), acting only on the core's events.
func TestEventsDriveATransfer(t *testing.T) {
	conf := &Config{InitialWindow: 64 << 10, MaxWindow: 128 << 10, SendBuffer: 32 << 10}
	for seed := int64(0); seed < 8; seed++ {
		e := &evPair{pair: newPair(t, conf, seed)}
		e.loss = []float64{0, 0.05, 0.15}[seed%3]
		a := randBytes(e.rng, 600<<10)
		b := randBytes(e.rng, 300<<10)
		e.out[0], e.out[1] = a, b
		e.run(300 * time.Second)
		require.True(t, bytes.Equal(a, e.in[1]), "seed %d: client→server bytes differ", seed)
		require.True(t, bytes.Equal(b, e.in[0]), "seed %d: server→client bytes differ", seed)
		t.Logf("seed %d loss %.2f: %+v", seed, e.loss, e.stats)
	}
}

// withoutTimer drops TimerMoved, which TestEventsDriveATransfer checks on every call.
func withoutTimer(e Events) Events { return e &^ EventTimerMoved }

// TestEventsRequestResponse pins what each step of a request/response reports, so that the
// transport wakes only who must run: the receiver of a request is not told to send (its ACK
// waits for the reply), the requester is told its reply is readable and its data acknowledged,
// a Read that finds nothing releases the held ACK, and Close reports ShouldSend and Closed.
func TestEventsRequestResponse(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	got := make([]byte, 64)
	for deliver(c, s, now, buf)+deliver(s, c, now, buf) > 0 { // settle
	}
	c.TakeEvents()
	s.TakeEvents()

	_, err := c.Write([]byte("request"))
	require.NoError(t, err)
	require.Equal(t, EventShouldSend, withoutTimer(c.TakeEvents()))
	require.Equal(t, 1, deliver(c, s, now, buf))
	require.Equal(t, EventTimerMoved, c.TakeEvents(), "sending armed the PTO, and nothing else changed")
	ev := s.TakeEvents()
	require.Equal(t, EventReadable|EventTimerMoved, ev, "readable, with the held ACK's timer; nothing to send yet")

	n, err := s.Read(got)
	require.NoError(t, err)
	require.Equal(t, "request", string(got[:n]))
	require.Zero(t, s.TakeEvents(), "reading the request changed nothing anyone waits for")
	_, err = s.Write([]byte("reply"))
	require.NoError(t, err)
	require.Equal(t, EventShouldSend, withoutTimer(s.TakeEvents()))
	require.Equal(t, 1, deliver(s, c, now, buf))
	ev = c.TakeEvents()
	require.True(t, ev.Has(EventReadable), "%v", ev)
	require.True(t, ev.Has(EventWritable), "the request was acknowledged: %v", ev)
	require.False(t, ev.Has(EventShouldSend), "%v", ev)

	n, err = c.Read(got)
	require.NoError(t, err)
	require.Equal(t, "reply", string(got[:n]))
	require.Zero(t, withoutTimer(c.TakeEvents()))
	n, err = c.Read(got)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, EventShouldSend, withoutTimer(c.TakeEvents()), "the held ACK goes now")
	require.Zero(t, withoutTimer(c.TakeEvents()), "taken")

	// The held ACK's deadline, when the application neither reads nor writes.
	_, err = c.Write([]byte("request 2"))
	require.NoError(t, err)
	require.Equal(t, 1, deliver(c, s, now, buf)) // the request, with the ACK released above
	s.TakeEvents()
	s.HandleTimeout(now.Add(ackHold))
	require.Equal(t, EventShouldSend|EventTimerMoved, s.TakeEvents())

	s.Close(now, 0, "bye")
	require.Equal(t, EventShouldSend|EventClosed, withoutTimer(s.TakeEvents()))
	require.Zero(t, withoutTimer(s.TakeEvents()), "Closed is reported once")
}

// TestReadReportsMaxDataDue: reading reports ShouldSend exactly when it makes a MAX_DATA due
// (half the window consumed), which the transport used to guess at by counting bytes read.
func TestReadReportsMaxDataDue(t *testing.T) {
	const window = 64 << 10
	c, s, now := handshake(t, &Config{InitialWindow: window, MaxWindow: window})
	buf := make([]byte, MaxDatagramSizeLimit)
	_, err := c.Write(make([]byte, 2*window))
	require.NoError(t, err)
	// A step may send nothing while the sender's pacer waits, so run a fixed span of virtual
	// time rather than until a quiet step.
	for i := 0; i < 500; i++ {
		deliver(c, s, now, buf)
		deliver(s, c, now, buf)
		now = now.Add(time.Millisecond)
		c.HandleTimeout(now)
	}
	limit := s.rx.buf.Limit()
	require.Equal(t, int(limit-s.rx.buf.ReadOffset()), s.Readable(), "the sender filled the window and stopped")
	s.TakeEvents()

	got := make([]byte, 1000)
	due := limit - window/2 // the read offset from which a MAX_DATA is due
	reported := 0
	for s.Readable() > 0 {
		n, err := s.Read(got)
		require.NoError(t, err)
		off := s.rx.buf.ReadOffset()
		ev := s.TakeEvents()
		crossed := off >= due && off-uint64(n) < due
		require.Equal(t, crossed, ev.Has(EventShouldSend), "at offset %d: %v", off, ev)
		if crossed {
			reported++
			peerLimit := c.tx.peerMaxData
			require.Positive(t, deliver(s, c, now, buf), "the MAX_DATA goes out")
			require.Greater(t, c.tx.peerMaxData, peerLimit)
		}
	}
	require.Equal(t, 1, reported)
}
