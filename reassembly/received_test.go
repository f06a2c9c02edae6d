package reassembly

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

// ackRanges returns the ranges r would put in an ACK frame.
func ackRanges(r *ReceivedPackets) []header.AckRange {
	var f header.AckFrame
	r.AppendAckFrame(&f)
	return append([]header.AckRange{}, f.Ranges[:f.NumRanges]...)
}

func ar(smallest, largest uint64) header.AckRange {
	return header.AckRange{Smallest: smallest, Largest: largest}
}

func TestReceivedPacketsZeroValue(t *testing.T) {
	var r ReceivedPackets
	_, ok := r.Largest()
	require.False(t, ok)
	require.Zero(t, r.NumRanges())
	f := header.AckFrame{NumRanges: 5, Delay: 7}
	r.AppendAckFrame(&f)
	require.Zero(t, f.NumRanges)
	require.Equal(t, uint64(7), f.Delay, "Delay is the caller's")
	require.True(t, r.Add(0), "packet 0 is new")
	require.False(t, r.Add(0))
	pn, ok := r.Largest()
	require.True(t, ok)
	require.Zero(t, pn)
}

func TestReceivedPacketsTable(t *testing.T) {
	tests := []struct {
		name   string
		adds   []uint64
		dups   []int             // indexes into adds that must be reported as duplicates
		ranges []header.AckRange // descending
	}{
		{name: "in order", adds: []uint64{0, 1, 2, 3}, ranges: []header.AckRange{ar(0, 3)}},
		{name: "duplicates", adds: []uint64{5, 6, 5, 6, 7, 5}, dups: []int{2, 3, 5}, ranges: []header.AckRange{ar(5, 7)}},
		{name: "gap above", adds: []uint64{1, 2, 5, 6}, ranges: []header.AckRange{ar(5, 6), ar(1, 2)}},
		{name: "fill joins both sides", adds: []uint64{1, 3, 2}, ranges: []header.AckRange{ar(1, 3)}},
		{name: "extend lower range up", adds: []uint64{1, 5, 2}, ranges: []header.AckRange{ar(5, 5), ar(1, 2)}},
		{name: "extend upper range down", adds: []uint64{1, 5, 4}, ranges: []header.AckRange{ar(4, 5), ar(1, 1)}},
		{name: "new range in a hole", adds: []uint64{1, 9, 5}, ranges: []header.AckRange{ar(9, 9), ar(5, 5), ar(1, 1)}},
		{name: "below everything", adds: []uint64{10, 11, 3, 9, 2, 3}, dups: []int{5}, ranges: []header.AckRange{ar(9, 11), ar(2, 3)}},
		{name: "duplicate inside a lower range", adds: []uint64{1, 2, 3, 7, 2, 8}, dups: []int{4}, ranges: []header.AckRange{ar(7, 8), ar(1, 3)}},
		{name: "descending arrival", adds: []uint64{4, 3, 2, 1, 0}, ranges: []header.AckRange{ar(0, 4)}},
		{name: "large numbers", adds: []uint64{header.MaxVarint, header.MaxVarint - 2, header.MaxVarint - 1}, ranges: []header.AckRange{ar(header.MaxVarint-2, header.MaxVarint)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r ReceivedPackets
			for i, pn := range tt.adds {
				dup := false
				for _, d := range tt.dups {
					dup = dup || d == i
				}
				require.Equal(t, !dup, r.Add(pn), "Add #%d (%d)", i, pn)
			}
			require.Equal(t, tt.ranges, ackRanges(&r))
			require.Equal(t, len(tt.ranges), r.NumRanges())
			largest, ok := r.Largest()
			require.True(t, ok)
			require.Equal(t, tt.ranges[0].Largest, largest)
		})
	}
}

func TestReceivedPacketsFull(t *testing.T) {
	var r ReceivedPackets
	// Multiples of 3: every packet is its own range.
	for i := range uint64(header.MaxAckRanges) {
		require.True(t, r.Add(3*i))
	}
	require.Equal(t, header.MaxAckRanges, r.NumRanges())
	require.Zero(t, r.floor)

	// One more range: the lowest, {0, 0}, is forgotten, and 0 is no longer new.
	require.True(t, r.Add(1000))
	require.Equal(t, header.MaxAckRanges, r.NumRanges())
	require.Equal(t, uint64(1), r.floor)
	require.False(t, r.Add(0), "a replay of a forgotten packet is not new")
	ranges := ackRanges(&r)
	require.Equal(t, ar(1000, 1000), ranges[0])
	require.Equal(t, ar(3, 3), ranges[len(ranges)-1])

	// A packet that would become the lowest range is new once, never twice.
	require.True(t, r.Add(1))
	require.False(t, r.Add(1))
	require.Equal(t, uint64(2), r.floor)
	require.Equal(t, ranges, ackRanges(&r), "nothing else changed")

	// Growing or joining ranges needs no new range, so nothing is forgotten.
	require.True(t, r.Add(2))
	require.True(t, r.Add(4))
	require.Equal(t, header.MaxAckRanges, r.NumRanges())
	require.True(t, r.Add(5))
	require.Equal(t, header.MaxAckRanges-1, r.NumRanges())
	require.Equal(t, ar(2, 6), ackRanges(&r)[header.MaxAckRanges-2])

	// A new range in a full set forgets the lowest range.
	require.True(t, r.Add(1002))
	require.Equal(t, header.MaxAckRanges, r.NumRanges())
	require.True(t, r.Add(1004))
	require.Equal(t, uint64(7), r.floor, "{2, 6} was forgotten")
	require.False(t, r.Add(6))
	require.False(t, r.Add(2))
	require.True(t, r.Add(8), "the hole above the forgotten range is still tracked")
	require.True(t, r.Add(7))
	require.Equal(t, ar(7, 9), ackRanges(&r)[header.MaxAckRanges-1])
}

