package reassembly

import "github.com/tlsgram/tlsgram/header"

// ReceivedPackets is the set of packet numbers received, kept as at most header.MaxAckRanges
// disjoint ranges: what the next ACK frame reports (RFC 9000 §13.2) and what duplicate detection
// needs (RFC 9000 §12.3: a receiver discards a packet "unless it is certain that it has not
// processed another packet with the same packet number").
//
// Memory grows with the ranges held, up to header.MaxAckRanges (1.5 KiB), and shrinks back once
// DropAcked leaves at most one range (shrink): a connection that receives in order, or is idle,
// holds a few ranges, not room for all of them (issue 8). When a new range does not fit, the lowest range is forgotten (RFC 9000 §13.2.3
// lets a receiver limit the ranges it keeps) and a floor is raised past it: packet numbers below
// the floor are reported as not new from then on, because the set can no longer tell a late
// original from a replayed duplicate. DropAcked raises the floor in the same way. Refusing a late
// original costs at most a retransmission of its data.
//
// Every change to a range stamps it with a new generation, and AppendAckFrame returns the
// generation its frame reports: DropAcked then forgets only ranges that frame reported, never a
// packet that arrived (late, into a hole) after the frame was built. Forgetting such a packet
// would leave it unacknowledged for good while its data was used — a sender that declared it
// lost could then never learn that its data arrived, for instance when the receiver closes the
// connection as soon as it has read everything.
//
// The zero value is an empty set ready to use. A ReceivedPackets is not safe for concurrent use.
type ReceivedPackets struct {
	// ranges[:n] are sorted ascending, disjoint and not adjacent (Largest+1 < next Smallest), so
	// the highest range, where in-order packets land, is the last one.
	// ranges and gens have the same length, the room for ranges held (grow, shrink).
	ranges     []header.AckRange
	gens       []uint64 // gens[k]: the generation of ranges[k]'s last change
	gen        uint64   // the latest generation handed out
	n          int
	floor      uint64 // packet numbers below floor are not new
	largest    uint64 // largest packet number ever added; valid if hasLargest
	hasLargest bool
}

// Add records packet number pn. It returns false if pn was received before or lies below the
// tracking floor; the caller must then discard the packet.
func (r *ReceivedPackets) Add(pn uint64) (isNew bool) {
	if pn < r.floor {
		return false
	}
	r.gen++
	if r.n == 0 {
		r.grow()
		r.ranges[0] = header.AckRange{Smallest: pn, Largest: pn}
		r.gens[0] = r.gen
		r.n = 1
		r.noteLargest(pn)
		return true
	}
	top := &r.ranges[r.n-1]
	if pn > top.Largest {
		if pn == top.Largest+1 {
			top.Largest = pn // the common case: the next packet in order
			r.gens[r.n-1] = r.gen
		} else {
			r.insert(r.n, pn)
		}
		r.noteLargest(pn)
		return true
	}
	// pn ≤ top.Largest: a duplicate or a reordered packet. Search down from the top, where
	// reordered packets usually land.
	for k := r.n - 1; k >= 0; k-- {
		lo := &r.ranges[k]
		if pn > lo.Largest {
			// pn lies in the hole between ranges k and k+1 (k+1 exists since pn ≤ top.Largest).
			hi := &r.ranges[k+1]
			joinsLo, joinsHi := pn == lo.Largest+1, pn+1 == hi.Smallest
			switch {
			case joinsLo && joinsHi:
				lo.Largest = hi.Largest
				r.gens[k] = r.gen
				copy(r.ranges[k+1:r.n-1], r.ranges[k+2:r.n])
				copy(r.gens[k+1:r.n-1], r.gens[k+2:r.n])
				r.n--
			case joinsLo:
				lo.Largest = pn
				r.gens[k] = r.gen
			case joinsHi:
				hi.Smallest = pn
				r.gens[k+1] = r.gen
			default:
				r.insert(k+1, pn)
			}
			return true
		}
		if pn >= lo.Smallest {
			return false
		}
	}
	// pn is below every range (and at or above the floor).
	if pn+1 == r.ranges[0].Smallest {
		r.ranges[0].Smallest = pn
		r.gens[0] = r.gen
	} else {
		r.insert(0, pn)
	}
	return true
}

