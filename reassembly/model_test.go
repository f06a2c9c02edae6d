package reassembly

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// sourceStream returns the stream every test chunk is cut from: bytes whose value depends on their
// offset in a way that does not repeat with period 256, so misplaced bytes are caught.
func sourceStream(n int) []byte {
	s := make([]byte, n)
	x := uint32(2463534242)
	for i := range s {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		s[i] = byte(x)
	}
	return s
}

// bufModel is the reference for Buffer: one flag per byte of the source stream, and the rules of
// Insert spelled out the slow way.
type bufModel struct {
	have      []bool
	readOff   int
	highest   int
	limit     uint64
	finalSize int
	finKnown  bool
	maxGaps   int
}

// holes counts the runs of missing bytes in [readOff, hi), with [off, end) counted as received.
func (m *bufModel) holes(off, end, hi int) int {
	n := 0
	missing := false
	for o := m.readOff; o < hi; o++ {
		got := m.have[o] || (o >= off && o < end)
		if !got && !missing {
			n++
		}
		missing = !got
	}
	return n
}

func (m *bufModel) insert(off, end int, fin bool) error {
	if m.finKnown {
		if end > m.finalSize || (fin && end != m.finalSize) {
			return ErrFinalSize
		}
	} else if fin && end < m.highest {
		return ErrFinalSize
	}
	if uint64(end) > m.limit {
		return ErrFlowControl
	}
	if end == off {
		// Empty: nothing to store, so no new hole.
		if fin && !m.finKnown {
			m.finKnown, m.finalSize = true, end
		}
		return nil
	}
	if m.holes(off, end, max(m.highest, end)) > m.maxGaps {
		return ErrTooManyGaps
	}
	for o := max(off, m.readOff); o < end; o++ {
		m.have[o] = true
	}
	m.highest = max(m.highest, end)
	if fin && !m.finKnown {
		m.finKnown, m.finalSize = true, end
	}
	return nil
}

func (m *bufModel) readable() int {
	n := 0
	for m.readOff+n < len(m.have) && m.have[m.readOff+n] {
		n++
	}
	return n
}

func (m *bufModel) buffered() int {
	n := 0
	for o := m.readOff; o < m.highest; o++ {
		if m.have[o] {
			n++
		}
	}
	return n
}

// checker runs the same operations on a Buffer and on the model and compares them after each one.
type checker struct {
	t   testing.TB
	src []byte
	b   *Buffer
	m   bufModel
	p   []byte // scratch for Read
}

func newChecker(t testing.TB, src []byte, limit uint64, maxGaps int) *checker {
	return &checker{
		t:   t,
		src: src,
		b:   NewBuffer(limit, maxGaps),
		m:   bufModel{have: make([]bool, len(src)), limit: limit, maxGaps: maxGaps},
		p:   make([]byte, len(src)+1),
	}
}

// insert inserts src[off:end] into both; off and end are clamped to the source stream.
func (c *checker) insert(off, end int, fin bool) {
	off = min(off, len(c.src))
	end = min(max(end, off), len(c.src))
	want := c.m.insert(off, end, fin)
	got := c.b.Insert(uint64(off), c.src[off:end], fin)
	// errors.Is(got, nil) holds only for got == nil.
	require.ErrorIs(c.t, got, want, "Insert(%d, %d bytes, fin=%v)", off, end-off, fin)
	c.check()
}

func (c *checker) read(n int) {
	n = min(n, len(c.p))
	avail := c.m.readable()
	got, err := c.b.Read(c.p[:n])
	want := min(n, avail)
	require.Equal(c.t, want, got, "Read(%d bytes) at %d", n, c.m.readOff)
	// Everything Read returns is the source stream, at the right offset.
	require.Equal(c.t, c.src[c.m.readOff:c.m.readOff+got], c.p[:got], "bytes read at offset %d", c.m.readOff)
	c.m.readOff += got
	if got == 0 && c.m.finKnown && c.m.readOff == c.m.finalSize {
		require.ErrorIs(c.t, err, io.EOF)
	} else {
		require.NoError(c.t, err)
	}
	c.check()
}

func (c *checker) raise(limit uint64) {
	c.b.SetLimit(limit)
	c.m.limit = max(c.m.limit, limit)
	c.check()
}

func (c *checker) check() {
	t, b, m := c.t, c.b, &c.m
	must(t, b.ReadOffset() == uint64(m.readOff), "ReadOffset %d, model %d", b.ReadOffset(), m.readOff)
	must(t, b.Limit() == m.limit, "Limit %d, model %d", b.Limit(), m.limit)
	must(t, b.Readable() == m.readable(), "Readable %d, model %d", b.Readable(), m.readable())
	must(t, b.Buffered() == m.buffered(), "Buffered %d, model %d", b.Buffered(), m.buffered())
	must(t, uint64(b.Buffered()) <= b.Limit()-b.ReadOffset(), "Buffered %d beyond the window %d", b.Buffered(), b.Limit()-b.ReadOffset())
	gaps := m.holes(0, 0, m.highest)
	must(t, b.Gaps() == gaps, "Gaps %d, model %d", b.Gaps(), gaps)
	must(t, b.Gaps() <= m.maxGaps, "Gaps %d beyond maxGaps %d", b.Gaps(), m.maxGaps)
	size, ok := b.FinKnown()
	must(t, ok == m.finKnown, "FinKnown %v, model %v", ok, m.finKnown)
	must(t, !ok || size == uint64(m.finalSize), "final size %d, model %d", size, m.finalSize)
	checkInvariants(t, b)
}

// checkInvariants checks the Buffer's internal bookkeeping.
func checkInvariants(t testing.TB, b *Buffer) {
	must(t, b.readOff <= b.contigEnd && b.contigEnd <= b.highest && b.highest <= b.limit,
		"want readOff %d ≤ contigEnd %d ≤ highest %d ≤ limit %d", b.readOff, b.contigEnd, b.highest, b.limit)
	must(t, b.highest-b.readOff <= uint64(len(b.buf)), "ring of %d smaller than the stored span %d", len(b.buf), b.highest-b.readOff)
	must(t, uint64(len(b.buf)) <= b.limit, "ring of %d larger than any window (limit %d)", len(b.buf), b.limit)
	must(t, len(b.ranges) <= b.maxGaps, "%d ranges, maxGaps %d", len(b.ranges), b.maxGaps)
	prev := b.contigEnd
	sum := 0
	for i, r := range b.ranges {
		must(t, prev < r.start && r.start < r.end, "range %d %v: empty, or not above %d with a hole between", i, r, prev)
		sum += int(r.end - r.start)
		prev = r.end
	}
	// Every byte received at or above readOff is stored, so the stored span ends at highest.
	must(t, prev == b.highest, "stored data ends at %d, highest is %d", prev, b.highest)
	must(t, sum == b.oooBytes, "oooBytes %d, ranges hold %d", b.oooBytes, sum)
}

// must fails the test unless cond holds. The model tests check every invariant after every
// operation; require's comparisons walk the call stack on each call, which made them slow.
func must(t testing.TB, cond bool, format string, args ...any) {
	if !cond {
		t.Helper()
		require.Failf(t, "check failed", format, args...)
	}
}
