package header

import "encoding/binary"

// MaxVarint is the largest value a variable-length integer can hold
// (RFC 9000 §16: 62 usable bits).
const MaxVarint = 1<<62 - 1

// VarintLen returns the number of bytes AppendVarint writes for v: the
// shortest of 1, 2, 4 or 8 bytes that holds it (RFC 9000 §16, Table 4).
// It panics if v > MaxVarint; values we encode come from local state, never
// directly from the network, so that is a programming error.
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	case v <= MaxVarint:
		return 8
	}
	panic("header: varint value exceeds 2^62-1")
}

// AppendVarint appends v in the shortest QUIC variable-length encoding: the
// two most significant bits of the first byte give the length (00=1, 01=2,
// 10=4, 11=8 bytes), the remaining bits hold v big-endian (RFC 9000 §16).
// It panics if v > MaxVarint (see VarintLen).
func AppendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v))
	case v < 1<<30:
		return binary.BigEndian.AppendUint32(b, 0x80<<24|uint32(v))
	case v <= MaxVarint:
		return binary.BigEndian.AppendUint64(b, 0xc0<<56|v)
	}
	panic("header: varint value exceeds 2^62-1")
}

// ParseVarint reads one variable-length integer from the start of b and
// returns it with the number of bytes consumed. Encodings longer than
// necessary are accepted, as RFC 9000 §16 requires (frame types are the one
// exception, checked by ParseFrame). The only possible error is ErrTruncated:
// every 1, 2, 4 or 8 byte pattern is a valid value.
func ParseVarint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, errVarintTruncated
	}
	switch b[0] >> 6 {
	case 0:
		return uint64(b[0]), 1, nil
	case 1:
		if len(b) < 2 {
			return 0, 0, errVarintTruncated
		}
		return uint64(binary.BigEndian.Uint16(b)) & (1<<14 - 1), 2, nil
	case 2:
		if len(b) < 4 {
			return 0, 0, errVarintTruncated
		}
		return uint64(binary.BigEndian.Uint32(b)) & (1<<30 - 1), 4, nil
	default:
		if len(b) < 8 {
			return 0, 0, errVarintTruncated
		}
		return binary.BigEndian.Uint64(b) & MaxVarint, 8, nil
	}
}