// insert adds the range [pn, pn] at index pos, stamped with the current generation, making room
// by forgetting the lowest range if the set is full.
func (r *ReceivedPackets) insert(pos int, pn uint64) {
	if r.n == len(r.ranges) && r.n < header.MaxAckRanges {
		r.grow()
	}
	if r.n == len(r.ranges) {
		if pos == 0 {
			// The new range would be the lowest one and forgotten at once. pn was not seen before,
			// so it is new, but a second copy must not be: raise the floor past it.
			r.floor = pn + 1
			return
		}
		r.floor = r.ranges[0].Largest + 1
		copy(r.ranges, r.ranges[1:r.n])
		copy(r.gens, r.gens[1:r.n])
		r.n--
		pos--
	}
	copy(r.ranges[pos+1:r.n+1], r.ranges[pos:r.n])
	copy(r.gens[pos+1:r.n+1], r.gens[pos:r.n])
	r.ranges[pos] = header.AckRange{Smallest: pn, Largest: pn}
	r.gens[pos] = r.gen
	r.n++
}

// Room for ranges: the first allocation holds minRanges, and each growth doubles it, up to
// header.MaxAckRanges. shrink returns to minRanges once the room passes shrinkAbove: a room that
// reordering or a few losses grew stays, so a steady flow with some loss does not allocate over
// and over, while one that grew for a burst of losses is given back.
const (
	minRanges   = 4
	shrinkAbove = 16
)

// grow makes room for at least one more range, r.n < header.MaxAckRanges (or allocates the first
// room).
func (r *ReceivedPackets) grow() {
	if r.n < len(r.ranges) {
		return
	}
	r.resize(min(max(minRanges, 2*len(r.ranges)), header.MaxAckRanges))
}

// shrink gives back a large room once few ranges are held.
func (r *ReceivedPackets) shrink() {
	if r.n <= 1 && len(r.ranges) > shrinkAbove {
		r.resize(minRanges)
	}
}

func (r *ReceivedPackets) resize(size int) {
	ranges, gens := make([]header.AckRange, size), make([]uint64, size)
	copy(ranges, r.ranges[:r.n])
	copy(gens, r.gens[:r.n])
	r.ranges, r.gens = ranges, gens
}

func (r *ReceivedPackets) noteLargest(pn uint64) {
	if !r.hasLargest || pn > r.largest {
		r.largest = pn
		r.hasLargest = true
	}
}

// Largest returns the largest packet number ever added (DropAcked does not forget it); ok is false
// before the first Add returned true.
func (r *ReceivedPackets) Largest() (pn uint64, ok bool) { return r.largest, r.hasLargest }

// AppendAckFrame sets f's ranges to the ranges held, highest first, as an ACK frame lists them
// (RFC 9000 §19.3). f.Delay is left to the caller. With no ranges, f.NumRanges is 0 and there is
// nothing to acknowledge. The generation it returns identifies what the frame reports: pass it to
// DropAcked once the peer has acknowledged the packet that carried the frame.
func (r *ReceivedPackets) AppendAckFrame(f *header.AckFrame) (gen uint64) {
	for i := 0; i < r.n; i++ {
		f.Ranges[i] = r.ranges[r.n-1-i]
	}
	f.NumRanges = r.n
	return r.gen
}

// DropAcked forgets what an ACK frame the peer has acknowledged reported: largest is the frame's
// largest packet number and gen what AppendAckFrame returned for it. Those packets need not be
// acknowledged again (RFC 9000 §13.2.4). It forgets ranges from the bottom up while they lie
// wholly at or below largest and have not changed since the frame was built, and raises the floor past
// them, so that their packet numbers are no longer new. A packet numbered below the floor that
// arrives later is a duplicate, or a late original the sender has declared lost by now and whose
// data it sends again in a new packet; dropping it is safe either way (quic-go's
// receivedPacketHistory.IsPotentiallyDuplicate does the same).
//
// A range that changed after the frame was built holds a packet the peer has not seen
// acknowledged: it stays, with everything above it, until a later frame reporting it is
// acknowledged in turn.
func (r *ReceivedPackets) DropAcked(largest, gen uint64) {
	pn := largest + 1
	k := 0
	for k < r.n && r.ranges[k].Largest < pn && r.gens[k] <= gen {
		k++
	}
	if k > 0 {
		copy(r.ranges, r.ranges[k:r.n])
		copy(r.gens, r.gens[k:r.n])
		r.n -= k
		r.shrink()
	}
	// The floor may not pass a range still held: the packets of the lowest one are all known, so
	// its bottom is as good a floor as pn (it reaches past it or changed after the frame).
	if r.n > 0 && r.ranges[0].Smallest < pn {
		pn = r.ranges[0].Smallest
	}
	r.floor = max(r.floor, pn)
}

// NumRanges returns the number of ranges held, at most header.MaxAckRanges.
func (r *ReceivedPackets) NumRanges() int { return r.n }
