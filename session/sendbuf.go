package session

import (
	"math/bits"

	"github.com/tlsgram/tlsgram/internal/bufpool"
)

// sendBuffer holds stream bytes from the lowest unacknowledged offset (base) to the end of what the
// application wrote. It is a power-of-two ring taken from bufpool when a write comes and given
// back when everything written is acknowledged, so an idle connection holds no storage (issue
// 8), and a busy one cycles pooled rings without allocating. It grows when a write does not fit.
type sendBuffer struct {
	buf  []byte // nil while empty
	base uint64 // offset of the first byte still held (everything below is acknowledged)
	end  uint64 // offset one past the last written byte
	// size is the ring's size when it was last given back: the next one starts there, so a
	// transfer that pauses does not grow its ring again from the smallest size.
	size int
}

func (b *sendBuffer) len() int { return int(b.end - b.base) }

func (b *sendBuffer) write(p []byte) {
	if len(p) == 0 {
		return
	}
	need := b.len() + len(p)
	if need > len(b.buf) {
		b.grow(need)
	}
	mask := uint64(len(b.buf) - 1)
	for len(p) > 0 {
		pos := b.end & mask
		n := copy(b.buf[pos:], p)
		p = p[n:]
		b.end += uint64(n)
	}
}

func (b *sendBuffer) grow(need int) {
	size := bufpool.Class(max(need, b.size))
	if size&(size-1) != 0 {
		size = 1 << bits.Len(uint(size)) // beyond bufpool.MaxSize; the ring's mask needs a power of two
	}
	nb := bufpool.Get(size)
	if len(b.buf) > 0 {
		mask := uint64(len(b.buf) - 1)
		nmask := uint64(len(nb) - 1)
		for off := b.base; off < b.end; {
			pos := off & mask
			chunk := uint64(len(b.buf)) - pos
			if rem := b.end - off; rem < chunk {
				chunk = rem
			}
			// The destination may wrap as well; copy in two steps if so.
			npos := off & nmask
			n := copy(nb[npos:], b.buf[pos:pos+chunk])
			if uint64(n) < chunk {
				copy(nb, b.buf[pos+uint64(n):pos+chunk])
			}
			off += chunk
		}
		bufpool.Put(b.buf)
	}
	b.buf = nb
}

// slice returns the longest contiguous run of held bytes starting at off, at most max bytes. The
// run ends early where the ring wraps; callers loop.
func (b *sendBuffer) slice(off uint64, max int) []byte {
	if off < b.base || off >= b.end || max <= 0 {
		return nil
	}
	mask := uint64(len(b.buf) - 1)
	pos := off & mask
	n := b.end - off
	if w := uint64(len(b.buf)) - pos; w < n {
		n = w
	}
	if uint64(max) < n {
		n = uint64(max)
	}
	return b.buf[pos : pos+n]
}

// advance drops bytes below off (they were acknowledged). Once nothing is held, the ring goes
// back to the pool: slices returned before must not be used after an advance.
func (b *sendBuffer) advance(off uint64) {
	if off > b.end {
		off = b.end
	}
	if off > b.base {
		b.base = off
	}
	if b.base == b.end && b.buf != nil {
		b.size = len(b.buf)
		bufpool.Put(b.buf)
		b.buf = nil
	}
}
