package header_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

const (
	testDCID = 0x0102030405060708
	testSCID = 0xa1a2a3a4a5a6a7a8
)

type headerCase struct {
	name    string
	h       header.Header
	payload []byte
	// want is what Open returns when it differs from h: the truncated packet
	// number, the zero PNLen of Retry and Version Negotiation, ...
	want *header.Header
}

func headerCases() []headerCase {
	ping := []byte{byte(header.FramePing)}
	token := bytes.Repeat([]byte{0x5a}, 100) // 100 bytes: a two-byte length varint
	versions := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, header.Version1), 0x0a0a0a0a)
	cases := []headerCase{
		{name: "initial/no token", h: header.Header{Type: header.TypeInitial, Version: header.Version1,
			DstConnID: testDCID, SrcConnID: testSCID, PacketNumber: 0, PNLen: 4}, payload: ping},
		{name: "initial/short token", h: header.Header{Type: header.TypeInitial, Version: header.Version1,
			DstConnID: testDCID, SrcConnID: testSCID, Token: []byte("tok"), PacketNumber: 7, PNLen: 1},
			payload: ping},
		{name: "initial/long token", h: header.Header{Type: header.TypeInitial, Version: header.Version1,
			DstConnID: testDCID, SrcConnID: testSCID, Token: token, PacketNumber: 0x1234, PNLen: 2},
			payload: header.AppendPadding(clone(ping), 1100)},
		{name: "initial/unknown version", h: header.Header{Type: header.TypeInitial, Version: 0x12345678,
			DstConnID: testDCID, SrcConnID: testSCID, PacketNumber: 1, PNLen: 1}, payload: ping},
		{name: "retry", h: header.Header{Type: header.TypeRetry, Version: header.Version1,
			DstConnID: testDCID, SrcConnID: testSCID, Token: token}},
		{name: "version negotiation", h: header.Header{Type: header.TypeVersionNegotiation,
			DstConnID: testDCID, SrcConnID: testSCID}, payload: versions},
	}
	for pnLen := 1; pnLen <= 4; pnLen++ {
		// The full packet number has more bytes than fit: only the low
		// pnLen bytes go on the wire.
		const full = 0x3a_bbccddee
		cases = append(cases,
			headerCase{name: "handshake/pn" + string(rune('0'+pnLen)), h: header.Header{
				Type: header.TypeHandshake, Version: header.Version1, DstConnID: testDCID,
				SrcConnID: testSCID, PacketNumber: full, PNLen: pnLen}, payload: ping},
			headerCase{name: "short/pn" + string(rune('0'+pnLen)), h: header.Header{
				Type: header.TypeShort, DstConnID: testDCID, PacketNumber: full, PNLen: pnLen},
				payload: header.AppendStream(nil, 5, []byte("hello"), true)},
		)
	}
	for i := range cases {
		w := cases[i].h
		switch w.Type {
		case header.TypeRetry, header.TypeVersionNegotiation:
			w.PNLen = 0
		default:
			w.PacketNumber &= 1<<(8*w.PNLen) - 1
		}
		cases[i].want = &w
	}
	return cases
}

func buildDatagram(h *header.Header, payload []byte) []byte {
	b := header.AppendHeader(nil, h)
	b = append(b, payload...)
	return header.Seal(b, 0)
}

// fixedLen is the length below which the datagram's header cannot be
// complete: the header without any variable body (Retry token, version list).
func fixedLen(h *header.Header) int {
	if h.Type == header.TypeRetry {
		return 1 + 4 + 2*header.ConnIDLen
	}
	return header.HeaderLen(h)
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, tc := range headerCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := header.AppendHeader(nil, &tc.h)
			require.Len(t, b, header.HeaderLen(&tc.h))
			dg := buildDatagram(&tc.h, tc.payload)
			require.Len(t, dg, header.HeaderLen(&tc.h)+len(tc.payload)+header.TrailerLen)

			h, payload, err := header.Open(dg)
			require.NoError(t, err)
			require.Equal(t, *tc.want, h)
			require.Equal(t, tc.payload, payload)

			cid, long, ok := header.PeekDstConnID(dg)
			require.True(t, ok)
			require.Equal(t, tc.h.DstConnID, cid)
			require.Equal(t, tc.h.Type != header.TypeShort, long)

			// Re-encoding what Open returned gives the same bytes.
			require.Equal(t, dg, buildDatagram(&h, payload))
		})
	}
}

