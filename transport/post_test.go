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
	require.Equal(t, 8, postBuffers(pool, ms, 0, 8, true))
	for i := range ms {
		require.NotNil(t, ms[i].buf, i)
	}
	kept := ms[1].buf
	ms[0].buf = nil // handed to a connection
	require.Equal(t, 2, postBuffers(pool, ms, 8, 2, true))
	require.NotNil(t, ms[0].buf)
	require.Same(t, kept, ms[1].buf)
	for i := 2; i < len(ms); i++ {
		require.Nil(t, ms[i].buf, i)
	}
}

// TestBufPoolBatches: the batch operations recycle through the free list like get and put, under
// one lock per batch. getInto fills only empty slots, with the buffers last given back; putAll
// skips nil entries and gives back lent GRO pieces; the free list keeps at most freeListLen.
func TestBufPoolBatches(t *testing.T) {
	pool := newBufPool(64)
	ms := make([]message, 4)
	pool.getInto(ms)
	bufs := make([]*packetBuf, len(ms))
	for i := range ms {
		require.NotNil(t, ms[i].buf, i)
		ms[i].buf.n = 10
		bufs[i] = ms[i].buf
	}
	pool.putSent(ms[:3])
	for i := range 3 {
		require.Nil(t, ms[i].buf, i)
	}
	require.Len(t, pool.free, 3)
	pool.getInto(ms)
	require.Same(t, bufs[3], ms[3].buf, "a filled slot is kept")
	for i := range 3 {
		require.Contains(t, bufs[:3], ms[i].buf, "from the free list")
		require.Zero(t, ms[i].buf.n, i)
	}
	require.Empty(t, pool.free)

	g := getGROBuf()
	bufs[0].lend(g, g.b[:20])
	require.Equal(t, int32(2), g.refs.Load())
	in := []*packetBuf{bufs[0], nil, bufs[1]}
	pool.putAll(in)
	require.Equal(t, []*packetBuf{nil, nil, nil}, in)
	require.Equal(t, int32(1), g.refs.Load(), "the lent piece went back")
	require.Len(t, bufs[0].b, 64, "its own storage restored")
	require.Len(t, pool.free, 2)

	many := make([]message, freeListLen+8)
	pool.getInto(many)
	pool.putSent(many)
	require.Len(t, pool.free, freeListLen)
}