func TestReceivedPacketsContains(t *testing.T) {
	var r ReceivedPackets
	require.False(t, r.Contains(0))
	for _, pn := range []uint64{3, 4, 5, 9, 12, 13} {
		r.Add(pn)
	}
	for pn := range uint64(16) {
		want := (pn >= 3 && pn <= 5) || pn == 9 || pn == 12 || pn == 13
		require.Equal(t, want, r.Contains(pn), "Contains(%d)", pn)
	}
	dropAll(&r)
	require.True(t, r.Contains(8), "below the floor: Add would say not new")
	require.True(t, r.Contains(0))
	require.False(t, r.Contains(14))
}

// dropAll acknowledges a frame reporting everything r holds.
func dropAll(r *ReceivedPackets) {
	var f header.AckFrame
	gen := r.AppendAckFrame(&f)
	if f.NumRanges > 0 {
		r.DropAcked(f.Ranges[0].Largest, gen)
	}
}

func TestReceivedPacketsDropAcked(t *testing.T) {
	var r ReceivedPackets
	for _, pn := range []uint64{1, 2, 3, 6, 7, 10, 11, 12} {
		require.True(t, r.Add(pn))
	}
	var f header.AckFrame
	gen := r.AppendAckFrame(&f)
	r.DropAcked(6, gen)
	require.Equal(t, []header.AckRange{ar(10, 12), ar(6, 7)}, ackRanges(&r), "ranges reaching past 6 are kept")
	require.False(t, r.Add(4), "below the floor")
	require.False(t, r.Add(7))
	require.True(t, r.Add(8))
	r.DropAcked(2, gen) // never lowers the floor
	require.False(t, r.Add(5))

	gen = r.AppendAckFrame(&f)
	r.DropAcked(99, gen)
	require.Zero(t, r.NumRanges())
	largest, ok := r.Largest()
	require.True(t, ok)
	require.Equal(t, uint64(12), largest, "Largest survives DropAcked")
	require.False(t, r.Add(99))
	require.True(t, r.Add(100))
	require.Equal(t, []header.AckRange{ar(100, 100)}, ackRanges(&r))
}

// TestReceivedPacketsLateArrivalSurvivesDrop is the case that made a graceful close fail: packet
// 13 arrives late, into a hole, after an ACK frame reporting up to 15 was sent. When that frame is
// acknowledged, 13 must still be reported, or the sender — which declared 13 lost — never learns
// that its data arrived.
func TestReceivedPacketsLateArrivalSurvivesDrop(t *testing.T) {
	var r ReceivedPackets
	for _, pn := range []uint64{10, 11, 12, 14, 15} {
		r.Add(pn)
	}
	var f header.AckFrame
	gen := r.AppendAckFrame(&f) // sent: 14-15, 10-12
	require.True(t, r.Add(13))  // late, into the hole
	require.True(t, r.Add(16))
	r.DropAcked(15, gen)
	require.Equal(t, []header.AckRange{ar(10, 16)}, ackRanges(&r), "13 is reported again")
	require.False(t, r.Add(13))
	require.False(t, r.Add(9), "below what was reported: not new")

	// Late into a lower hole, with a reported range above it.
	r = ReceivedPackets{}
	for _, pn := range []uint64{1, 3, 5, 6} {
		r.Add(pn)
	}
	gen = r.AppendAckFrame(&f)
	r.Add(2)
	r.DropAcked(6, gen)
	require.Equal(t, []header.AckRange{ar(5, 6), ar(1, 3)}, ackRanges(&r))
	gen = r.AppendAckFrame(&f)
	r.DropAcked(6, gen)
	require.Zero(t, r.NumRanges(), "gone once reported and acknowledged")
	for pn := range uint64(7) {
		require.True(t, r.Contains(pn), "Contains(%d) after everything up to 6 was acknowledged", pn)
	}
}

