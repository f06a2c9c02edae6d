package header

// AckRange is an inclusive range of acknowledged packet numbers.
type AckRange struct{ Smallest, Largest uint64 }

// AckFrame is the content of an ACK frame (RFC 9000 §19.3, without ECN
// counts). It is a fixed-size value so that parsing into a reused Frame
// never allocates.
type AckFrame struct {
	// Ranges[:NumRanges] are in descending order and separated by at least
	// one missing packet number; Ranges[0].Largest is the largest
	// acknowledged packet number.
	Ranges    [MaxAckRanges]AckRange
	NumRanges int
	// Delay is how long the receiver held the acknowledgement of the largest
	// packet, in microseconds, unscaled: v1 has no ack_delay_exponent
	// (RFC 9000 §18.2); 2^62 µs is ample.
	Delay uint64
}

// Validate reports whether a can be encoded: 1..MaxAckRanges ranges, each
// with Smallest <= Largest, in descending order with at least one packet
// number between neighbours (adjacent ranges must be merged: the gap field
// cannot express -1), and values within MaxVarint. Frames returned by
// ParseFrame are always valid.
func (a *AckFrame) Validate() error {
	if a.NumRanges < 1 {
		return errAckNoRanges
	}
	if a.NumRanges > MaxAckRanges {
		return errAckTooMany
	}
	r := a.Ranges[:a.NumRanges]
	if r[0].Largest > MaxVarint || a.Delay > MaxVarint {
		return errAckValueTooLarge
	}
	for i := range r {
		if r[i].Smallest > r[i].Largest {
			return errAckRangeInverted
		}
		if i > 0 && (r[i-1].Smallest < 2 || r[i].Largest > r[i-1].Smallest-2) {
			return errAckRangeOrder
		}
	}
	return nil
}

// AckLen returns the number of bytes AppendAck writes for a. It panics if a
// is not valid (see Validate).
func AckLen(a *AckFrame) int {
	mustValidAck(a)
	r := a.Ranges[:a.NumRanges]
	n := 1 + VarintLen(r[0].Largest) + VarintLen(a.Delay) + VarintLen(uint64(len(r)-1)) +
		VarintLen(r[0].Largest-r[0].Smallest)
	for i := 1; i < len(r); i++ {
		n += VarintLen(r[i-1].Smallest-r[i].Largest-2) + VarintLen(r[i].Largest-r[i].Smallest)
	}
	return n
}

// AppendAck appends an ACK frame for a. The encoding is that of
// RFC 9000 §19.3.1: the largest acknowledged packet number, the delay, the
// number of ranges after the first, the first range's length (Largest -
// Smallest), then for each further range the gap (number of missing packets
// minus one) and its length. It panics if a is not valid (see Validate):
// ranges come from our own receive state, so an invalid one is a bug there.
func AppendAck(b []byte, a *AckFrame) []byte {
	mustValidAck(a)
	r := a.Ranges[:a.NumRanges]
	b = append(b, byte(FrameAck))
	b = AppendVarint(b, r[0].Largest)
	b = AppendVarint(b, a.Delay)
	b = AppendVarint(b, uint64(len(r)-1))
	b = AppendVarint(b, r[0].Largest-r[0].Smallest)
	for i := 1; i < len(r); i++ {
		// §19.3.1: the next range's largest is previous smallest - gap - 2.
		b = AppendVarint(b, r[i-1].Smallest-r[i].Largest-2)
		b = AppendVarint(b, r[i].Largest-r[i].Smallest)
	}
	return b
}

func mustValidAck(a *AckFrame) {
	if err := a.Validate(); err != nil {
		panic("header: invalid AckFrame: " + err.Error())
	}
}

// parseAck parses an ACK frame body (after the type) into a and returns the
// bytes consumed. Every computed packet number is checked before the
// subtraction that produces it, so that no range can reach below 0
// (RFC 9000 §19.3.1: a FRAME_ENCODING_ERROR). The gap encoding cannot express
// overlapping or ascending ranges, so the result is always valid.
func parseAck(b []byte, a *AckFrame) (int, error) {
	largest, pos, err := parseVarintAt(b, 0)
	if err != nil {
		return 0, err
	}
	if a.Delay, pos, err = parseVarintAt(b, pos); err != nil {
		return 0, err
	}
	count, pos, err := parseVarintAt(b, pos)
	if err != nil {
		return 0, err
	}
	// Checked before the loop: count is attacker-chosen, up to 2^62-1.
	if count > MaxAckRanges-1 {
		return 0, errAckTooMany
	}
	first, pos, err := parseVarintAt(b, pos)
	if err != nil {
		return 0, err
	}
	if first > largest {
		return 0, errAckFirstRange
	}
	a.Ranges[0] = AckRange{Smallest: largest - first, Largest: largest}
	smallest := largest - first
	for i := 1; i <= int(count); i++ {
		var gap, length uint64
		if gap, pos, err = parseVarintAt(b, pos); err != nil {
			return 0, err
		}
		if length, pos, err = parseVarintAt(b, pos); err != nil {
			return 0, err
		}
		// gap <= 2^62-1, so gap+2 cannot overflow.
		if smallest < gap+2 {
			return 0, errAckGap
		}
		hi := smallest - gap - 2
		if length > hi {
			return 0, errAckRangeLen
		}
		smallest = hi - length
		a.Ranges[i] = AckRange{Smallest: smallest, Largest: hi}
	}
	a.NumRanges = int(count) + 1
	return pos, nil
}
