package bufpool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClass(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{0, MinSize}, {1, MinSize}, {MinSize, MinSize}, {MinSize + 1, 2 * MinSize},
		{1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}, {MaxSize, MaxSize}, {MaxSize + 1, MaxSize + 1},
	} {
		require.Equal(t, c.want, Class(c.n), "Class(%d)", c.n)
		b := Get(c.n)
		require.Len(t, b, c.want)
		require.Equal(t, c.want, cap(b))
		Put(b)
	}
}

// TestReuse: a slice given back is what the next Get of its size returns, whole, and a cycle of
// Get and Put allocates nothing.
func TestReuse(t *testing.T) {
	b := Get(10_000)
	b[len(b)-1] = 7
	Put(b[:100]) // a shortened slice still goes back whole, by its capacity
	got := Get(16 << 10)
	require.Len(t, got, 16<<10)
	Put(got)
	if !raceEnabled { // sync.Pool drops some Puts on purpose under the race detector
		allocs := testing.AllocsPerRun(100, func() { Put(Get(100_000)) })
		require.Zero(t, allocs)
	}
	Put(make([]byte, 5000)) // not a pooled size: ignored, not handed out later
	for range 10 {
		require.Len(t, Get(5000), 8192)
	}
}
