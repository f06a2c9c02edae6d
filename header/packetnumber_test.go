package header_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

func TestDecodePacketNumber(t *testing.T) {
	cases := []struct {
		name      string
		largest   uint64
		truncated uint64
		pnLen     int
		want      uint64
	}{
		// RFC 9000 Appendix A.3.
		{"RFC 9000 A.3", 0xa82f30ea, 0x9b32, 2, 0xa82f9b32},
		// The RFC 9000 §17.1 example: largest 0xabe8b3, 0xac5c02 sent in 2 bytes.
		{"RFC 9000 17.1", 0xabe8b3, 0x5c02, 2, 0xac5c02},
		{"first packet", header.NoPacket, 0, 4, 0},
		{"first packet 1 byte", header.NoPacket, 0x05, 1, 5},
		{"next", 41, 42, 1, 42},
		{"wrap upward", 0xff, 0x00, 1, 0x100},
		{"wrap upward 2", 0x1fffe, 0x0001, 2, 0x20001},
		{"late packet across a wrap", 0x100, 0xff, 1, 0xff},
		{"late packet, just under half a window back", 0x1000, 0x82, 1, 0xf82},
		{"tie goes to the later candidate", 0x1000, 0x81, 1, 0x1081},
		{"half window ahead", 0x1000, 0x80, 1, 0x1080},
		{"no wrap below 0", 0x10, 0xf0, 1, 0xf0},
		{"does not go past 2^62", header.MaxVarint - 10, 0x00, 1, 1<<62 - 256},
		{"near 2^62 with 4 bytes", header.MaxVarint - 1, 0xffffffff, 4, header.MaxVarint},
		{"high bits of truncated ignored", 41, 0xff2a, 1, 42},
		{"invalid length returned unchanged", 41, 7, 0, 7},
		{"invalid length 5", 41, 7, 5, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, header.DecodePacketNumber(tc.largest, tc.truncated, tc.pnLen))
		})
	}
}

func TestPacketNumberLen(t *testing.T) {
	cases := []struct {
		pn, largestAcked uint64
		want             int
	}{
		// RFC 9000 Appendix A.2 / §17.1 examples.
		{0xac5c02, 0xabe8b3, 2},
		{0xace8fe, 0xabe8b3, 3},
		{0, header.NoPacket, 4},
		{1 << 40, header.NoPacket, 4},
		{5, 4, 1},
		{127, 0, 1}, // 127 unacked: 7 bits + 1 = 8 bits
		{128, 0, 2}, // 128: 8 bits + 1 = 9 bits
		{1<<15 - 1, 0, 2},
		{1 << 15, 0, 3},
		{1<<31 - 1, 0, 4},
		{1 << 31, 0, 4}, // too far even for 4 bytes: the caller must not let that happen
		{4, 4, 4},       // not after largestAcked: the safe choice
		{3, 4, 4},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, header.PacketNumberLen(tc.pn, tc.largestAcked), "pn %#x acked %#x", tc.pn, tc.largestAcked)
	}
}

// TestPacketNumberRoundTrip checks the property the two functions exist for:
// a packet number encoded with PacketNumberLen decodes to itself at any
// receiver whose largest received packet lies between the sender's largest
// acknowledged and the packet itself.
func TestPacketNumberRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		acked := rng.Uint64N(1 << 61)
		dist := uint64(1) << rng.UintN(31)
		pn := acked + 1 + rng.Uint64N(dist)
		received := acked + rng.Uint64N(pn-acked)
		n := header.PacketNumberLen(pn, acked)
		truncated := pn & (1<<(8*n) - 1)
		require.Equal(t, pn, header.DecodePacketNumber(received, truncated, n),
			"pn %#x acked %#x received %#x len %d", pn, acked, received, n)
	}
	// First packets, before any acknowledgement: 4 bytes, nothing received.
	for pn := range uint64(1000) {
		require.Equal(t, pn, header.DecodePacketNumber(header.NoPacket, pn, header.PacketNumberLen(pn, header.NoPacket)))
	}
}
