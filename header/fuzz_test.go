package header_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

// FuzzOpen: Open never panics; every rejection matches one sentinel; what
// it accepts re-encodes (AppendHeader + payload + Seal) to a datagram that
// parses to the same header and payload, byte-identical unless the input
// used a non-minimal token length or Version Negotiation's ignored bits.
func FuzzOpen(f *testing.F) {
	for _, tc := range headerCases() {
		f.Add(buildDatagram(&tc.h, tc.payload))
	}
	f.Add(fullDatagram(nil))
	f.Add(header.AppendVersionNegotiation(nil, 1, 2, []uint32{header.Version1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOpen(t, data)
		// Random mutations almost never keep the CRC valid; sealing the
		// input as well lets the fuzzer explore the header parser itself.
		checkOpen(t, header.Seal(clone(data), 0))
	})
}

func checkOpen(t *testing.T, dg []byte) {
	h, payload, err := header.Open(dg)
	cid, long, peekOK := header.PeekDstConnID(dg)
	if err != nil {
		requireSentinel(t, err)
		require.Equal(t, header.Header{}, h)
		require.Nil(t, payload)
		return
	}
	require.True(t, peekOK)
	require.Equal(t, h.DstConnID, cid)
	require.Equal(t, h.Type != header.TypeShort, long)
	require.Equal(t, len(payload), cap(payload))
	require.Equal(t, len(h.Token), cap(h.Token))

	re := header.AppendHeader(nil, &h)
	require.Len(t, re, header.HeaderLen(&h))
	if h.Authenticated {
		re = append(append(re, payload...), dg[len(dg)-header.TagLen:]...) // the tag is the session's
	} else {
		re = header.Seal(append(re, payload...), 0)
	}
	h2, payload2, err := header.Open(re)
	require.NoError(t, err)
	require.Equal(t, h, h2)
	require.Equal(t, payload, payload2)
	if h.Type != header.TypeVersionNegotiation && len(re) == len(dg) {
		require.Equal(t, dg, re)
	}
}

// FuzzParseFrame: ParseFrame never panics or over-reads; every parsed frame
// re-encodes to bytes that parse to an equal frame, and to the very same
// bytes when the input was minimally encoded (same length).
func FuzzParseFrame(f *testing.F) {
	for _, tc := range frameCases() {
		f.Add(tc.enc)
	}
	_, payload, _ := header.Open(fullDatagram(nil))
	f.Add(payload)
	f.Add([]byte{0x40, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr, again header.Frame
		for p := data; len(p) > 0; {
			n, err := header.ParseFrame(p, &fr)
			if err != nil {
				requireSentinel(t, err)
				require.Zero(t, n)
				return
			}
			require.Positive(t, n)
			require.LessOrEqual(t, n, len(p))
			if fr.Type == header.FrameAck {
				require.NoError(t, fr.Ack.Validate())
			}
			enc := appendFrame(t, nil, &fr, n)
			m, err := header.ParseFrame(enc, &again)
			require.NoError(t, err)
			require.Equal(t, len(enc), m)
			require.Equal(t, norm(&fr), norm(&again))
			if len(enc) == n {
				require.Equal(t, p[:n], enc)
			}
			p = p[n:]
		}
	})
}

// FuzzAckRoundTrip builds valid ACK frames from fuzz input (largest, delay,
// and (gap, length) pairs clamped so that no range goes below 0), encodes
// and parses them; it also parses data as a raw ACK body and re-encodes it.
func FuzzAckRoundTrip(f *testing.F) {
	f.Add(uint64(100), uint64(25), []byte{0, 5, 0, 3, 0, 10, 0, 68, 0, 0})
	f.Add(uint64(header.MaxVarint), uint64(header.MaxVarint), []byte{0xff, 0xff, 0, 0, 0x80, 0x01, 0xff, 0xff})
	f.Add(uint64(0), uint64(0), []byte{})
	f.Add(uint64(1<<40), uint64(1), make([]byte, 400))
	f.Fuzz(func(t *testing.T, largest, delay uint64, data []byte) {
		a := header.AckFrame{Delay: delay & header.MaxVarint}
		// next takes two bytes; the top bit scales the value up so that
		// all varint lengths are reached.
		next := func() uint64 {
			if len(data) < 2 {
				return 0
			}
			v := uint64(binary.BigEndian.Uint16(data))
			data = data[2:]
			if v&0x8000 != 0 {
				v = (v &^ 0x8000) << 24
			}
			return v
		}
		raw := clone(data)
		hi := largest & header.MaxVarint
		lo := hi - min(next(), hi)
		a.Ranges[0] = header.AckRange{Smallest: lo, Largest: hi}
		a.NumRanges = 1
		for len(data) >= 4 && a.NumRanges < header.MaxAckRanges {
			gap, length := next(), next()
			if lo < gap+2 {
				break
			}
			hi = lo - gap - 2
			lo = hi - min(length, hi)
			a.Ranges[a.NumRanges] = header.AckRange{Smallest: lo, Largest: hi}
			a.NumRanges++
		}
		require.NoError(t, a.Validate())
		enc := header.AppendAck(nil, &a)
		require.Len(t, enc, header.AckLen(&a))
		var fr header.Frame
		n, err := header.ParseFrame(enc, &fr)
		require.NoError(t, err)
		require.Equal(t, len(enc), n)
		want := header.Frame{Type: header.FrameAck, Ack: a}
		require.Equal(t, norm(&want), norm(&fr))

		// The same bytes as an arbitrary ACK body.
		body := append([]byte{byte(header.FrameAck)}, raw...)
		n, err = header.ParseFrame(body, &fr)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		require.NoError(t, fr.Ack.Validate())
		enc = header.AppendAck(nil, &fr.Ack)
		require.LessOrEqual(t, len(enc), n)
		var again header.Frame
		_, err = header.ParseFrame(enc, &again)
		require.NoError(t, err)
		require.Equal(t, norm(&fr), norm(&again))
	})
}

// FuzzStatelessReset: StatelessResetToken never panics and reports a datagram's last 16 bytes
// only when it is long enough to be a reset and starts like a short header; a reset built by
// AppendStatelessReset of any valid size from any bytes is recognised with its token.
func FuzzStatelessReset(f *testing.F) {
	f.Add(make([]byte, header.MinStatelessResetLen))
	f.Add(make([]byte, header.MinStatelessResetLen-1))
	f.Add(fullDatagram(nil))
	f.Add(append([]byte{0x40}, make([]byte, 60)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, ok := header.StatelessResetToken(data)
		if ok {
			require.GreaterOrEqual(t, len(data), header.MinStatelessResetLen)
			require.Equal(t, data[len(data)-header.StatelessResetTokenLen:], tok[:])
		} else {
			require.True(t, len(data) < header.MinStatelessResetLen || data[0]&0xc0 != 0x40)
		}

		if len(data) < header.StatelessResetTokenLen+1 {
			return
		}
		var want [header.StatelessResetTokenLen]byte
		copy(want[:], data)
		random := data[header.StatelessResetTokenLen:]
		size := header.MinStatelessResetLen + int(random[0])%64
		for len(random) < size {
			random = append(random, random...)
		}
		reset := header.AppendStatelessReset(nil, size, &want, random)
		require.Len(t, reset, size)
		got, ok := header.StatelessResetToken(reset)
		require.True(t, ok)
		require.Equal(t, want, got)
		cid, long, ok := header.PeekDstConnID(reset)
		require.True(t, ok, "a reset peeks like a short header")
		require.False(t, long)
		_ = cid
	})
}
