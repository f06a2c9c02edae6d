package header

import "math/bits"

// Packet numbers are 62-bit counters, one per datagram, never reused
// (RFC 9002 §4.2: unambiguous RTT samples). On the wire they are truncated
// to their low 1..4 bytes; the receiver recovers the full value from the
// largest packet number it has received so far.

// PacketNumberLen returns how many bytes (1..4) to use on the wire for pn,
// given the largest packet number the peer has acknowledged, or NoPacket if
// it has acknowledged none. The length must cover more than twice the
// distance from largestAcked to pn, so that the receiver's decoding window
// (DecodePacketNumber) still contains pn (RFC 9000 §17.1, Appendix A.2).
// Without an acknowledgement, and whenever the distance is too large for
// fewer bytes, it returns 4.
func PacketNumberLen(pn, largestAcked uint64) int {
	if largestAcked == NoPacket || pn <= largestAcked {
		return 4
	}
	// A.2: min_bits = log2(num_unacked) + 1, rounded up to whole bytes.
	n := (bits.Len64(pn-largestAcked) + 1 + 7) / 8
	if n > 4 {
		return 4
	}
	return n
}

// DecodePacketNumber expands a packet number truncated to pnLen bytes to the
// full value closest to largest+1, where largest is the largest packet number
// received so far in this packet number space, or NoPacket if none
// (RFC 9000 §17.1, Appendix A.3). Bits of truncated above pnLen bytes are
// ignored. A pnLen outside 1..4 (which Open never returns) yields truncated
// unchanged.
func DecodePacketNumber(largest, truncated uint64, pnLen int) uint64 {
	if pnLen < 1 || pnLen > 4 {
		return truncated
	}
	expected := largest + 1 // NoPacket+1 wraps to 0: expect packet 0
	win := uint64(1) << (8 * pnLen)
	hwin := win / 2
	mask := win - 1
	candidate := expected&^mask | truncated&mask
	// A.3 compares in signed arithmetic; expected-hwin is negative (and the
	// first branch impossible) when expected < hwin.
	if expected >= hwin && candidate <= expected-hwin && candidate < 1<<62-win {
		return candidate + win
	}
	if candidate > expected+hwin && candidate >= win {
		return candidate - win
	}
	return candidate
}