// TestSealWithOffset builds a datagram after other bytes in the same buffer,
// as a batch sender does, and checks that Seal covers only the datagram.
func TestSealWithOffset(t *testing.T) {
	prefix := []byte("previous datagram in the batch")
	h := header.Header{Type: header.TypeShort, DstConnID: testDCID, PacketNumber: 9, PNLen: 1}
	b := header.AppendHeader(clone(prefix), &h)
	b = header.AppendPing(b)
	b = header.Seal(b, len(prefix))
	require.Equal(t, prefix, b[:len(prefix)])
	got, payload, err := header.Open(b[len(prefix):])
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, []byte{0x01}, payload)
}

// TestGoldenVector pins the exact bytes of README.md's example datagram and
// the CRC-32C check value, so that the spec and the code cannot drift apart.
func TestGoldenVector(t *testing.T) {
	// CRC-32C("123456789") = 0xe3069283 (RFC 3720 §B.4, the standard check value).
	require.Equal(t, []byte("123456789\xe3\x06\x92\x83"), header.Seal([]byte("123456789"), 0))

	h := header.Header{Type: header.TypeShort, DstConnID: testDCID, PacketNumber: 0x1234, PNLen: 2}
	b := header.AppendHeader(nil, &h)
	b = header.AppendAck(b, &header.AckFrame{
		Ranges:    [header.MaxAckRanges]header.AckRange{{Smallest: 95, Largest: 100}, {Smallest: 80, Largest: 90}},
		NumRanges: 2, Delay: 25})
	b = header.AppendStream(b, 1000, []byte("hi"), false)
	b = header.Seal(b, 0)
	const want = "41" + "0102030405060708" + "1234" + // short header, PN length 2
		"02" + "4064" + "19" + "01" + "05" + "03" + "0a" + // ACK 100-95, 90-80, delay 25µs
		"08" + "43e8" + "02" + "6869" + // STREAM offset 1000 "hi"
		"0c754e59" // CRC-32C (checked with an independent bitwise implementation)
	require.Equal(t, want, hex.EncodeToString(b))
}

func TestOpenTruncatedEveryPosition(t *testing.T) {
	for _, tc := range headerCases() {
		t.Run(tc.name, func(t *testing.T) {
			dg := buildDatagram(&tc.h, tc.payload)
			body := dg[:len(dg)-header.TrailerLen]
			fixed := fixedLen(&tc.h)
			for i := range len(body) {
				// Without resealing, the trailer no longer matches.
				_, _, err := header.Open(dg[:i+header.TrailerLen])
				if i == 0 {
					require.ErrorIs(t, err, header.ErrTruncated)
				} else {
					require.ErrorIs(t, err, header.ErrIntegrity, "prefix %d", i)
				}

				// Resealed: the CRC passes and the header parser sees the cut.
				h, payload, err := header.Open(header.Seal(clone(body[:i]), 0))
				switch {
				case i < fixed:
					require.ErrorIs(t, err, header.ErrTruncated, "prefix %d", i)
				case i == fixed:
					// No frames, no Retry token, no versions.
					require.ErrorIs(t, err, header.ErrMalformed, "prefix %d", i)
				case tc.h.Type == header.TypeVersionNegotiation && (i-fixed)%4 != 0:
					require.ErrorIs(t, err, header.ErrMalformed, "prefix %d", i)
				case tc.h.Type == header.TypeRetry:
					require.NoError(t, err, "prefix %d", i)
					require.Equal(t, tc.h.Token[:i-fixed], h.Token)
				default:
					require.NoError(t, err, "prefix %d", i)
					require.Equal(t, body[fixed:i], payload)
				}
				if err != nil {
					requireSentinel(t, err)
					require.Equal(t, header.Header{}, h)
					require.Nil(t, payload)
				}
			}
		})
	}
}

func TestOpenRejectsCorruption(t *testing.T) {
	for _, tc := range headerCases() {
		t.Run(tc.name, func(t *testing.T) {
			dg := buildDatagram(&tc.h, tc.payload)
			// CRC-32C detects every single-bit error, trailer included — except a flip of a
			// short header's authentication flag (bit 2 of byte 0), which turns the datagram into
			// one whose last 16 bytes are a tag: Open then parses it and reports Authenticated,
			// and the session's tag check rejects it (session.TestForgedAndFlippedAuthDropped).
			for bit := range 8 * len(dg) {
				c := clone(dg)
				c[bit/8] ^= 1 << (bit % 8)
				h, _, err := header.Open(c)
				if tc.h.Type == header.TypeShort && bit == 2 {
					if err == nil {
						require.True(t, h.Authenticated)
					}
					continue
				}
				require.ErrorIs(t, err, header.ErrIntegrity, "bit %d", bit)
			}
			// ... and every burst of up to 32 bits (here: 4 aligned bytes).
			for i := 0; i+4 <= len(dg); i++ {
				c := clone(dg)
				for j := range 4 {
					c[i+j] ^= 0xa5
				}
				h, _, err := header.Open(c)
				if i == 0 && c[0]&0xc4 == 0x44 {
					// The burst made it a short header with the authentication flag: no CRC to
					// fail; it is rejected by the first-byte rules or, if it parses, by the
					// session's tag check.
					if err == nil {
						require.True(t, h.Authenticated)
					} else {
						require.ErrorIs(t, err, header.ErrMalformed)
					}
					continue
				}
				require.ErrorIs(t, err, header.ErrIntegrity, "burst at %d", i)
			}
		})
	}
}

