package session

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func datagramPair(t *testing.T) (*Conn, *Conn, time.Time) {
	c, s, now := handshake(t, nil)
	key := []byte("datagram-key-16b")
	require.NoError(t, c.InstallDatagramKey(key))
	require.NoError(t, s.InstallDatagramKey(key))
	return c, s, now
}

func TestDatagramErrors(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	require.ErrorIs(t, c.SendDatagram([]byte("x")), ErrDatagramNotReady)
	require.Error(t, c.InstallDatagramKey([]byte("short")))

	c, _, _ = datagramPair(t)
	max := c.MaxDatagramPayload()
	require.Greater(t, max, 1100)
	require.NoError(t, c.SendDatagram(make([]byte, max)))
	err := c.SendDatagram(make([]byte, max+1))
	require.ErrorIs(t, err, ErrDatagramTooLarge)
	require.Contains(t, err.Error(), fmt.Sprint(max))
}

// TestDatagramCipherOnFirstUse: a connection that carries no datagram holds no AES-GCM state for
// them (issue 8); the first datagram sent builds the sender's, the first received the receiver's.
func TestDatagramCipherOnFirstUse(t *testing.T) {
	c, s, now := datagramPair(t)
	require.Nil(t, c.dgram.aead)
	require.Nil(t, s.dgram.aead)
	require.NoError(t, c.SendDatagram([]byte("first")))
	buf := make([]byte, MaxDatagramSizeLimit)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	require.NotNil(t, c.dgram.aead)
	require.Zero(t, c.dgram.key, "the key is not kept beside the cipher")
	require.Nil(t, s.dgram.aead)
	s.HandleDatagram(now, buf[:n])
	require.NotNil(t, s.dgram.aead)
	n, ok = s.ReceiveDatagram(buf)
	require.True(t, ok)
	require.Equal(t, "first", string(buf[:n]))
}

// TestDatagramsEncryptedInOrderOnce: datagrams arrive intact, are not readable on the wire, are
// delivered once even when duplicated, in arrival order when reordered, and a lost one is gone
// (not retransmitted).
func TestDatagramsEncryptedInOrderOnce(t *testing.T) {
	c, s, now := datagramPair(t)
	buf := make([]byte, MaxDatagramSizeLimit)
	var wire [][]byte
	for i := range 5 {
		require.NoError(t, c.SendDatagram([]byte(fmt.Sprintf("secret datagram %d", i))))
		n, ok := c.PollDatagram(now, buf)
		require.True(t, ok)
		require.False(t, bytes.Contains(buf[:n], []byte("secret")), "datagram sent in the clear")
		wire = append(wire, append([]byte(nil), buf[:n]...))
	}
	// Lose #1, duplicate #3, deliver #4 before #2 and #3.
	for _, i := range []int{0, 4, 2, 3, 3} {
		s.HandleDatagram(now, wire[i])
	}
	var got []string
	for {
		n, ok := s.ReceiveDatagram(buf)
		if !ok {
			break
		}
		got = append(got, string(buf[:n]))
	}
	require.Equal(t, []string{"secret datagram 0", "secret datagram 4", "secret datagram 2", "secret datagram 3"}, got)
	st := s.Stats()
	require.Equal(t, uint64(4), st.AppDatagramsReceived)
	require.Equal(t, uint64(1), st.Drops.Duplicate)

	// The lost one is not sent again, however long we wait.
	for range 20 {
		now = now.Add(100 * time.Millisecond)
		c.HandleTimeout(now)
		exchange(c, s, now, buf)
	}
	_, ok := s.ReceiveDatagram(buf)
	require.False(t, ok, "a lost datagram was retransmitted")
	require.Equal(t, uint64(5), c.Stats().AppDatagramsSent)
}

// TestDatagramQueuesBounded: a sender that outpaces the path and a reader that does not read
// lose datagrams, counted, instead of queueing them without bound.
func TestDatagramQueuesBounded(t *testing.T) {
	c, s, now := datagramPair(t)
	for range 3 * datagramQueueLen {
		require.NoError(t, c.SendDatagram([]byte("x")))
	}
	require.Equal(t, uint64(2*datagramQueueLen), c.Stats().AppDatagramsDroppedSend)
	buf := make([]byte, MaxDatagramSizeLimit)
	for range 3 {
		for range datagramQueueLen {
			require.NoError(t, c.SendDatagram([]byte("y")))
		}
		now = now.Add(time.Millisecond)
		exchange(c, s, now, buf)
	}
	require.Equal(t, datagramQueueLen, s.DatagramsReadable())
	require.Positive(t, s.Stats().AppDatagramsDroppedReceive)
}

// TestDatagramFloodDoesNotStarveStream: a sender that keeps the datagram queue full while it
// writes a stream still gets the stream through, at a good share of the rate.
func TestDatagramFloodDoesNotStarveStream(t *testing.T) {
	c, s, now := datagramPair(t)
	buf := make([]byte, MaxDatagramSizeLimit)
	payload := make([]byte, 256<<10)
	_, err := c.Write(payload)
	require.NoError(t, err)
	c.CloseWrite()
	big := make([]byte, c.MaxDatagramPayload())
	read := 0
	for step := 0; step < 2000 && read < len(payload); step++ {
		for c.dgram.out.n < datagramQueueLen {
			require.NoError(t, c.SendDatagram(big))
		}
		now = now.Add(time.Millisecond)
		c.HandleTimeout(now)
		s.HandleTimeout(now)
		exchange(c, s, now, buf)
		for {
			n, err := s.Read(buf)
			read += n
			if n == 0 || err != nil {
				break
			}
		}
		for {
			if _, ok := s.ReceiveDatagram(buf); !ok {
				break
			}
		}
	}
	require.Equal(t, len(payload), read, "the stream starved")
	st := c.Stats()
	require.Positive(t, st.AppDatagramsSent)
	t.Logf("stream of %d KiB done beside %d datagrams (%d dropped at the sender)", len(payload)>>10, st.AppDatagramsSent, st.AppDatagramsDroppedSend)
}
