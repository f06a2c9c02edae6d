package header

// A stateless reset (§9.14, RFC 9000 §10.3) is what a server sends in answer to a short header
// datagram for a connection it has no state for, typically because it restarted: a datagram
// that looks like a short header packet and ends in the 16-byte token the server gave the client
// for that connection (RESET_TOKEN frame). Only the token matters; everything before it is
// random.
const (
	// StatelessResetTokenLen is the length of a stateless reset token.
	StatelessResetTokenLen = 16
	// MinStatelessResetLen is the shortest stateless reset: a first byte, 4 random bytes and the
	// token (RFC 9000 §10.3's 21 bytes). A receiver checks no shorter datagram, and a sender
	// answers only a longer one, with a shorter reset, so two endpoints cannot loop.
	MinStatelessResetLen = 1 + 4 + StatelessResetTokenLen
)

// AppendStatelessReset appends a stateless reset of size bytes (at least MinStatelessResetLen)
// ending in token. random supplies the unpredictable bytes and must hold size−16 of them. The
// first byte is that of a tagged short header (form 0, fixed bit 1, A set) with random
// packet-number length bits, so that a reset is not told apart from a genuine packet by its
// first byte.
func AppendStatelessReset(b []byte, size int, token *[StatelessResetTokenLen]byte, random []byte) []byte {
	if size < MinStatelessResetLen || len(random) < size-StatelessResetTokenLen {
		panic("header: stateless reset too short, or not enough random bytes")
	}
	n := size - StatelessResetTokenLen
	b = append(b, 0x44|random[0]&0x03)
	b = append(b, random[1:n]...)
	return append(b, token[:]...)
}

// StatelessResetToken returns the token a datagram would end with if it were a stateless reset:
// its last 16 bytes, if it is long enough and has a short header's first two bits. Whether it is
// one is for the receiver to decide, by comparing the token with the one it holds for the
// connection (in constant time).
func StatelessResetToken(dg []byte) (token [StatelessResetTokenLen]byte, ok bool) {
	if len(dg) < MinStatelessResetLen || dg[0]&0xc0 != 0x40 {
		return token, false
	}
	copy(token[:], dg[len(dg)-StatelessResetTokenLen:])
	return token, true
}