// resealed modifies the first byte of a datagram and fixes the trailer, to
// test the checks that come after the CRC.
func resealed(dg []byte, first byte) []byte {
	body := clone(dg[:len(dg)-header.TrailerLen])
	body[0] = first
	return header.Seal(body, 0)
}

func TestOpenFirstByteRules(t *testing.T) {
	cases := headerCases()
	byType := map[header.PacketType][]byte{}
	for _, tc := range cases {
		if _, ok := byType[tc.h.Type]; !ok {
			byType[tc.h.Type] = buildDatagram(&tc.h, tc.payload)
		}
	}
	for typ, dg := range byType {
		t.Run(typ.String(), func(t *testing.T) {
			first := dg[0]
			_, _, err := header.Open(resealed(dg, first&^0x40))
			require.ErrorIs(t, err, header.ErrMalformed, "fixed bit clear")
			_, _, ok := header.PeekDstConnID(resealed(dg, first&^0x40))
			require.False(t, ok)

			var reserved byte
			switch typ {
			case header.TypeShort:
				reserved = 0x38 // bit 2 is the authentication flag
			case header.TypeInitial, header.TypeHandshake:
				reserved = 0x0c
			case header.TypeRetry:
				reserved = 0x0f // no packet number: its length bits are reserved too
			case header.TypeVersionNegotiation:
				// Version Negotiation ignores bits 5..0 (type, reserved, PN length).
				for low := range byte(0x40) {
					h, _, err := header.Open(resealed(dg, 0xc0|low))
					require.NoError(t, err)
					require.Equal(t, header.TypeVersionNegotiation, h.Type)
				}
				return
			}
			for bit := range 8 {
				if reserved&(1<<bit) == 0 {
					continue
				}
				_, _, err := header.Open(resealed(dg, first|1<<bit))
				require.ErrorIs(t, err, header.ErrMalformed, "reserved bit %d", bit)
			}
		})
	}
	t.Run("reserved long type", func(t *testing.T) {
		dg := byType[header.TypeHandshake]
		_, _, err := header.Open(resealed(dg, dg[0]|0x30))
		require.ErrorIs(t, err, header.ErrMalformed)
	})
}

func TestOpenTokenLength(t *testing.T) {
	prefix := header.AppendHeader(nil, &header.Header{Type: header.TypeHandshake, Version: header.Version1,
		DstConnID: testDCID, SrcConnID: testSCID, PNLen: 1})
	prefix = prefix[:1+4+16] // long fixed part
	prefix[0] = 0xc0         // Initial, PN length 1
	rest := []byte{0x00, 0x01, 0x01, 0x01}

	cases := []struct {
		name   string
		length []byte // token length varint
		err    error
	}{
		{"max varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, header.ErrTruncated},
		{"2^32 (would wrap a 32-bit int)", []byte{0xc0, 0, 0, 1, 0, 0, 0, 0}, header.ErrTruncated},
		{"one past the end", []byte{byte(len(rest) + 1)}, header.ErrTruncated},
		{"to the end: no packet number", []byte{byte(len(rest))}, header.ErrTruncated},
		{"varint cut by the end", []byte{0x80, 0x00}, header.ErrTruncated},
		{"leaves packet number but no frames", []byte{byte(len(rest) - 1)}, header.ErrMalformed},
		{"non-minimal length accepted", []byte{0x40, 0x02}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := append(clone(prefix), tc.length...)
			if tc.name != "varint cut by the end" {
				b = append(b, rest...)
			}
			h, payload, err := header.Open(header.Seal(b, 0))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []byte{0x00, 0x01}, h.Token)
			require.Equal(t, uint64(1), h.PacketNumber)
			require.Equal(t, []byte{0x01}, payload)
		})
	}
}

func TestOpenTooShort(t *testing.T) {
	for n := range 5 {
		_, _, err := header.Open(make([]byte, n))
		require.ErrorIs(t, err, header.ErrTruncated)
	}
	_, _, err := header.Open(nil)
	require.ErrorIs(t, err, header.ErrTruncated)
}

