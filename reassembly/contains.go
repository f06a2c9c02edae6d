package reassembly

// Contains reports whether Add(pn) would return false: pn was received before or lies below the
// floor. The session checks it before acting on a packet and calls Add only once the packet's
// data was stored, so that a packet whose data could not be kept is never acknowledged.
func (r *ReceivedPackets) Contains(pn uint64) bool {
	if pn < r.floor {
		return true
	}
	for k := r.n - 1; k >= 0; k-- {
		if pn > r.ranges[k].Largest {
			return false
		}
		if pn >= r.ranges[k].Smallest {
			return true
		}
	}
	return false
}
