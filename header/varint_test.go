package header_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

func TestVarint(t *testing.T) {
	cases := []struct {
		v   uint64
		enc []byte
	}{
		{0, []byte{0x00}},
		{63, []byte{0x3f}},
		{64, []byte{0x40, 0x40}},
		{16383, []byte{0x7f, 0xff}},
		{16384, []byte{0x80, 0x00, 0x40, 0x00}},
		{1<<30 - 1, []byte{0xbf, 0xff, 0xff, 0xff}},
		{1 << 30, []byte{0xc0, 0, 0, 0, 0x40, 0, 0, 0}},
		{header.MaxVarint, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		// RFC 9000 Appendix A.1 examples.
		{151288809941952652, []byte{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}},
		{494878333, []byte{0x9d, 0x7f, 0x3e, 0x7d}},
		{15293, []byte{0x7b, 0xbd}},
		{37, []byte{0x25}},
	}
	for _, tc := range cases {
		require.Equal(t, tc.enc, header.AppendVarint(nil, tc.v), "%d", tc.v)
		require.Equal(t, len(tc.enc), header.VarintLen(tc.v))
		v, n, err := header.ParseVarint(append(clone(tc.enc), 0xff))
		require.NoError(t, err)
		require.Equal(t, tc.v, v)
		require.Equal(t, len(tc.enc), n)
		for i := range len(tc.enc) {
			_, n, err := header.ParseVarint(tc.enc[:i])
			require.ErrorIs(t, err, header.ErrTruncated)
			require.Zero(t, n)
		}
	}
}

func TestVarintNonMinimal(t *testing.T) {
	// RFC 9000 A.1: 0x4025 is a valid two-byte encoding of 37.
	for _, enc := range [][]byte{{0x40, 0x25}, {0x80, 0, 0, 0x25}, {0xc0, 0, 0, 0, 0, 0, 0, 0x25}} {
		v, n, err := header.ParseVarint(enc)
		require.NoError(t, err)
		require.Equal(t, uint64(37), v)
		require.Equal(t, len(enc), n)
	}
}

func TestVarintOverflowPanics(t *testing.T) {
	require.Panics(t, func() { header.AppendVarint(nil, header.MaxVarint+1) })
	require.Panics(t, func() { header.VarintLen(1 << 63) })
}
