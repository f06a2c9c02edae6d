package reassembly

import (
	"errors"
	"io"
	"math"

	"github.com/tlsgram/tlsgram/internal/bufpool"
)

// Errors returned by [Buffer.Insert]. When Insert returns one of them, nothing from that call was
// stored and the Buffer is unchanged.
var (
	// ErrFlowControl: the data ends past Limit() (RFC 9000 §4.1, FLOW_CONTROL_ERROR). The peer
	// broke the protocol; the session closes the connection.
	ErrFlowControl = errors.New("reassembly: data past the flow-control limit")
	// ErrFinalSize: a FIN that contradicts an earlier final size or the data already received, or
	// data past the final size (RFC 9000 §4.5, FINAL_SIZE_ERROR). The session closes the connection.
	ErrFinalSize = errors.New("reassembly: data or FIN contradicts the final size")
	// ErrTooManyGaps: storing the chunk would leave more holes than the Buffer keeps track of. This
	// is not a protocol violation: the session drops the packet without acknowledging it, and the
	// sender retransmits the chunk once it declares the packet lost, by which time the holes below
	// it have usually been filled.
	ErrTooManyGaps = errors.New("reassembly: too many gaps in the stream")
)

// minCapacity is the first allocation of a Buffer's storage (unless the window is smaller): a few
// datagrams, so a slow start does not regrow the ring at every packet.
const minCapacity = 16 << 10

// Buffer is the receive side of one byte stream: chunks identified by their stream offset arrive
// in any order, duplicated or overlapping, and come out of Read as contiguous bytes.
//
// Memory: the bytes between ReadOffset() and the highest offset received are kept in one ring
// buffer that grows (by doubling, never past Limit()-ReadOffset()) as the highest offset received
// moves ahead of the reader. The ring is taken from a pool (internal/bufpool) when data arrives
// and given back as soon as Read has taken everything stored, so an idle stream holds none, and
// steady-state operation cycles pooled rings without allocating. A peer can make the Buffer
// allocate up to the advertised window, Limit()-ReadOffset() (rounded up to the pool's next
// power of two), so the session must only advertise a window it is willing to hold in memory.
//
// A Buffer is not safe for concurrent use.
type Buffer struct {
	// buf is the ring: the byte at stream offset o (readOff ≤ o < readOff+len(buf)) is at
	// buf[(head + o - readOff) mod len(buf)].
	buf  []byte
	head int

	readOff   uint64 // bytes consumed by Read
	contigEnd uint64 // end of the bytes received contiguously from readOff; ≥ readOff
	highest   uint64 // largest end offset of any data received; ≥ contigEnd
	limit     uint64 // flow-control limit: no stored byte at an offset ≥ limit

	finalSize uint64
	finKnown  bool

	// ranges are the chunks received beyond contigEnd, sorted, disjoint and not adjacent (two
	// ranges that touch are merged). Each one has exactly one hole before it, so len(ranges) is
	// the number of gaps and never exceeds maxGaps.
	ranges   []span
	maxGaps  int
	oooBytes int // sum of the lengths of ranges

	// size is the ring's length when it was last given back: the next ring starts there, so a
	// transfer whose reader keeps up (and so empties the ring often) does not grow it again
	// from the smallest size every time.
	size int
}

// span is a half-open range [start, end) of stream offsets.
type span struct{ start, end uint64 }

// NewBuffer returns an empty Buffer that accepts bytes up to the absolute stream offset limit (the
// initial flow-control limit, RFC 9000 §4.1) and keeps at most maxGaps holes in the received data
// (maxGaps ≤ 0 accepts in-order data only).
func NewBuffer(limit uint64, maxGaps int) *Buffer {
	return &Buffer{limit: limit, maxGaps: max(maxGaps, 0)}
}

