package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIdleHoldsNoStreamBuffers: a session that has moved data and gone quiet holds neither a
// send buffer nor a reassembly ring, at either end (issue 8); the next data takes them again.
func TestIdleHoldsNoStreamBuffers(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, MaxDatagramSizeLimit)
	got := make([]byte, 300_000)
	for round := range 3 {
		_, err := c.Write(make([]byte, 200_000))
		require.NoError(t, err)
		require.NotNil(t, c.tx.buf.buf, "round %d: no send buffer while data is queued", round)
		read := 0
		for i := 0; i < 1000 && (read < 200_000 || !c.AllAcked()); i++ {
			exchange(c, s, now, buf)
			n, err := s.Read(got)
			require.NoError(t, err)
			read += n
			now = now.Add(time.Millisecond)
		}
		require.Equal(t, 200_000, read, "round %d", round)
		require.True(t, c.AllAcked(), "round %d", round)
		for _, x := range []*Conn{c, s} {
			require.Zero(t, len(x.tx.buf.buf), "round %d: a send buffer held while idle", round)
			require.Zero(t, x.rx.buf.Storage(), "round %d: a reassembly ring held while idle", round)
		}
	}
}
