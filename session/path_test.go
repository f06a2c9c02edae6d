package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMigrationUsesSpareConnIDsAndValidates: each end announces a spare connection ID; when the
// client migrates it addresses the server by the server's spare, the server moves (only) on the
// authenticated non-probing datagram from the new address, answers to the client's spare,
// validates the path with PATH_CHALLENGE, and stays within 3× of what the new address sent until
// the PATH_RESPONSE arrives.
func TestMigrationUsesSpareConnIDsAndValidates(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	require.True(t, c.IssueConnID(0xc2))
	require.True(t, s.IssueConnID(0x5a))
	require.False(t, s.IssueConnID(0x5a), "an ID issued twice")
	for range 3 {
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}

	// The datagram a migrating client sends first: a PING to the server's spare ID.
	require.True(t, c.Migrate(now, false))
	require.Equal(t, uint64(0x5a), c.RemoteConnID())
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	moved := append([]byte(nil), buf[:n]...)

	// A replay of it (from yet another address) is a duplicate and moves nothing.
	require.True(t, s.HandleDatagramFrom(now, moved, false))
	require.False(t, s.HandleDatagramFrom(now, moved, false))
	require.Equal(t, uint64(0xc2), s.RemoteConnID(), "the server did not move to the client's spare ID")
	require.Equal(t, uint64(1), s.Stats().PathChanges)

	// Unvalidated: the server sends at most 3× what the new address sent, and a PATH_CHALLENGE.
	_, err := s.Write(make([]byte, 64<<10))
	require.NoError(t, err)
	sent := 0
	for {
		n, ok := s.PollDatagram(now, buf)
		if !ok {
			break
		}
		sent += n
		c.HandleDatagram(now, buf[:n])
	}
	require.LessOrEqual(t, sent, 3*2*len(moved), "more than 3× what the new address sent (the datagram and its replay)")
	require.Zero(t, s.Stats().PathValidations)

	// The client's PATH_RESPONSE validates the path, and the server sends freely again.
	for range 5 {
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}
	require.Equal(t, uint64(1), s.Stats().PathValidations)
	require.Zero(t, c.Stats().Drops.WrongConnID, "the client dropped datagrams to its spare ID")
	require.Zero(t, s.Stats().Drops.WrongConnID)
}

// TestOldDatagramDoesNotMove: a genuine datagram from a new address that is older than the
// newest one received (a copy an attacker delayed and replays from elsewhere) does not move the
// server (RFC 9000 §9.3).
func TestOldDatagramDoesNotMove(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	_, err := c.Write([]byte("one"))
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	older := append([]byte(nil), buf[:n]...)
	_, err = c.Write([]byte("two"))
	require.NoError(t, err)
	n, ok = c.PollDatagram(now, buf)
	require.True(t, ok)
	s.HandleDatagram(now, buf[:n]) // the newer one arrives first, from the current address
	require.False(t, s.HandleDatagramFrom(now, older, true), "an older datagram moved the path")
	require.Zero(t, s.Stats().PathChanges)
}

// TestLostPathChallengeHasACopy: the server's first PATH_CHALLENGE for a new path goes in two
// consecutive packets, so that losing one does not leave the path unvalidated until the loss is
// detected — after a move the RTT starts over at 333 ms, and TestNATRebinding's second
// rebinding came first at 2% loss. The copy alone validates the path, at once.
func TestLostPathChallengeHasACopy(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	require.True(t, c.IssueConnID(0xc2))
	require.True(t, s.IssueConnID(0x5a))
	for range 3 {
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}
	require.True(t, c.Migrate(now, false))
	_, err := c.Write(make([]byte, 1000)) // budget for the server's answers at the new address
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	require.True(t, s.HandleDatagramFrom(now, buf[:n], false))

	_, err = s.Write(make([]byte, 200))
	require.NoError(t, err)
	_, ok = s.PollDatagram(now, buf) // the first, with the challenge, is lost
	require.True(t, ok)
	require.True(t, s.pathFramesDue(), "the challenge's copy is due")
	n, ok = s.PollDatagram(now, buf)
	require.True(t, ok)
	c.HandleDatagram(now, buf[:n])
	deliver(c, s, now, buf)
	require.Equal(t, uint64(1), s.Stats().PathValidations)
}
