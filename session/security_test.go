package session

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// Regression tests for the findings of issue 7's adversarial review.

// forgeHandshake builds an unauthenticated Handshake packet from a server (CID from) to a client
// (CID to) carrying frames.
func forgeHandshake(to, from, pn uint64, frames func(b []byte) []byte) []byte {
	b := header.AppendHeader(nil, &header.Header{Type: header.TypeHandshake, Version: header.Version1, DstConnID: to, SrcConnID: from, PacketNumber: pn, PNLen: 4})
	return header.Seal(frames(b), 0)
}

func ackOf(smallest, largest, delay uint64) *header.AckFrame {
	var a header.AckFrame
	a.Ranges[0] = header.AckRange{Smallest: smallest, Largest: largest}
	a.NumRanges = 1
	a.Delay = delay
	return &a
}

// TestAckDelayDoesNotWrap (finding 2): an ACK Delay of 2^62−1 µs multiplied into a
// time.Duration wrapped negative, the first RTT sample became an hour, and the idle timeout and
// closing period three PTOs of that. The delay saturates now, and the periods derived from the
// PTO are capped even when a genuine sample is huge.
func TestAckDelayDoesNotWrap(t *testing.T) {
	c := NewClient(nil, 0xc1, 0x5e, t0)
	_, err := c.Write([]byte("client hello"))
	require.NoError(t, err)
	_, h := poll(t, c, t0, make([]byte, 1500))
	now := t0.Add(10 * time.Millisecond)
	c.HandleDatagram(now, forgeHandshake(0xc1, 0x5f, 0, func(b []byte) []byte {
		return header.AppendPing(header.AppendAck(b, ackOf(h.PacketNumber, h.PacketNumber, header.MaxVarint)))
	}))
	require.NoError(t, c.Err())
	require.LessOrEqual(t, c.Stats().SmoothedRTT, 10*time.Millisecond, "the ACK delay wrapped")
	require.LessOrEqual(t, c.NextTimeout().Sub(now), DefaultIdleTimeout)
	c.Close(now, CodeNoError, "")
	require.LessOrEqual(t, c.NextTimeout().Sub(now), time.Second, "closing period")

	// A genuine hour-long first sample (the peer answered after an hour) still cannot hold the
	// connection, or its closing state, for hours.
	c = NewClient(nil, 0xc1, 0x5e, t0)
	_, err = c.Write([]byte("client hello"))
	require.NoError(t, err)
	_, h = poll(t, c, t0, make([]byte, 1500))
	now = t0.Add(time.Hour)
	c.HandleDatagram(now, forgeHandshake(0xc1, 0x5f, 0, func(b []byte) []byte {
		return header.AppendPing(header.AppendAck(b, ackOf(h.PacketNumber, h.PacketNumber, 0)))
	}))
	require.Equal(t, time.Hour, c.Stats().SmoothedRTT)
	require.LessOrEqual(t, c.idleTimeout(), DefaultIdleTimeout+maxPTOPeriod, "idle timeout")
	c.Close(now, CodeNoError, "")
	require.LessOrEqual(t, c.NextTimeout().Sub(now), maxPTOPeriod, "closing period")
}

// TestSkippedNumbersAreUnpredictable (finding 5): the packet numbers skipped to catch optimistic
// ACKs were derived from the two connection IDs, which an attacker sees. They come from
// Config.Rand now: the same IDs give different skips, and the same seeded reader the same ones
// (so simnet runs replay).
func TestSkippedNumbersAreUnpredictable(t *testing.T) {
	firstSkips := func(conf *Config) [4]uint64 {
		c := NewClient(conf, 0xc1, 0x5e, t0)
		var got [4]uint64
		for i := range got {
			pn := c.rec.skip.number(c.rec.skip.next)
			c.rec.skip.commit(c.rec.skip.next, pn)
			got[i] = c.rec.skip.skipped[i]
		}
		return got
	}
	seen := map[[4]uint64]bool{}
	for range 8 {
		seen[firstSkips(nil)] = true
	}
	require.Len(t, seen, 8, "connections with the same IDs skip the same packet numbers")
	seeded := func() *Config { return &Config{Rand: rand.New(rand.NewSource(7))} }
	require.Equal(t, firstSkips(seeded()), firstSkips(seeded()))
}

// TestUntaggedDatagramCannotPoisonPacketNumbers (finding 6): in the client's window between
// its handshake's end and the server's first tagged datagram, an untagged datagram with packet
// number 2^32−1 moved largestRecv, after which every genuine tagged datagram decoded to a wrong
// number and failed its tag.
func TestUntaggedDatagramCannotPoisonPacketNumbers(t *testing.T) {
	c, s, now, buf := tlsLike(t)
	fin, _, app, _ := finishAndRequest(t, c, now, buf, "request")

	f := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: c.LocalConnID(), PacketNumber: 0xffffffff, PNLen: 4})
	f = header.AppendPing(f)
	c.HandleDatagram(now, header.Seal(f, 0))

	s.HandleDatagram(now, fin)
	complete(t, s, now)
	s.HandleDatagram(now, app)
	requireRead(t, s, "finishedrequest")
	_, err := s.Write([]byte("response"))
	require.NoError(t, err)
	for range 3 {
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}
	require.Zero(t, c.Stats().Drops.Integrity, "genuine tagged datagrams failed their tag")
	requireRead(t, c, "response")
}

