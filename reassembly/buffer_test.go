package reassembly

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one operation of a table test: insert src[off:off+n] (with fin), read up to n bytes, or
// set the limit to off.
type step struct {
	op  byte // 'i' insert, 'r' read, 'l' SetLimit
	off int
	n   int
	fin bool
	err error // insert: the error expected
	got int   // read: the number of bytes expected
	eof bool  // read: io.EOF expected
}

func ins(off, n int) step               { return step{op: 'i', off: off, n: n} }
func insFin(off, n int) step            { return step{op: 'i', off: off, n: n, fin: true} }
func insErr(off, n int, err error) step { return step{op: 'i', off: off, n: n, err: err} }
func finErr(off, n int, err error) step { return step{op: 'i', off: off, n: n, fin: true, err: err} }
func rd(n, got int) step                { return step{op: 'r', n: n, got: got} }
func rdEOF(n int) step                  { return step{op: 'r', n: n, eof: true} }
func setLimit(limit int) step           { return step{op: 'l', off: limit} }

func TestBufferTable(t *testing.T) {
	src := sourceStream(1 << 12)
	tests := []struct {
		name     string
		limit    uint64
		maxGaps  int
		steps    []step
		readable int
		buffered int
		gaps     int
		fin      int // final size, -1 if unknown
	}{
		{
			name: "in order", limit: 1000, maxGaps: 4,
			steps: []step{ins(0, 100), ins(100, 100), rd(300, 200), rd(10, 0)},
			fin:   -1,
		},
		{
			name: "exact duplicates and contained chunks", limit: 1000, maxGaps: 4,
			steps:    []step{ins(0, 100), ins(0, 100), ins(50, 20), ins(0, 0)},
			readable: 100, buffered: 100, fin: -1,
		},
		{
			name: "overlap extends the contiguous part", limit: 1000, maxGaps: 4,
			steps:    []step{ins(0, 100), ins(50, 100), rd(40, 40), ins(0, 160)},
			readable: 120, buffered: 120, fin: -1,
		},
		{
			name: "hole filled", limit: 1000, maxGaps: 4,
			steps:    []step{ins(100, 100), rd(10, 0), ins(0, 100)},
			readable: 200, buffered: 200, fin: -1,
		},
		{
			name: "one chunk covers several ranges", limit: 1000, maxGaps: 4,
			steps:    []step{ins(10, 10), ins(30, 10), ins(50, 10), ins(5, 60)},
			buffered: 60, gaps: 1, fin: -1,
		},
		{
			name: "chunk ends inside a range and starts inside another", limit: 1000, maxGaps: 4,
			steps:    []step{ins(10, 10), ins(30, 10), ins(50, 10), ins(15, 40), ins(0, 10)},
			readable: 60, buffered: 60, fin: -1,
		},
		{
			name: "adjacent ranges merge", limit: 1000, maxGaps: 4,
			steps:    []step{ins(10, 10), ins(30, 10), ins(20, 10)},
			buffered: 30, gaps: 1, fin: -1,
		},
		{
			name: "insert below the highest range", limit: 1000, maxGaps: 4,
			steps:    []step{ins(50, 10), ins(10, 10), ins(30, 5)},
			buffered: 25, gaps: 3, fin: -1,
		},
		{
			name: "data already read is ignored", limit: 1000, maxGaps: 4,
			steps: []step{ins(0, 100), rd(100, 100), ins(0, 100), ins(50, 100), rd(1000, 50)},
			fin:   -1,
		},
		{
			name: "fin in order", limit: 1000, maxGaps: 4,
			steps: []step{insFin(0, 10), rd(20, 10), rdEOF(20), rdEOF(0), ins(0, 10), insFin(5, 5)},
			fin:   10,
		},
		{
			name: "empty fin after the data", limit: 1000, maxGaps: 4,
			steps: []step{ins(0, 10), insFin(10, 0), rd(20, 10), rdEOF(20)},
			fin:   10,
		},
		{
			name: "fin arrives before the data", limit: 1000, maxGaps: 4,
			steps: []step{insFin(50, 10), rd(10, 0), ins(0, 50), rd(100, 60), rdEOF(1)},
			fin:   60,
		},
		{
			name: "fin of an empty stream", limit: 1000, maxGaps: 4,
			steps: []step{insFin(0, 0), rdEOF(10)},
			fin:   0,
		},
		{
			name: "final size cannot change", limit: 1000, maxGaps: 4,
			steps: []step{
				insFin(0, 10), finErr(0, 11, ErrFinalSize), finErr(0, 9, ErrFinalSize),
				insErr(5, 10, ErrFinalSize), insErr(10, 1, ErrFinalSize), insFin(0, 10),
			},
			readable: 10, buffered: 10, fin: 10,
		},
		{
			name: "fin below data already received", limit: 1000, maxGaps: 4,
			steps:    []step{ins(0, 20), finErr(0, 10, ErrFinalSize), ins(30, 5), finErr(20, 5, ErrFinalSize)},
			readable: 20, buffered: 25, gaps: 1, fin: -1,
		},
		{
			name: "fin below data already read", limit: 1000, maxGaps: 4,
			steps: []step{ins(0, 20), rd(20, 20), finErr(0, 10, ErrFinalSize), insFin(0, 20), rdEOF(1)},
			fin:   20,
		},
		{
			name: "flow control", limit: 100, maxGaps: 4,
			steps: []step{
				insErr(90, 11, ErrFlowControl), insErr(0, 101, ErrFlowControl), ins(90, 10),
				ins(100, 0), insErr(101, 0, ErrFlowControl), setLimit(50), insErr(100, 1, ErrFlowControl),
				setLimit(200), ins(100, 100), insErr(150, 51, ErrFlowControl),
			},
			buffered: 110, gaps: 1, fin: -1,
		},
		{
			name: "flow control is checked after the final size", limit: 100, maxGaps: 4,
			steps:    []step{insFin(0, 50), insErr(60, 50, ErrFinalSize), finErr(0, 150, ErrFinalSize)},
			readable: 50, buffered: 50, fin: 50,
		},
		{
			name: "window slides with reads", limit: 100, maxGaps: 4,
			steps:    []step{ins(0, 100), rd(60, 60), insErr(100, 10, ErrFlowControl), setLimit(160), ins(100, 60)},
			readable: 100, buffered: 100, fin: -1,
		},
		{
			name: "gap cap", limit: 1000, maxGaps: 2,
			steps: []step{
				ins(10, 1), ins(20, 1), insErr(30, 1, ErrTooManyGaps), insErr(5, 1, ErrTooManyGaps),
				ins(21, 5), ins(11, 2), ins(0, 10), ins(30, 1), insErr(40, 1, ErrTooManyGaps),
			},
			readable: 13, buffered: 20, gaps: 2, fin: -1,
		},
		{
			name: "in-order data is accepted at the cap", limit: 1000, maxGaps: 1,
			steps:    []step{ins(10, 10), ins(0, 5), ins(5, 5), ins(30, 10), insErr(50, 1, ErrTooManyGaps)},
			readable: 20, buffered: 30, gaps: 1, fin: -1,
		},
		{
			name: "empty chunks store nothing", limit: 1000, maxGaps: 0,
			steps:    []step{ins(500, 0), ins(0, 10), ins(5, 0), insFin(20, 0), insErr(15, 10, ErrFinalSize)},
			readable: 10, buffered: 10, fin: 20,
		},
		{
			name: "no gaps allowed", limit: 1000, maxGaps: 0,
			steps:    []step{insErr(10, 1, ErrTooManyGaps), ins(0, 10), ins(5, 10), insErr(16, 1, ErrTooManyGaps)},
			readable: 15, buffered: 15, fin: -1,
		},
		{
			name: "refused chunk does not record its fin", limit: 1000, maxGaps: 0,
			steps:    []step{step{op: 'i', off: 10, n: 5, fin: true, err: ErrTooManyGaps}, ins(0, 12)},
			readable: 12, buffered: 12, fin: -1,
		},
		{
			name: "negative maxGaps is zero", limit: 1000, maxGaps: -3,
			steps:    []step{insErr(10, 1, ErrTooManyGaps), ins(0, 10)},
			readable: 10, buffered: 10, fin: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuffer(tt.limit, tt.maxGaps)
			out := []byte{}
			p := make([]byte, len(src))
			for i, s := range tt.steps {
				msg := fmt.Sprintf("step %d: %c(%d, %d, fin=%v)", i, s.op, s.off, s.n, s.fin)
				switch s.op {
				case 'i':
					err := b.Insert(uint64(s.off), src[s.off:s.off+s.n], s.fin)
					if s.err == nil {
						require.NoError(t, err, msg)
					} else {
						require.ErrorIs(t, err, s.err, msg)
					}
				case 'r':
					n, err := b.Read(p[:s.n])
					require.Equal(t, s.got, n, msg)
					if s.eof {
						require.ErrorIs(t, err, io.EOF, msg)
					} else {
						require.NoError(t, err, msg)
					}
					out = append(out, p[:n]...)
				case 'l':
					b.SetLimit(uint64(s.off))
				}
				checkInvariants(t, b)
			}
			require.Equal(t, src[:len(out)], out, "bytes read")
			require.Equal(t, uint64(len(out)), b.ReadOffset())
			require.Equal(t, tt.readable, b.Readable(), "Readable")
			require.Equal(t, tt.buffered, b.Buffered(), "Buffered")
			require.Equal(t, tt.gaps, b.Gaps(), "Gaps")
			size, ok := b.FinKnown()
			require.Equal(t, tt.fin >= 0, ok, "FinKnown")
			if ok {
				require.Equal(t, uint64(tt.fin), size, "final size")
			}
			n, _ := b.Read(p)
			require.Equal(t, src[len(out):len(out)+n], p[:n], "remaining bytes")
		})
	}
}

