package transport

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNextPosted: a quiet socket's reader keeps readPostMin buffers posted, a full read opens
// the whole batch at once, and the batch shrinks as the reader catches up.
func TestNextPosted(t *testing.T) {
	for _, tc := range []struct{ k, posted, limit, want int }{
		{0, 0, 16, 2},    // before the first read
		{1, 2, 16, 2},    // a lone datagram: stay small
		{2, 2, 16, 16},   // the read came back full: a burst
		{16, 16, 16, 16}, // still full
		{5, 16, 16, 10},  // catching up
		{1, 10, 16, 2},   // quiet again
		{1, 1, 1, 1},     // a socket read one datagram at a time
		{0, 1, 1, 1},
		{40, 64, 64, 64},
	} {
		require.Equal(t, tc.want, nextPosted(tc.k, tc.posted, tc.limit), "%+v", tc)
	}
}

// TestPostBuffers: buffers beyond the posted count go back to the pool, missing ones are taken.
func TestPostBuffers(t *testing.T) {
	pool := newBufPool(64)
	ms := make([]message, 8)
	require.Equal(t, 8, postBuffers(pool, ms, 8, true))
	for i := range ms {
		require.NotNil(t, ms[i].buf, i)
	}
	kept := ms[1].buf
	ms[0].buf = nil // handed to a connection
	require.Equal(t, 2, postBuffers(pool, ms, 2, true))
	require.NotNil(t, ms[0].buf)
	require.Same(t, kept, ms[1].buf)
	for i := 2; i < len(ms); i++ {
		require.Nil(t, ms[i].buf, i)
	}
}
