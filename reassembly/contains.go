package reassembly

import "github.com/tlsgram/tlsgram/header"

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

// Fits reports whether Add(pn), for a pn that Contains does not report, would keep pn without
// forgetting a range: the set has room for one more, or pn extends or joins ranges it holds.
//
// The session refuses a packet that does not fit before acting on it, as if it had been lost.
// Otherwise the forgotten range's packets would go unacknowledged for good while their data was
// used, and a sender that declared them lost could never learn that they arrived — which fails
// its graceful close when the receiver closes as soon as it has read everything.
func (r *ReceivedPackets) Fits(pn uint64) bool {
	if r.n < header.MaxAckRanges {
		return true
	}
	for k := r.n - 1; k >= 0; k-- {
		lo := r.ranges[k]
		if pn > lo.Largest {
			return pn == lo.Largest+1 || (k+1 < r.n && pn+1 == r.ranges[k+1].Smallest)
		}
		if pn >= lo.Smallest {
			return true
		}
	}
	return pn+1 == r.ranges[0].Smallest
}