// Insert stores the new part of data, which starts at stream offset offset; fin marks the end of
// the stream at offset+len(data). Bytes received before (or already read) are ignored, so
// duplicates and overlaps are not errors. data is not retained.
//
// Insert returns ErrFinalSize, ErrFlowControl or ErrTooManyGaps (checked in that order) without
// storing anything; see those errors.
func (b *Buffer) Insert(offset uint64, data []byte, fin bool) error {
	end := offset + uint64(len(data))
	if end < offset {
		// Offsets on the wire are at most 2^62-1 (RFC 9000 §19.8); this only catches callers that
		// pass nonsense, and no limit can allow it.
		return ErrFlowControl
	}
	// RFC 9000 §4.5: once the final size is known it cannot change, and no data may lie past it;
	// a FIN may not end the stream before data already received.
	if b.finKnown {
		if end > b.finalSize || (fin && end != b.finalSize) {
			return ErrFinalSize
		}
	} else if fin && end < b.highest {
		return ErrFinalSize
	}
	if end > b.limit {
		return ErrFlowControl
	}

	if end <= b.contigEnd || offset == end {
		// Nothing to store: everything here was received already (a retransmission of data whose
		// ACK was lost), or the frame is empty (a FIN without data). An empty frame without FIN
		// changes nothing, not even the offset a later FIN is checked against.
		b.setFin(fin, end)
		return nil
	}
	start := max(offset, b.contigEnd)
	if len(b.ranges) == 0 && start == b.contigEnd {
		// Fast path, in-order arrival: one copy and three assignments.
		if err := b.reserve(end); err != nil {
			return err
		}
		b.write(start, data[start-offset:])
		b.contigEnd = end
		b.highest = max(b.highest, end)
		b.setFin(fin, end)
		return nil
	}
	return b.insertSlow(offset, start, end, data, fin)
}

// insertSlow merges [start, end) (the part of data at offset that is not below contigEnd) into the
// out-of-order ranges, copying only bytes not stored yet.
func (b *Buffer) insertSlow(offset, start, end uint64, data []byte, fin bool) error {
	n := len(b.ranges)
	// ranges[i:j] overlap or touch [start, end); they and the new chunk become one range. Search
	// from the top: reordered data usually extends the highest range.
	i := n
	for i > 0 && b.ranges[i-1].end >= start {
		i--
	}
	j := i
	for j < n && b.ranges[j].start <= end {
		j++
	}
	merged := span{start, end}
	if i < j {
		merged.start = min(start, b.ranges[i].start)
		merged.end = max(end, b.ranges[j-1].end)
	}
	// Every range lies above contigEnd, so only a chunk starting at contigEnd reaches it; then i=0.
	toContig := merged.start == b.contigEnd
	count := n - (j - i) + 1
	if toContig {
		count--
	}
	if count > b.maxGaps {
		return ErrTooManyGaps
	}
	if err := b.reserve(end); err != nil {
		return err
	}

	// Copy the holes of [start, end) that ranges[i:j] do not cover yet.
	cur := start
	var old uint64 // bytes of ranges[i:j]
	for k := i; k < j; k++ {
		r := b.ranges[k]
		if r.start > cur {
			b.write(cur, data[cur-offset:r.start-offset])
		}
		cur = max(cur, r.end)
		old += r.end - r.start
	}
	if cur < end {
		b.write(cur, data[cur-offset:])
	}

	switch {
	case toContig:
		b.contigEnd = merged.end
		b.oooBytes -= int(old)
		b.ranges = b.ranges[:copy(b.ranges, b.ranges[j:])]
	case i == j:
		b.ranges = append(b.ranges, span{})
		copy(b.ranges[i+1:], b.ranges[i:n])
		b.ranges[i] = merged
		b.oooBytes += int(merged.end - merged.start)
	default:
		b.ranges[i] = merged
		b.ranges = b.ranges[:i+1+copy(b.ranges[i+1:], b.ranges[j:])]
		b.oooBytes += int(merged.end-merged.start) - int(old)
	}
	b.highest = max(b.highest, end)
	b.setFin(fin, end)
	return nil
}

func (b *Buffer) setFin(fin bool, end uint64) {
	if fin && !b.finKnown {
		b.finKnown = true
		b.finalSize = end
	}
}