func TestBufferOffsetOverflow(t *testing.T) {
	b := NewBuffer(math.MaxUint64, 4)
	require.ErrorIs(t, b.Insert(math.MaxUint64-5, make([]byte, 10), false), ErrFlowControl)
	require.Zero(t, b.Buffered())
	require.Nil(t, b.buf, "nothing allocated")
}

func TestBufferLazyStorage(t *testing.T) {
	b := NewBuffer(1<<20, 4)
	require.Nil(t, b.buf, "no storage before data arrives")
	require.NoError(t, b.Insert(0, make([]byte, 100), false))
	require.Len(t, b.buf, minCapacity)

	// Storage follows the highest offset received, and never exceeds the window.
	require.NoError(t, b.Insert(100_000, make([]byte, 10), false))
	require.GreaterOrEqual(t, len(b.buf), 100_010)
	require.Less(t, len(b.buf), 1<<18)

	// Once the reader has taken everything stored, the ring goes back to the pool; the next
	// data takes one of the size it had.
	size := len(b.buf)
	_, err := b.Read(make([]byte, 100))
	require.NoError(t, err)
	require.NotNil(t, b.buf, "bytes received out of order are still stored")
	require.NoError(t, b.Insert(100, make([]byte, 99_900), false))
	_, err = b.Read(make([]byte, 200_000))
	require.NoError(t, err)
	require.Zero(t, b.Buffered())
	require.Nil(t, b.buf, "drained: nothing held")
	require.NoError(t, b.Insert(100_010, make([]byte, 10), false))
	require.Len(t, b.buf, size, "the size it had")

	small := NewBuffer(1000, 4)
	require.NoError(t, small.Insert(0, make([]byte, 10), false))
	require.Len(t, small.buf, 1000, "capped by the window")
	small.SetLimit(5000)
	require.NoError(t, small.Insert(4990, make([]byte, 10), false))
	require.Len(t, small.buf, 5000)
}