// pnChecker runs ReceivedPackets against a set of the packet numbers it accepted. It also plays
// the peer acknowledging ACK frames: every frame built is remembered (the last few), and
// dropAcked acknowledges one of them. A packet accepted and not yet reported by an acknowledged
// frame must stay in the ranges, except when the range cap forgets it.
type pnChecker struct {
	t         testing.TB
	r         ReceivedPackets
	seen      map[uint64]bool
	pending   map[uint64]bool // accepted, not reported by an acknowledged frame, not capped away
	above     int             // accepted numbers at or above prevFloor
	largest   uint64
	prevFloor uint64
	f         header.AckFrame
	frames    []sentFrame // the latest frames built, oldest first
}

type sentFrame struct {
	gen    uint64
	ranges []header.AckRange
}

func newPNChecker(t testing.TB) *pnChecker {
	return &pnChecker{t: t, seen: make(map[uint64]bool), pending: make(map[uint64]bool)}
}

func (c *pnChecker) add(pn uint64) {
	floor := c.r.floor
	contains := c.r.Contains(pn)
	isNew := c.r.Add(pn)
	must(c.t, contains == !isNew, "Contains(%d) = %v before Add(%d) = %v", pn, contains, pn, isNew)
	if pn < floor {
		must(c.t, !isNew, "Add(%d) below the floor %d is new", pn, floor)
	} else {
		must(c.t, isNew == !c.seen[pn], "Add(%d) = %v, but seen before: %v", pn, isNew, c.seen[pn])
	}
	if isNew {
		c.seen[pn] = true
		c.pending[pn] = true
		c.above++
		c.largest = max(c.largest, pn)
	}
	// Only the range cap may forget a pending packet here.
	for p := range c.pending {
		if !c.inRanges(p) {
			must(c.t, c.r.n == header.MaxAckRanges, "Add(%d) forgot unreported packet %d with %d ranges", pn, p, c.r.n)
			delete(c.pending, p)
		}
	}
	c.check()
}

func (c *pnChecker) inRanges(pn uint64) bool {
	for _, a := range c.r.ranges[:c.r.n] {
		if pn >= a.Smallest && pn <= a.Largest {
			return true
		}
	}
	return false
}

// dropAcked acknowledges the v-th latest frame built.
func (c *pnChecker) dropAcked(v uint64) {
	if len(c.frames) == 0 {
		return
	}
	fr := c.frames[len(c.frames)-1-int(v%uint64(len(c.frames)))]
	c.r.DropAcked(fr.ranges[0].Largest, fr.gen)
	for _, a := range fr.ranges {
		for pn := a.Smallest; ; pn++ {
			delete(c.pending, pn)
			must(c.t, c.r.Contains(pn), "reported packet %d is new again after DropAcked", pn)
			if pn == a.Largest {
				break
			}
		}
	}
	for p := range c.pending {
		must(c.t, c.inRanges(p), "DropAcked(%d) forgot packet %d, which no acknowledged frame reported", fr.ranges[0].Largest, p)
	}
	c.check()
}

func (c *pnChecker) check() {
	t, r := c.t, &c.r
	must(t, r.floor >= c.prevFloor, "the floor went down from %d to %d", c.prevFloor, r.floor)
	if r.floor != c.prevFloor {
		c.above = 0
		for pn := range c.seen {
			if pn >= r.floor {
				c.above++
			}
		}
		c.prevFloor = r.floor
	}
	largest, ok := r.Largest()
	must(t, ok == (len(c.seen) > 0) && largest == c.largest, "Largest() = %d, %v; want %d", largest, ok, c.largest)

	gen := r.AppendAckFrame(&c.f)
	if c.f.NumRanges > 0 {
		if len(c.frames) == 16 {
			c.frames = append(c.frames[:0], c.frames[1:]...)
		}
		c.frames = append(c.frames, sentFrame{gen, append([]header.AckRange(nil), c.f.Ranges[:c.f.NumRanges]...)})
	}
	must(t, c.f.NumRanges == r.NumRanges() && c.f.NumRanges <= header.MaxAckRanges,
		"ACK frame has %d ranges, NumRanges() = %d", c.f.NumRanges, r.NumRanges())
	inRanges := 0 // numbers at or above the floor that the ranges hold
	for i, a := range c.f.Ranges[:c.f.NumRanges] {
		must(t, a.Smallest <= a.Largest, "range %d: %v", i, a)
		// Descending, disjoint, and with a hole between, as an ACK frame needs.
		must(t, i == 0 || c.f.Ranges[i-1].Smallest > a.Largest+1, "range %d: %v after %v", i, a, c.f.Ranges[max(i-1, 0)])
		for pn := a.Smallest; ; pn++ {
			if !c.seen[pn] {
				must(t, false, "ACK range %d holds %d, never received", i, pn)
			}
			if pn >= r.floor {
				inRanges++
			}
			if pn == a.Largest {
				break
			}
		}
	}
	// The ranges hold every accepted number at or above the floor: a later copy of one is a
	// duplicate the set recognises.
	must(t, c.above == inRanges, "%d accepted packets at or above the floor %d, the ranges hold %d", c.above, r.floor, inRanges)
}

