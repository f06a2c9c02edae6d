package transport

import (
	"sync"
	"time"
)

// deadline is one direction's deadline (read or write) of a Conn. Waiters select on wait(), a
// channel closed once the deadline has passed; setting a new deadline replaces the channel, so a
// waiter blocked on an old deadline is released by a deadline moved into the past (nettest's
// PresentTimeout) and a future deadline takes effect without waking anyone.
//
// It follows net.Pipe's pipeDeadline; the timer is a time.AfterFunc, which runs on virtual time
// inside a testing/synctest bubble.
type deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline {
	return deadline{cancel: make(chan struct{})}
}

// set arms the deadline at t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // wait for the running timer callback to close the channel
	}
	d.timer = nil

	closed := isClosedChan(d.cancel)
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
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	return isClosedChan(d.wait())
}

// stop releases the timer; the deadline keeps its current state.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