// reserve makes the ring large enough to hold offsets up to end (exclusive). end ≤ limit.
func (b *Buffer) reserve(end uint64) error {
	need := end - b.readOff
	if need <= uint64(len(b.buf)) {
		return nil
	}
	if need > math.MaxInt {
		// Only reachable with a limit the process could not hold in memory anyway.
		return ErrFlowControl
	}
	size := max(need, 2*uint64(len(b.buf)), minCapacity)
	// Never allocate past the window; need fits in it because end ≤ limit.
	size = min(size, b.limit-b.readOff, math.MaxInt)
	// Nor below the ring given back last: its size was within the window then, the session never
	// shrinks the window, and limit-readOff dips below it only until the next MAX_DATA. Starting
	// there saves growing (and copying) the ring again after every drain.
	size = max(size, uint64(b.size))
	nb := bufpool.Get(int(size))[:size]
	// Keep the bytes between readOff and highest, unwrapped, at the front of the new ring.
	used := int(b.highest - b.readOff)
	if used > 0 {
		c := copy(nb[:used], b.buf[b.head:])
		copy(nb[c:used], b.buf)
	}
	bufpool.Put(b.buf)
	b.buf = nb
	b.head = 0
	return nil
}

// release gives the ring back to the pool once nothing is stored.
func (b *Buffer) release() {
	if b.buf != nil {
		b.size = len(b.buf)
		bufpool.Put(b.buf)
		b.buf = nil
	}
	b.head = 0
}

// write copies p to the ring at stream offset off; the ring has room for it.
func (b *Buffer) write(off uint64, p []byte) {
	pos := b.head + int(off-b.readOff)
	if pos >= len(b.buf) {
		pos -= len(b.buf)
	}
	c := copy(b.buf[pos:], p)
	copy(b.buf, p[c:])
}

// Read copies up to len(p) contiguous bytes from the read offset into p. It returns (0, nil) when
// no byte is ready, and (0, io.EOF) once the stream's final size is known and every byte up to it
// has been read. Read never returns n > 0 together with an error.
func (b *Buffer) Read(p []byte) (int, error) {
	avail := b.contigEnd - b.readOff
	if avail == 0 {
		if b.finKnown && b.readOff == b.finalSize {
			return 0, io.EOF
		}
		return 0, nil
	}
	n := len(p)
	if uint64(n) > avail {
		n = int(avail)
	}
	c := copy(p[:n], b.buf[b.head:])
	copy(p[c:n], b.buf)
	b.readOff += uint64(n)
	b.head += n
	if b.head >= len(b.buf) {
		b.head -= len(b.buf)
	}
	if b.readOff == b.highest {
		// Nothing is stored: give the ring back, and start the next one at its front, so the
		// next chunks are copied without wrapping.
		b.release()
	}
	return n, nil
}

// Storage returns the bytes of ring the Buffer holds now: 0 whenever nothing is stored.
func (b *Buffer) Storage() int { return len(b.buf) }

// Readable returns the number of contiguous bytes Read can return now.
func (b *Buffer) Readable() int { return int(b.contigEnd - b.readOff) }

// ReadOffset returns the number of bytes consumed by Read so far.
func (b *Buffer) ReadOffset() uint64 { return b.readOff }

// Limit returns the flow-control limit: the absolute stream offset no stored byte reaches.
func (b *Buffer) Limit() uint64 { return b.limit }

// SetLimit raises the flow-control limit, after the session advertised it in MAX_DATA. A limit
// never decreases (RFC 9000 §4.1: a receiver cannot renege on credit), so smaller values are
// ignored.
func (b *Buffer) SetLimit(limit uint64) {
	if limit > b.limit {
		b.limit = limit
	}
}

// Buffered returns the number of bytes stored: ready to read plus received out of order. It is
// never more than Limit()-ReadOffset().
func (b *Buffer) Buffered() int { return int(b.contigEnd-b.readOff) + b.oooBytes }

// FinKnown returns the final size of the stream, once a FIN told it.
func (b *Buffer) FinKnown() (size uint64, ok bool) { return b.finalSize, b.finKnown }

// Gaps returns the number of holes: missing byte ranges below the highest offset received.
func (b *Buffer) Gaps() int { return len(b.ranges) }