// TestReceivedPacketsRandom compares ReceivedPackets with a plain set on the packet numbers of a
// sender whose path loses, reorders and duplicates.
func TestReceivedPacketsRandom(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 0xac4))
			c := newPNChecker(t)
			var next uint64
			lossPct := 1 + rng.IntN(30)
			for range 3000 {
				switch r := rng.IntN(100); {
				case r < 60:
					if rng.IntN(100) >= lossPct {
						c.add(next)
					}
					next++
				case r < 85: // late or duplicated
					if next > 0 {
						c.add(next - 1 - rng.Uint64N(min(next, 200)))
					}
				case r < 90: // a burst lost
					next += rng.Uint64N(20)
				case r < 92: // one of our ACK frames was acknowledged
					c.dropAcked(rng.Uint64N(4))
				default: // a skipped packet number (RFC 9000 §21.4)
					next++
				}
			}
		})
	}
}

func TestReceivedPacketsAllocs(t *testing.T) {
	var r ReceivedPackets
	var f header.AckFrame
	var pn, gen uint64
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		r.Add(pn + 1)
		if !r.Contains(pn) {
			r.Add(pn)
		}
		if pn%7 == 0 {
			pn++ // a hole
		}
		pn += 2
		gen = r.AppendAckFrame(&f)
		if pn%64 == 0 {
			r.DropAcked(pn-100, gen)
		}
	}))
}

// TestReceivedPacketsFits: with every range in use, only a packet number that extends or joins
// ranges fits; below the limit everything does.
func TestReceivedPacketsFits(t *testing.T) {
	var r ReceivedPackets
	require.True(t, r.Fits(0))
	// Ranges {0}, {2}, {4}, …: every other number, until the set is full.
	for i := uint64(0); i < header.MaxAckRanges; i++ {
		require.True(t, r.Fits(2*i))
		require.True(t, r.Add(2*i))
	}
	require.Equal(t, header.MaxAckRanges, r.NumRanges())
	top := uint64(2 * (header.MaxAckRanges - 1))
	require.True(t, r.Fits(top+1), "extends the top range")
	require.False(t, r.Fits(top+2), "would open a 65th range")
	require.True(t, r.Fits(3), "joins {2} and {4}")
	require.True(t, r.Fits(4), "already held: Contains reports it")
	require.Equal(t, uint64(0), r.ranges[0].Smallest)
	r.DropAcked(0, r.gen) // forget {0}: room again
	require.True(t, r.Fits(top+2))
}

// TestReceivedPacketsRoomFollowsRanges: the room for ranges grows with the holes and is given
// back once an acknowledged ACK leaves one range, so an idle connection does not keep room for
// header.MaxAckRanges (issue 8); below shrinkAbove it stays, so that a few holes now and then
// cost no allocation.
func TestReceivedPacketsRoomFollowsRanges(t *testing.T) {
	var r ReceivedPackets
	require.Zero(t, len(r.ranges), "no room before the first packet")
	r.Add(0)
	require.Equal(t, minRanges, len(r.ranges))
	for pn := uint64(2); pn < 2*40; pn += 2 { // 40 ranges
		r.Add(pn)
	}
	require.Equal(t, 40, r.NumRanges())
	require.Equal(t, header.MaxAckRanges, len(r.ranges))
	r.Add(2 * 40) // in order: joins nothing, a 41st range
	var f header.AckFrame
	gen := r.AppendAckFrame(&f)
	require.Equal(t, 41, f.NumRanges, "the frame reports every range")
	r.DropAcked(f.Ranges[0].Largest-1, gen) // all but the top range acknowledged
	require.Equal(t, 1, r.NumRanges())
	require.Equal(t, minRanges, len(r.ranges), "room given back")
	require.Equal(t, []header.AckRange{ar(80, 80)}, ackRanges(&r))
	require.False(t, r.Add(78), "the floor still stops what was dropped")

	// A few holes grow the room to shrinkAbove at most, which then stays.
	for pn := uint64(82); pn < 82+2*shrinkAbove-2; pn += 2 {
		r.Add(pn)
	}
	require.Equal(t, shrinkAbove, len(r.ranges))
	gen = r.AppendAckFrame(&f)
	r.DropAcked(f.Ranges[0].Largest-1, gen)
	require.Equal(t, 1, r.NumRanges())
	require.Equal(t, shrinkAbove, len(r.ranges), "a small room stays")
}
