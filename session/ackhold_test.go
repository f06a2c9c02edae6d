package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deliver moves every datagram from a to b and returns how many there were.
func deliver(a, b *Conn, now time.Time, buf []byte) int {
	n := 0
	for {
		k, ok := a.PollDatagram(now, buf)
		if !ok {
			return n
		}
		b.HandleDatagram(now, buf[:k])
		n++
	}
}

// TestImmediateAckRidesOnReply pins issue 8's ACK policy: a request whose tail asks for an
// immediate ACK is answered with one datagram that carries both the reply and the ACK, not an
// ACK-only datagram first; the held ACK is due within ackHold (NextTimeout says so), and goes at
// once when the application reads again and finds nothing.
func TestImmediateAckRidesOnReply(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	got := make([]byte, 64)
	for deliver(c, s, now, buf)+deliver(s, c, now, buf) > 0 { // settle
	}

	// Request → reply: one datagram each way, and the reply acknowledges the request.
	_, err := c.Write([]byte("request"))
	require.NoError(t, err)
	require.Equal(t, 1, deliver(c, s, now, buf))
	require.Zero(t, deliver(s, c, now, buf), "an ACK-only datagram before the application replied")
	require.False(t, s.AckDue())
	require.Equal(t, now.Add(ackHold), s.NextTimeout(), "the held ACK's deadline")
	n, err := s.Read(got)
	require.NoError(t, err)
	require.Equal(t, "request", string(got[:n]))
	_, err = s.Write([]byte("reply"))
	require.NoError(t, err)
	require.Equal(t, 1, deliver(s, c, now, buf))
	require.Zero(t, c.Stats().BytesInFlight, "the reply acknowledged the request")

	// The client reads the reply and then reads again, finding nothing: no reply is coming from
	// it, so its held ACK is due at once.
	n, err = c.Read(got)
	require.NoError(t, err)
	require.Equal(t, "reply", string(got[:n]))
	require.False(t, c.AckDue())
	n, err = c.Read(got)
	require.NoError(t, err)
	require.Zero(t, n)
	require.True(t, c.AckDue())
	require.Equal(t, 1, deliver(c, s, now, buf))
	require.Zero(t, s.Stats().BytesInFlight)

	// An application that neither reads nor writes: the ACK goes alone at the hold's end.
	_, err = c.Write([]byte("request 2"))
	require.NoError(t, err)
	require.Equal(t, 1, deliver(c, s, now, buf))
	require.Zero(t, deliver(s, c, now.Add(ackHold-time.Microsecond), buf))
	later := now.Add(ackHold)
	s.HandleTimeout(later)
	require.Equal(t, 1, deliver(s, c, later, buf))
	require.Zero(t, c.Stats().BytesInFlight)
}