// TestRefusedUntaggedAckMovesNothing (finding 6): an untagged ACK that covers a tagged packet is
// refused — and must not raise largestAcked either, which made the packet threshold declare
// genuine packets lost (spurious losses and a congestion window cut). An untagged ACK that covers
// only untagged packets retires them and nothing else.
func TestRefusedUntaggedAckMovesNothing(t *testing.T) {
	c, _, now, buf := tlsLike(t)
	_, finHdr, _, appHdr := finishAndRequest(t, c, now, buf, "request")
	for i := range 5 {
		_, err := c.Write(bytes.Repeat([]byte{byte(i)}, 1000))
		require.NoError(t, err)
		poll(t, c, now, buf)
	}
	before := c.rec.largestAcked
	lostBefore := c.Stats().PacketsLost

	f := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: c.LocalConnID(), PacketNumber: 50, PNLen: 4})
	f = header.AppendAck(f, ackOf(appHdr.PacketNumber, c.rec.nextPN-1, 0))
	c.HandleDatagram(now, header.Seal(f, 0))
	require.Equal(t, before, c.rec.largestAcked, "a refused ACK raised largestAcked")
	require.Equal(t, lostBefore, c.Stats().PacketsLost)

	// The untagged Finished may be acknowledged untagged; that retires it and moves nothing else.
	inFlight := c.Stats().BytesInFlight
	f = header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: c.LocalConnID(), PacketNumber: 51, PNLen: 4})
	f = header.AppendAck(f, ackOf(finHdr.PacketNumber, finHdr.PacketNumber, 0))
	c.HandleDatagram(now, header.Seal(f, 0))
	require.Equal(t, before, c.rec.largestAcked)
	require.Less(t, c.Stats().BytesInFlight, inFlight, "the Finished was not retired")
}

// clientInitial returns a client's first datagram (padded to 1200 bytes) and the client.
func clientInitial(t *testing.T) (*Conn, []byte) {
	c := NewClient(nil, 0xc1, 0x5e, t0)
	_, err := c.Write([]byte("client hello"))
	require.NoError(t, err)
	dg, _ := poll(t, c, t0, make([]byte, 1500))
	return c, dg
}

// spoofedInitial is an Initial from client CID 0xc1 to the original DCID 0x5e, pn 1, carrying
// frames and padded to size.
func spoofedInitial(size int, frames func(b []byte) []byte) []byte {
	b := header.AppendHeader(nil, &header.Header{Type: header.TypeInitial, Version: header.Version1, DstConnID: 0x5e, SrcConnID: 0xc1, PacketNumber: 1, PNLen: 4})
	b = frames(b)
	if pad := size - header.TrailerLen - len(b); pad > 0 {
		b = header.AppendPadding(b, pad)
	}
	return header.Seal(b, 0)
}

// TestServerIgnoresUnvalidatedCloseAndAck (finding 1): a spoofed Initial with a ClientHello
// followed by a CLOSE made the server do the TLS work and free the session at once, so the
// half-open count never grew. Before the address is validated, CLOSE and ACK are ignored; every
// Initial under 1200 bytes is dropped, not only the first; and a CLOSE, too, stays within three
// times what the address sent.
func TestServerIgnoresUnvalidatedCloseAndAck(t *testing.T) {
	_, first := clientInitial(t)
	s := NewServer(nil, 0x5f, 0xc1, 0x5e, t0, false)
	s.HandleDatagram(t0, first)
	requireRead(t, s, "client hello")
	s.HandleDatagram(t0, spoofedInitial(1200, func(b []byte) []byte {
		b = header.AppendAck(b, ackOf(0, 0, 0))
		return header.AppendClose(b, CodeNoError, nil)
	}))
	require.NoError(t, s.Err(), "a CLOSE from an unvalidated address closed the session")
	require.Equal(t, uint64(2), s.Stats().Drops.Unvalidated)

	credit := s.ampRecv
	s.HandleDatagram(t0, spoofedInitial(200, func(b []byte) []byte { return header.AppendPing(b) }))
	require.Equal(t, uint64(1), s.Stats().Drops.ShortInitial)
	require.Equal(t, credit, s.ampRecv, "a short Initial bought amplification credit")

	// A server that closes before validation sends its CLOSE within the 3× budget, and none once
	// the budget is spent, however many stray Initials come.
	_, err := s.Write(make([]byte, 100_000))
	require.NoError(t, err)
	buf := make([]byte, 1500)
	for {
		if _, ok := s.PollDatagram(t0, buf); !ok {
			break
		}
	}
	s.Close(t0, CodeTLS, "remote error: tls: unknown certificate authority, and then some more words")
	for {
		if _, ok := s.PollDatagram(t0, buf); !ok {
			break
		}
	}
	require.LessOrEqual(t, s.Stats().BytesSent, 3*s.ampRecv, "the CLOSE broke the 3× limit")
	require.NotZero(t, s.Stats().Drops.Amplification)
}