// TestBufferWrap drives the ring around many times with chunk and read sizes that do not divide its
// size, with out-of-order pairs, and with bytes left unread so that stored data straddles the end
// of the ring.
func TestBufferWrap(t *testing.T) {
	src := sourceStream(1 << 20)
	const window = 5000
	c := newChecker(t, src, window, 2)
	off := 0
	wrapped, ring := 0, 0
	for off < len(src) {
		// Two chunks, the second first: at most 2398 bytes, plus at most 999 left unread.
		n1, n2 := 700+off%500, 300+off%900
		c.insert(off+n1, off+n1+n2, false)
		if c.b.head+int(c.b.highest-c.b.readOff) > len(c.b.buf) {
			wrapped++
		}
		c.insert(off, off+n1, false)
		ring = max(ring, len(c.b.buf))
		off += n1 + n2
		c.read(max(c.b.Readable()-off%1000, 0))
		c.raise(uint64(c.m.readOff + window))
	}
	c.read(window)
	require.Equal(t, len(src), c.m.readOff)
	require.Equal(t, window, ring, "the ring never outgrew the window")
	require.Nil(t, c.b.buf, "everything read: the ring went back to the pool")
	require.Greater(t, wrapped, 100, "stored data straddled the end of the ring")
}

// TestBufferRandom compares Buffer with the model on random traffic that looks like a lossy,
// reordering, duplicating path with a sender that retransmits, plus nonsense chunks.
func TestBufferRandom(t *testing.T) {
	src := sourceStream(1 << 16)
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runRandom(t, src, uint64(seed))
		})
	}
}