func TestVersionNegotiation(t *testing.T) {
	versions := []uint32{0x0a0a0a0a, header.Version1}
	dg := header.AppendVersionNegotiation([]byte("xx"), testSCID, testDCID, versions)[2:]
	h, list, err := header.Open(dg)
	require.NoError(t, err)
	require.Equal(t, header.Header{Type: header.TypeVersionNegotiation, DstConnID: testSCID, SrcConnID: testDCID}, h)
	require.Equal(t, []byte{0x0a, 0x0a, 0x0a, 0x0a, 0x54, 0x47, 0x00, 0x01}, list)

	_, _, err = header.Open(header.AppendVersionNegotiation(nil, 1, 2, nil))
	require.ErrorIs(t, err, header.ErrMalformed, "empty version list")
}

func TestPeek(t *testing.T) {
	long := buildDatagram(&header.Header{Type: header.TypeInitial, Version: 0x77777777,
		DstConnID: testDCID, SrcConnID: testSCID, PNLen: 1}, []byte{1})
	v, dst, src, ok := header.PeekLongHeader(long)
	require.True(t, ok)
	require.Equal(t, uint32(0x77777777), v)
	require.Equal(t, uint64(testDCID), dst)
	require.Equal(t, uint64(testSCID), src)

	cid, isLong, ok := header.PeekDstConnID(long[:5+8+4])
	require.True(t, ok)
	require.True(t, isLong)
	require.Equal(t, uint64(testDCID), cid)
	_, _, ok = header.PeekDstConnID(long[:5+8+3])
	require.False(t, ok)

	short := buildDatagram(&header.Header{Type: header.TypeShort, DstConnID: testDCID, PNLen: 1}, []byte{1})
	_, _, _, ok = header.PeekLongHeader(short)
	require.False(t, ok)
	cid, isLong, ok = header.PeekDstConnID(short[:1+8+4])
	require.True(t, ok)
	require.False(t, isLong)
	require.Equal(t, uint64(testDCID), cid)
	for n := range 1 + 8 + 4 {
		_, _, ok = header.PeekDstConnID(short[:n])
		require.False(t, ok, "length %d", n)
	}
	for n := range 1 + 4 + 16 {
		_, _, _, ok = header.PeekLongHeader(long[:n])
		require.False(t, ok, "length %d", n)
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	for _, pnLen := range []int{0, 5, -1} {
		require.Panics(t, func() {
			header.AppendHeader(nil, &header.Header{Type: header.TypeShort, PNLen: pnLen})
		})
	}
	require.Panics(t, func() { header.AppendHeader(nil, &header.Header{Type: 99, PNLen: 1}) })
	require.Zero(t, header.HeaderLen(&header.Header{Type: 99}))
	// Retry and Version Negotiation carry no packet number: PNLen is ignored.
	require.NotPanics(t, func() {
		header.AppendHeader(nil, &header.Header{Type: header.TypeRetry, Token: []byte{1}})
		header.AppendHeader(nil, &header.Header{Type: header.TypeVersionNegotiation})
	})
}

func TestPacketTypeString(t *testing.T) {
	require.Equal(t, "Initial", header.TypeInitial.String())
	require.Equal(t, "VersionNegotiation", header.TypeVersionNegotiation.String())
	require.Equal(t, "PacketType(invalid)", header.PacketType(9).String())
}

func TestAuthenticatedShortHeader(t *testing.T) {
	h := header.Header{Type: header.TypeShort, DstConnID: 0x0102030405060708, PacketNumber: 77, PNLen: 4, Authenticated: true}
	b := header.AppendHeader(nil, &h)
	require.Equal(t, byte(0x47), b[0])
	b = header.AppendPing(b)
	b = append(b, make([]byte, header.TagLen)...) // the session computes the real tag
	got, payload, err := header.Open(b)
	require.NoError(t, err)
	require.True(t, got.Authenticated)
	require.Equal(t, h.DstConnID, got.DstConnID)
	require.Equal(t, []byte{byte(header.FramePing)}, payload)
	// Too short to hold a tag.
	_, _, err = header.Open(b[:header.TagLen])
	require.Error(t, err)
	// The flag means nothing in a long header: there it is reserved.
	long := header.AppendHeader(nil, &header.Header{Type: header.TypeHandshake, Version: header.Version1, PNLen: 4})
	long = header.AppendPing(long)
	long[0] |= 0x04
	_, _, err = header.Open(header.Seal(long, 0))
	require.ErrorIs(t, err, header.ErrMalformed)
}