// TestPacketKeyContextBindsRetry: both ends put the DCID of the client's first Initial and the
// SCID of the Retry it followed into the packet key's exporter context (as QUIC's
// original_destination_connection_id and retry_source_connection_id transport parameters); a
// Retry the server did not send (another SCID) gives the ends different keys.
func TestPacketKeyContextBindsRetry(t *testing.T) {
	c := NewClient(nil, 0xc1, 0x5e, t0)
	s := NewServer(nil, 0x5f, 0xc1, 0x5e, t0, false)
	require.Equal(t, c.PacketKeyContext(), s.PacketKeyContext(), "without a Retry")

	retry := func(scid uint64) []byte {
		b := header.AppendHeader(nil, &header.Header{Type: header.TypeRetry, Version: header.Version1, DstConnID: 0xc1, SrcConnID: scid, Token: []byte("token")})
		return header.Seal(b, 0)
	}
	c.HandleDatagram(t0, retry(0x77))
	s = NewServer(nil, 0x77, 0xc1, 0x77, t0, true)
	s.SetRetried(0x5e)
	require.Equal(t, c.PacketKeyContext(), s.PacketKeyContext(), "after the Retry")

	injected := NewServer(nil, 0x78, 0xc1, 0x78, t0, true)
	injected.SetRetried(0x5e)
	require.NotEqual(t, c.PacketKeyContext(), injected.PacketKeyContext())

	// Having followed the Retry, the client does not switch to another session that one of its
	// Initials made without a token: the two would derive different keys, and the connection
	// would hang (the flood test hit this when Retry started between a ClientHello's two
	// datagrams).
	c.HandleDatagram(t0, forgeHandshake(0xc1, 0x99, 0, func(b []byte) []byte { return header.AppendPing(b) }))
	require.Equal(t, uint64(0x77), c.RemoteConnID())
	require.Equal(t, uint64(1), c.Stats().Drops.WrongConnID)
	c.HandleDatagram(t0, forgeHandshake(0xc1, 0x77, 0, func(b []byte) []byte { return header.AppendPing(b) }))
	require.Equal(t, uint64(1), c.Stats().Drops.WrongConnID, "the Retry's session is followed")
}

var testResetToken = [header.StatelessResetTokenLen]byte{0x5e, 0x5e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x5e}

// resetPair is a completed client and server whose server was given testResetToken and has sent
// it to the client.
func resetPair(t testing.TB) (c, s *Conn, now time.Time) {
	c, s, now = handshake(t, nil)
	s.SetStatelessResetToken(testResetToken)
	buf := make([]byte, 1500)
	for range 3 {
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}
	require.True(t, c.resetKnown, "the client did not learn the token")
	return c, s, now
}

// TestStatelessReset: a client that holds the server's token ends the connection with a
// ResetError on a datagram that ends in it (RFC 9000 §10.3), and on no other; a RESET_TOKEN in
// an untagged datagram is ignored, since anyone can send one.
func TestStatelessReset(t *testing.T) {
	c, _, now := resetPair(t)
	random := bytes.Repeat([]byte{0xa5}, 64)
	other := testResetToken
	other[0] ^= 1
	c.HandleDatagram(now, header.AppendStatelessReset(nil, 40, &other, random))
	require.NoError(t, c.Err(), "a reset with another token")

	c.HandleDatagram(now, header.AppendStatelessReset(nil, header.MinStatelessResetLen, &testResetToken, random))
	var re *ResetError
	require.ErrorAs(t, c.Err(), &re)
	require.True(t, c.Done(), "a reset client sends nothing more")
	_, ok := c.PollDatagram(now, make([]byte, 1500))
	require.False(t, ok)

	// Untagged, the frame is ignored.
	c, _, now = handshake(t, nil)
	f := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: c.LocalConnID(), PacketNumber: 1 << 20, PNLen: 4})
	f = header.AppendResetToken(f, &testResetToken)
	c.HandleDatagram(now, header.Seal(f, 0))
	require.False(t, c.resetKnown, "an untagged RESET_TOKEN was taken")
}

// FuzzClientStatelessReset: whatever arrives, a client that holds a reset token never panics,
// and it ends with a ResetError exactly when the datagram is a stateless reset with its token.
func FuzzClientStatelessReset(f *testing.F) {
	random := bytes.Repeat([]byte{0xa5}, 64)
	f.Add(header.AppendStatelessReset(nil, header.MinStatelessResetLen, &testResetToken, random))
	f.Add(header.AppendStatelessReset(nil, 50, &testResetToken, random))
	f.Add(append([]byte{0x44}, testResetToken[:]...))
	f.Add(bytes.Repeat([]byte{0x40}, 40))
	f.Fuzz(func(t *testing.T, dg []byte) {
		c, _, now := resetPair(t)
		_, ok := header.StatelessResetToken(dg)
		want := ok && bytes.Equal(dg[len(dg)-header.StatelessResetTokenLen:], testResetToken[:])
		c.HandleDatagram(now, dg)
		var re *ResetError
		require.Equal(t, want, errors.As(c.Err(), &re))
	})
}
