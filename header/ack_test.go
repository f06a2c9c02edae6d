package header_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

// TestAckEncoding checks the RFC 9000 §19.3.1 gap/length encoding byte by byte.
func TestAckEncoding(t *testing.T) {
	a := ackOf(25,
		header.AckRange{Smallest: 95, Largest: 100}, // first range: 100, length 5
		header.AckRange{Smallest: 80, Largest: 90},  // gap 95-90-2 = 3 (91..94 missing), length 10
		header.AckRange{Smallest: 10, Largest: 10},  // gap 80-10-2 = 68, length 0
		header.AckRange{Smallest: 0, Largest: 8},    // gap 10-8-2 = 0 (only 9 missing), length 8
	)
	want := []byte{
		0x02,       // type
		0x40, 0x64, // largest 100 (two-byte varint)
		0x19,       // delay 25 µs
		0x03,       // three more ranges
		0x05,       // first range length
		0x03, 0x0a, // gap, length
		0x40, 0x44, 0x00,
		0x00, 0x08,
	}
	require.NoError(t, a.Validate())
	require.Equal(t, want, header.AppendAck(nil, &a))
	require.Equal(t, len(want), header.AckLen(&a))
}

func TestAckRoundTrip(t *testing.T) {
	cases := map[string]header.AckFrame{
		"packet 0":           ackOf(0, header.AckRange{}),
		"one range":          ackOf(7, header.AckRange{Smallest: 3, Largest: 1000}),
		"smallest gap":       ackOf(0, header.AckRange{Smallest: 5, Largest: 5}, header.AckRange{Smallest: 3, Largest: 3}),
		"down to 0":          ackOf(0, header.AckRange{Smallest: 10, Largest: 20}, header.AckRange{Smallest: 0, Largest: 8}),
		"largest 2^62-1":     ackOf(header.MaxVarint, header.AckRange{Smallest: 0, Largest: header.MaxVarint}),
		"64 ranges":          manyRanges(header.MaxAckRanges),
		"two ranges far off": ackOf(1, header.AckRange{Smallest: 1 << 40, Largest: 1<<40 + 1}, header.AckRange{Smallest: 1, Largest: 1}),
	}
	var f header.Frame
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, a.Validate())
			b := header.AppendAck(nil, &a)
			require.Len(t, b, header.AckLen(&a))
			n, err := header.ParseFrame(b, &f)
			require.NoError(t, err)
			require.Equal(t, len(b), n)
			want := header.Frame{Type: header.FrameAck, Ack: a}
			require.Equal(t, norm(&want), norm(&f))
			require.NoError(t, f.Ack.Validate())
		})
	}
}

func TestAckParseRejects(t *testing.T) {
	cases := []struct {
		name string
		b    []byte // after the type byte
		err  error
	}{
		{"first range below 0", []byte{5, 0, 0, 6}, header.ErrMalformed},
		{"gap below 0", []byte{5, 0, 1, 2, 2, 0}, header.ErrMalformed},            // smallest 3, gap 2 → largest -1
		{"gap reaches exactly -1", []byte{5, 0, 1, 0, 4, 0}, header.ErrMalformed}, // smallest 5, 5-4-2 = -1
		{"range length below 0", []byte{5, 0, 1, 0, 0, 4}, header.ErrMalformed},   // next largest 3, length 4
		{"65 ranges", append([]byte{0x40, 0xff, 0, 0x40, 64, 0}, make([]byte, 128)...), header.ErrTooManyAckRanges},
		{"2^62-1 ranges", []byte{5, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}, header.ErrTooManyAckRanges},
		{"fewer ranges than announced", []byte{50, 0, 3, 0, 0, 0, 0, 0}, header.ErrTruncated},
	}
	var f header.Frame
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := header.ParseFrame(append([]byte{byte(header.FrameAck)}, tc.b...), &f)
			require.ErrorIs(t, err, tc.err)
			requireSentinel(t, err)
			require.Zero(t, n)
		})
	}

	// The boundary cases just inside: a gap landing exactly on 0, a range
	// down to exactly 0, 64 ranges (126, 124, ..., 0).
	for _, b := range [][]byte{{5, 0, 1, 0, 3, 0}, {5, 0, 1, 0, 0, 3}, {0x40, 0x7e, 0, 63, 0}} {
		b = append([]byte{byte(header.FrameAck)}, b...)
		if b[4] == 63 {
			b = append(b, make([]byte, 126)...)
		}
		n, err := header.ParseFrame(b, &f)
		require.NoError(t, err)
		require.Equal(t, len(b), n)
		require.Zero(t, f.Ack.Ranges[f.Ack.NumRanges-1].Smallest)
	}
}

func TestAckValidate(t *testing.T) {
	var tooMany header.AckFrame
	tooMany.NumRanges = header.MaxAckRanges + 1
	cases := []struct {
		name string
		a    header.AckFrame
		err  error
	}{
		{"no ranges", header.AckFrame{}, header.ErrMalformed},
		{"negative count", header.AckFrame{NumRanges: -1}, header.ErrMalformed},
		{"too many", tooMany, header.ErrTooManyAckRanges},
		{"inverted", ackOf(0, header.AckRange{Smallest: 5, Largest: 4}), header.ErrMalformed},
		{"adjacent (gap -1)", ackOf(0, header.AckRange{Smallest: 5, Largest: 6}, header.AckRange{Smallest: 1, Largest: 4}), header.ErrMalformed},
		{"overlapping", ackOf(0, header.AckRange{Smallest: 5, Largest: 9}, header.AckRange{Smallest: 1, Largest: 7}), header.ErrMalformed},
		{"ascending", ackOf(0, header.AckRange{Smallest: 1, Largest: 2}, header.AckRange{Smallest: 8, Largest: 9}), header.ErrMalformed},
		{"second from 1", ackOf(0, header.AckRange{Smallest: 1, Largest: 2}, header.AckRange{Smallest: 0, Largest: 0}), header.ErrMalformed},
		{"largest over 2^62-1", ackOf(0, header.AckRange{Smallest: 0, Largest: header.MaxVarint + 1}), header.ErrMalformed},
		{"delay over 2^62-1", ackOf(header.MaxVarint+1, header.AckRange{}), header.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Validate()
			require.ErrorIs(t, err, tc.err)
			requireSentinel(t, err)
			require.Panics(t, func() { header.AppendAck(nil, &tc.a) })
			require.Panics(t, func() { header.AckLen(&tc.a) })
		})
	}
}