func runRandom(t *testing.T, src []byte, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x7e57))
	const mtu = 1180
	window := 1 + rng.IntN(1<<15)
	c := newChecker(t, src, uint64(window), rng.IntN(12))
	next := 0 // sender's next new offset
	chunk := func(off int) (int, int, bool) {
		end := min(off+mtu, len(src))
		return off, end, end == len(src) && rng.IntN(10) != 0
	}
	for range 4000 {
		switch r := rng.IntN(100); {
		case r < 45: // the next packet, possibly lost
			off, end, fin := chunk(next)
			next = end
			if rng.IntN(8) != 0 {
				c.insert(off, end, fin)
			}
		case r < 60: // a retransmission or late copy of an earlier packet
			if next > 0 {
				off, end, fin := chunk(rng.IntN(next) / mtu * mtu)
				c.insert(off, end, fin)
			}
		case r < 65: // arbitrary chunk, sometimes with a bogus FIN
			off := rng.IntN(len(src))
			c.insert(off, off+rng.IntN(3*mtu), rng.IntN(10) == 0)
		case r < 85:
			c.read(rng.IntN(4 * mtu))
		case r < 95: // MAX_DATA after the reader made progress
			c.raise(uint64(c.m.readOff + window))
		default: // the sender goes back to retransmit from the read offset
			next = c.m.readOff / mtu * mtu
		}
	}
	// Deliver the rest in order: the reader must get the whole stream (up to any bogus final size).
	c.raise(uint64(len(src)))
	for off := c.m.readOff / mtu * mtu; off < len(src); off += mtu {
		end := min(off+mtu, len(src))
		if c.m.finKnown && end > c.m.finalSize {
			end = c.m.finalSize
		}
		if off < end {
			c.insert(off, end, false)
		}
	}
	c.read(len(src))
	if c.m.finKnown {
		require.Equal(t, c.m.finalSize, c.m.readOff)
		c.read(1) // io.EOF
	} else {
		require.Equal(t, len(src), c.m.readOff)
	}
}

func TestBufferAllocs(t *testing.T) {
	src := sourceStream(1 << 16)
	const mtu = 1180
	p := make([]byte, 4*mtu)

	t.Run("in order", func(t *testing.T) {
		b := NewBuffer(1<<20, 8)
		var off uint64
		step := func() {
			chunk := src[off%(1<<15) : off%(1<<15)+mtu]
			if err := b.Insert(off, chunk, false); err != nil {
				panic(err)
			}
			off += mtu
			if _, err := b.Read(p); err != nil {
				panic(err)
			}
			b.SetLimit(b.ReadOffset() + 1<<20)
		}
		step() // allocates the ring
		require.Zero(t, testing.AllocsPerRun(1000, step))
	})

	t.Run("out of order", func(t *testing.T) {
		b := NewBuffer(1<<20, 8)
		var base uint64
		// Each round delivers 8 chunks in a scrambled order, so there are up to 3 holes at a time.
		order := []uint64{1, 3, 2, 7, 0, 5, 4, 6}
		round := func() {
			for _, i := range order {
				off := base + i*mtu
				if err := b.Insert(off, src[i*mtu:(i+1)*mtu], false); err != nil {
					panic(err)
				}
			}
			for b.Readable() > 0 {
				if _, err := b.Read(p); err != nil {
					panic(err)
				}
			}
			base += uint64(len(order)) * mtu
			b.SetLimit(b.ReadOffset() + 1<<20)
		}
		round() // allocates the ring and the range list
		require.Zero(t, testing.AllocsPerRun(500, round))
	})
}

// TestBufferDrainAllocs: a stream whose reader keeps up empties the ring often, and each time it
// goes back to the pool; taking it again allocates nothing once warmed up.
func TestBufferDrainAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops some Puts on purpose under the race detector")
	}
	b := NewBuffer(1<<20, 4)
	chunk, p := make([]byte, 1200), make([]byte, 64<<10)
	var off uint64
	allocs := testing.AllocsPerRun(100, func() {
		for range 20 {
			_ = b.Insert(off, chunk, false)
			off += uint64(len(chunk))
		}
		_, _ = b.Read(p)
		b.SetLimit(off + 1<<20)
	})
	require.Nil(t, b.buf)
	require.Zero(t, allocs)
}
