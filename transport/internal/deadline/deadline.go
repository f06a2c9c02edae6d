// Package deadline implements the read and write deadlines of tlsgram's connections and of its
// in-memory test network: a channel that closes when the deadline passes and is replaced when the
// deadline is moved, as net.Pipe does.
package deadline

import (
	"sync"
	"time"
)

// Deadline is one direction's deadline (read or write) of a connection. Waiters select on wait(), a
// channel closed once the deadline has passed; setting a new deadline replaces the channel, so a
// waiter blocked on an old deadline is released by a deadline moved into the past (nettest's
// PresentTimeout) and a future deadline takes effect without waking anyone.
//
// It follows net.Pipe's pipeDeadline; the timer is a time.AfterFunc, which runs on virtual time
// inside a testing/synctest bubble.
type Deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
	notify chan struct{} // if not nil, signalled (1 slot) after cancel closes: see MakeNotify
}

// Make returns a deadline that is not set.
func Make() Deadline {
	return Deadline{cancel: make(chan struct{})}
}

// MakeNotify returns a deadline that is not set and that, whenever it passes, leaves a token in
// the 1-slot channel notify (if it has none) after closing Wait's channel. A waiter that waits on
// notify alone, for other reasons too, checks Expired after each token: it cannot miss the
// deadline, since the token comes after the state it checks.
func MakeNotify(notify chan struct{}) Deadline {
	return Deadline{cancel: make(chan struct{}), notify: notify}
}

// expire closes cancel and signals notify.
func (d *Deadline) expire(cancel chan struct{}) {
	close(cancel)
	if d.notify != nil {
		select {
		case d.notify <- struct{}{}:
		default:
		}
	}
}

// Set arms the deadline at t; the zero time means none.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // Wait for the running timer callback to close the channel
	}
	d.timer = nil

	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { d.expire(cancel) })
		return
	}
	if !closed {
		d.expire(d.cancel)
	}
}

// Wait returns a channel that is closed when the deadline passes.
func (d *Deadline) Wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// Expired reports whether the deadline has passed.
func (d *Deadline) Expired() bool {
	return isClosed(d.Wait())
}

// Stop releases the timer; the deadline keeps its current state.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
