package session

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/bufpool"
)

// TestSendBufferLazy: the ring exists only while bytes are held. Acknowledging everything gives
// it back, and the next write takes one of the size it had, so a transfer that pauses between
// writes does not grow it again from the smallest size.
func TestSendBufferLazy(t *testing.T) {
	var b sendBuffer
	require.Nil(t, b.buf, "no storage before a write")
	b.write(nil)
	require.Nil(t, b.buf, "an empty write takes no storage")
	b.write(make([]byte, 100))
	require.Len(t, b.buf, bufpool.MinSize)
	b.write(make([]byte, 40_000))
	require.Len(t, b.buf, 64<<10, "grown to hold 40100 bytes")
	b.advance(30_000)
	require.NotNil(t, b.buf, "bytes still held")
	b.advance(b.end)
	require.Nil(t, b.buf, "drained: back to the pool")
	require.Zero(t, b.len())
	b.write([]byte("x"))
	require.Len(t, b.buf, 64<<10, "the size it had")
	require.Equal(t, []byte("x"), b.slice(b.base, 10))
}

// TestSendBufferModel writes, reads back and acknowledges random amounts, draining now and then,
// and checks every held byte against the stream written.
func TestSendBufferModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b sendBuffer
	var stream []byte
	for range 5000 {
		p := make([]byte, rng.IntN(3000))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		b.write(p)
		stream = append(stream, p...)
		require.Equal(t, len(stream), int(b.end))
		// Read every held byte back, in runs as appendStream does.
		for off := b.base; off < b.end; {
			run := b.slice(off, 1+rng.IntN(2000))
			require.NotEmpty(t, run)
			require.True(t, bytes.Equal(stream[off:off+uint64(len(run))], run), "bytes at %d", off)
			off += uint64(len(run))
		}
		switch rng.IntN(4) {
		case 0:
			b.advance(b.end)
			require.Nil(t, b.buf)
		default:
			b.advance(b.base + uint64(rng.IntN(b.len()+1)))
		}
		require.LessOrEqual(t, b.len(), len(b.buf))
	}
}

// TestSendBufferAllocs: once warmed up, a cycle of writing and draining the buffer allocates
// nothing (the rings come from the pool).
func TestSendBufferAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops some Puts on purpose under the race detector")
	}
	var b sendBuffer
	p := make([]byte, 16<<10)
	allocs := testing.AllocsPerRun(100, func() {
		for range 8 {
			b.write(p)
		}
		b.advance(b.end)
	})
	require.Zero(t, allocs)
}
