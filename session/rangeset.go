package session

// byteRange is a half-open interval [start, end) of stream offsets.
type byteRange struct{ start, end uint64 }

// rangeSet is a sorted list of disjoint, non-adjacent half-open ranges. The zero value is empty.
// The send side uses it for stream bytes acknowledged out of order and for bytes to retransmit.
// It stays small in practice (bounded by the receiver's gap cap and by losses per RTT), so a
// sorted slice beats a tree; the slice is reused, so steady state does not allocate.
type rangeSet struct{ r []byteRange }

func (s *rangeSet) empty() bool { return len(s.r) == 0 }

func (s *rangeSet) clear() { s.r = s.r[:0] }

// add inserts [start, end), merging with overlapping or adjacent ranges.
func (s *rangeSet) add(start, end uint64) {
	if start >= end {
		return
	}
	// Fast path: append at the end (the common case: ranges arrive in increasing order).
	n := len(s.r)
	if n == 0 || start > s.r[n-1].end {
		s.r = append(s.r, byteRange{start, end})
		return
	}
	// First range whose end >= start (could merge).
	i := s.search(start)
	j := i
	for j < n && s.r[j].start <= end {
		if s.r[j].start < start {
			start = s.r[j].start
		}
		if s.r[j].end > end {
			end = s.r[j].end
		}
		j++
	}
	if i == j {
		s.r = append(s.r, byteRange{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = byteRange{start, end}
		return
	}
	s.r[i] = byteRange{start, end}
	s.r = append(s.r[:i+1], s.r[j:]...)
}

// remove deletes [start, end) from the set.
func (s *rangeSet) remove(start, end uint64) {
	if start >= end || len(s.r) == 0 {
		return
	}
	i := s.search(start + 1) // first range with end > start
	for i < len(s.r) && s.r[i].start < end {
		cur := s.r[i]
		switch {
		case cur.start >= start && cur.end <= end: // fully covered
			s.r = append(s.r[:i], s.r[i+1:]...)
		case cur.start < start && cur.end > end: // split
			s.r = append(s.r, byteRange{})
			copy(s.r[i+2:], s.r[i+1:])
			s.r[i] = byteRange{cur.start, start}
			s.r[i+1] = byteRange{end, cur.end}
			return
		case cur.start < start: // trim the tail
			s.r[i].end = start
			i++
		default: // trim the head
			s.r[i].start = end
			return
		}
	}
}

// removeBelow deletes everything below off.
func (s *rangeSet) removeBelow(off uint64) {
	i := 0
	for i < len(s.r) && s.r[i].end <= off {
		i++
	}
	if i > 0 {
		s.r = append(s.r[:0], s.r[i:]...)
	}
	if len(s.r) > 0 && s.r[0].start < off {
		s.r[0].start = off
	}
}

// search returns the index of the first range whose end is >= off.
func (s *rangeSet) search(off uint64) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.r[m].end < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// first returns the lowest range.
func (s *rangeSet) first() (byteRange, bool) {
	if len(s.r) == 0 {
		return byteRange{}, false
	}
	return s.r[0], true
}
