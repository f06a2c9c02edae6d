package reassembly

import (
	"encoding/binary"
	"testing"
)

const (
	fuzzStreamLen = 1 << 14
	fuzzMTU       = 1180 // stream bytes in one full-sized datagram
)

// Operations of FuzzBuffer. An input is 3 header bytes (maxGaps = in[0] % 16, initial limit =
// big-endian in[1:3]) followed by 5-byte operations: a kind byte (taken mod 8) and two big-endian
// uint16 arguments a and b.
const (
	bufOpInsert    = 0 // kinds 0-2: insert src[a : a+b%(3*MTU)] (offsets wrap at the stream length)
	bufOpInsertFin = 3 // the same, with FIN
	bufOpPacket    = 4 // insert packet a of the stream cut in MTU-sized pieces; FIN on the last if b is odd
	bufOpRead      = 5 // read up to a%(4*MTU) bytes
	bufOpWindow    = 6 // raise the limit to ReadOffset()+a (a MAX_DATA after reads)
	bufOpRaise     = 7 // raise the limit by a
)

// bufInput builds a FuzzBuffer input; ops are (kind, a, b) triples.
func bufInput(maxGaps byte, limit uint16, ops ...[3]int) []byte {
	in := []byte{maxGaps, byte(limit >> 8), byte(limit)}
	for _, op := range ops {
		in = append(in, byte(op[0]))
		in = binary.BigEndian.AppendUint16(in, uint16(op[1]))
		in = binary.BigEndian.AppendUint16(in, uint16(op[2]))
	}
	return in
}

// FuzzBuffer runs a list of operations on a Buffer and on the model (see checker): whatever Read
// returns must be the source stream's next bytes, errors must match the model, Buffered() must
// stay within Limit()-ReadOffset() and Gaps() within maxGaps.
func FuzzBuffer(f *testing.F) {
	n := fuzzStreamLen/fuzzMTU + 1 // packets in the stream
	var inOrder, reversed, everyOther [][3]int
	for i := range n {
		inOrder = append(inOrder, [3]int{bufOpPacket, i, 1}, [3]int{bufOpRead, 1000, 0})
		reversed = append(reversed, [3]int{bufOpPacket, n - 1 - i, 1})
		everyOther = append(everyOther, [3]int{bufOpPacket, 2 * i, 0})
	}
	reversed = append(reversed, [3]int{bufOpRead, 4 * fuzzMTU, 0}, [3]int{bufOpRead, 1, 0})
	f.Add(bufInput(4, 0xffff, inOrder...))
	f.Add(bufInput(15, 0xffff, reversed...))
	f.Add(bufInput(3, 0x4000, everyOther...))
	f.Add(bufInput(2, 3000,
		[3]int{bufOpInsert, 100, 200}, [3]int{bufOpInsert, 50, 100}, [3]int{bufOpInsert, 2000, 1500},
		[3]int{bufOpInsert, 0, 60}, [3]int{bufOpRead, 4000, 0}, [3]int{bufOpWindow, 3000, 0},
		[3]int{bufOpInsertFin, 2900, 300}, [3]int{bufOpInsert, 300, 2700}, [3]int{bufOpRead, 4000, 0},
		[3]int{bufOpRead, 1, 0}))
	f.Add(bufInput(0, 10, [3]int{bufOpInsertFin, 0, 10}, [3]int{bufOpInsertFin, 0, 9},
		[3]int{bufOpRaise, 100, 0}, [3]int{bufOpInsert, 5, 10}, [3]int{bufOpRead, 20, 0}))

	src := sourceStream(fuzzStreamLen)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		c := newChecker(t, src, uint64(binary.BigEndian.Uint16(in[1:3])), int(in[0]%16))
		in = in[3:]
		for ops := 0; len(in) >= 5 && ops < 1000; ops++ {
			kind := in[0] % 8
			a, b := int(binary.BigEndian.Uint16(in[1:3])), int(binary.BigEndian.Uint16(in[3:5]))
			in = in[5:]
			switch kind {
			case bufOpInsert, 1, 2, bufOpInsertFin:
				off := a % fuzzStreamLen
				c.insert(off, off+b%(3*fuzzMTU), kind == bufOpInsertFin)
			case bufOpPacket:
				off := a % (fuzzStreamLen/fuzzMTU + 1) * fuzzMTU
				end := min(off+fuzzMTU, fuzzStreamLen)
				c.insert(off, end, end == fuzzStreamLen && b%2 == 1)
			case bufOpRead:
				c.read(a % (4 * fuzzMTU))
			case bufOpWindow:
				c.raise(uint64(c.m.readOff + a))
			case bufOpRaise:
				c.raise(c.m.limit + uint64(a))
			}
		}
	})
}

// Operations of FuzzReceivedPackets: an input is a list of 2-byte operations, a kind byte (taken
// mod 8) and an argument v. next is the sender's next packet number.
const (
	pnOpNext = 0 // kinds 0-2: add next, next++
	pnOpSkip = 3 // next += v+1 (lost or skipped packets), then add next, next++
	pnOpLate = 4 // add next-1-v%next: a late or duplicated packet
	pnOpDrop = 5 // the peer acknowledged the v%16-th latest ACK frame: DropAcked
	pnOpJump = 6 // next += v<<32 (large packet numbers), add next, next++
	pnOpOld  = 7 // add v: an old packet number, usually below the floor by now
)

// FuzzReceivedPackets runs a list of operations on a ReceivedPackets and on a plain set (see
// pnChecker): Add must agree with the set except below the floor, where it must say "not new";
// the ACK frame must be descending, disjoint, hold only received numbers and every accepted
// number at or above the floor.
func FuzzReceivedPackets(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 4, 0, 4, 1, 5, 1})
	var manyGaps []byte
	for i := range 3 * 64 {
		manyGaps = append(manyGaps, pnOpSkip, byte(i%3))
	}
	for i := range 64 {
		manyGaps = append(manyGaps, pnOpLate, byte(i*4), pnOpOld, byte(i))
	}
	f.Add(manyGaps)
	f.Add([]byte{3, 9, 3, 9, 4, 3, 4, 12, 5, 15, 4, 14, 6, 1, 0, 0, 4, 2, 4, 0, 7, 3})

	f.Fuzz(func(t *testing.T, in []byte) {
		c := newPNChecker(t)
		var next uint64
		for ops := 0; len(in) >= 2 && ops < 1000; ops++ {
			kind, v := in[0]%8, uint64(in[1])
			in = in[2:]
			switch kind {
			case pnOpNext, 1, 2:
				c.add(next)
				next++
			case pnOpSkip:
				next += v + 1
				c.add(next)
				next++
			case pnOpLate:
				if next > 0 {
					c.add(next - 1 - v%next)
				}
			case pnOpDrop:
				c.dropAcked(v)
			case pnOpJump:
				next += v << 32
				c.add(next)
				next++
			case pnOpOld:
				c.add(v)
			}
		}
	})
}
