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

// TestHandshakeAckWaitsForTheRestOfTheFlight: a ClientHello that spans two datagrams, of which
// TLS has read the first half when it asks for more. The rest of the flight is on its way (the
// first datagram did not ask for an immediate ACK), so the server keeps holding its ACK for its
// flight to carry, instead of sending it alone (TestSynctestHandshakeDatagrams in transport
// failed on that race about once in a hundred runs). Once the whole flight has come, a reader
// that finds nothing does release the ACK: no answer is coming then.
func TestHandshakeAckWaitsForTheRestOfTheFlight(t *testing.T) {
	now := t0
	c := NewClient(nil, 0xc1, 0x5e, now)
	s := NewServer(nil, 0x5f, 0xc1, 0x5e, now, false)
	buf := make([]byte, MaxDatagramSizeLimit)
	hello := make([]byte, 2000)
	_, err := c.Write(hello)
	require.NoError(t, err)
	var dgrams [][]byte
	for n, ok := c.PollDatagram(now, buf); ok; n, ok = c.PollDatagram(now, buf) {
		dgrams = append(dgrams, append([]byte(nil), buf[:n]...))
	}
	require.Len(t, dgrams, 2)

	got := make([]byte, len(hello))
	s.HandleDatagram(now, dgrams[0])
	read, err := s.Read(got)
	require.NoError(t, err)
	require.Positive(t, read)
	n, err := s.Read(got[read:]) // TLS blocks mid-record
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, s.AckDue(), "the ACK went alone while the rest of the flight was coming")
	require.Zero(t, s.TakeEvents()&EventShouldSend)
	require.Equal(t, now.Add(ackHold), s.NextTimeout(), "the hold stays bounded")
	_, ok := s.PollDatagram(now, buf)
	require.False(t, ok)

	s.HandleDatagram(now, dgrams[1])
	for n, _ := s.Read(got[read:]); n > 0; n, _ = s.Read(got[read:]) {
		read += n
	}
	require.Equal(t, len(hello), read)
	require.True(t, s.AckDue(), "the whole flight came and TLS asked for more: no answer is coming")

	// The same flight again, to a server whose TLS answers: its flight carries the ACK.
	s = NewServer(nil, 0x5f, 0xc1, 0x5e, now, false)
	s.HandleDatagram(now, dgrams[0])
	n, _ = s.Read(got)
	require.Positive(t, n)
	n, _ = s.Read(got[n:])
	require.Zero(t, n)
	s.HandleDatagram(now, dgrams[1])
	for n, _ := s.Read(got); n > 0; n, _ = s.Read(got) {
	}
	_, err = s.Write([]byte("server flight"))
	require.NoError(t, err)
	require.Equal(t, 1, deliver(s, c, now, buf), "one datagram: the flight, carrying the ACK")
	require.Zero(t, c.Stats().BytesInFlight, "the flight acknowledged the ClientHello")
}

// TestAmplificationLimitedFlightAsksForImmediateAck: a server whose flight is cut short by the
// 3× amplification limit asks for an immediate ACK on the last datagram the limit allows, since
// nothing else follows it until the client answers. The client, whose TLS then blocks in the
// middle of the flight, acknowledges at once instead of holding the ACK for the rest of the
// flight (releaseHeldAck), which would stall the server for ackHold.
func TestAmplificationLimitedFlightAsksForImmediateAck(t *testing.T) {
	now := t0
	c := NewClient(nil, 0xc1, 0x5e, now)
	s := NewServer(nil, 0x5f, 0xc1, 0x5e, now, false)
	buf := make([]byte, 1500)
	_, err := c.Write([]byte("client-hello"))
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	s.HandleDatagram(now, buf[:n])
	_, err = s.Write(make([]byte, 6000)) // more than 3 × 1200
	require.NoError(t, err)
	sent := deliver(s, c, now, buf)
	require.Greater(t, sent, 1)
	require.Positive(t, s.Stats().Drops.Amplification, "the server is amplification-limited")
	for n, _ := c.Read(buf); n > 0; n, _ = c.Read(buf) {
	}
	require.True(t, c.AckDue(), "the client held its ACK for the rest of a flight that cannot come")
	require.Equal(t, 1, deliver(c, s, now, buf))
	require.Positive(t, deliver(s, c, now, buf), "the ACK gave the server credit to go on")
}
