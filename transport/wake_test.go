package transport

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/session"
)

// TestWakeForEvents pins whom each core event wakes: readers only for Readable or Closed,
// writers (and a Close waiting for acknowledgements) only for Writable or Closed,
// ReceiveDatagram only for Datagram or Closed, and the driver only when the core has something
// to send or a new deadline. The transport restates no core rule; it only routes events.
func TestWakeForEvents(t *testing.T) {
	type woken struct{ reader, writer, acked, datagram, driver bool }
	for _, tc := range []struct {
		ev   session.Events
		want woken
	}{
		{0, woken{}},
		{session.EventReadable, woken{reader: true}},
		{session.EventWritable, woken{writer: true, acked: true}},
		{session.EventDatagram, woken{datagram: true}},
		{session.EventShouldSend, woken{driver: true}},
		{session.EventTimerMoved, woken{driver: true}},
		{session.EventClosed, woken{reader: true, writer: true, acked: true, datagram: true}},
		{session.EventReadable | session.EventShouldSend, woken{reader: true, driver: true}},
	} {
		wake := func(f func(*Conn, session.Events)) woken {
			c := &Conn{
				readable: make(chan struct{}, 1), writable: make(chan struct{}, 1), acked: make(chan struct{}, 1),
				datagrams: make(chan struct{}, 1),
			}
			// As if a worker ran: a poke then only marks a step pending (kick).
			c.work.bits.Store(workRunning)
			f(c, tc.ev)
			poked := c.work.bits.Load()&workPending != 0
			return woken{len(c.readable) == 1, len(c.writable) == 1, len(c.acked) == 1, len(c.datagrams) == 1, poked}
		}
		require.Equal(t, tc.want, wake((*Conn).wakeFor), "%v", tc.ev)
		app := tc.want
		app.driver = false // the driver's own wakeApp never pokes itself
		require.Equal(t, app, wake((*Conn).wakeApp), "%v", tc.ev)
	}
}
