package header_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

type frameCase struct {
	name string
	enc  []byte
	want header.Frame
}

func frameCases() []frameCase {
	pathData := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	resetToken := [header.StatelessResetTokenLen]byte{0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xaf}
	ack1 := ackOf(0, header.AckRange{Smallest: 0, Largest: 0})
	ack3 := ackOf(25000,
		header.AckRange{Smallest: 95, Largest: 100},
		header.AckRange{Smallest: 80, Largest: 90},
		header.AckRange{Smallest: 10, Largest: 10})
	ackBig := ackOf(header.MaxVarint,
		header.AckRange{Smallest: header.MaxVarint - 5, Largest: header.MaxVarint},
		header.AckRange{Smallest: 0, Largest: header.MaxVarint - 7})
	ack64 := manyRanges(header.MaxAckRanges)
	data := bytes.Repeat([]byte("tls record bytes "), 70)
	return []frameCase{
		{"ping", header.AppendPing(nil), header.Frame{Type: header.FramePing}},
		{"handshake done", header.AppendHandshakeDone(nil), header.Frame{Type: header.FrameHandshakeDone}},
		{"immediate ack", header.AppendImmediateAck(nil), header.Frame{Type: header.FrameImmediateAck}},
		{"ack/one packet", header.AppendAck(nil, &ack1), header.Frame{Type: header.FrameAck, Ack: ack1}},
		{"ack/three ranges", header.AppendAck(nil, &ack3), header.Frame{Type: header.FrameAck, Ack: ack3}},
		{"ack/extreme values", header.AppendAck(nil, &ackBig), header.Frame{Type: header.FrameAck, Ack: ackBig}},
		{"ack/64 ranges", header.AppendAck(nil, &ack64), header.Frame{Type: header.FrameAck, Ack: ack64}},
		{"new token", header.AppendNewToken(nil, []byte("token")),
			header.Frame{Type: header.FrameNewToken, Data: []byte("token")}},
		{"stream/empty", header.AppendStream(nil, 0, nil, false), header.Frame{Type: header.FrameStream}},
		{"stream/fin only", header.AppendStream(nil, 1<<20, nil, true),
			header.Frame{Type: header.FrameStream, Offset: 1 << 20, Fin: true}},
		{"stream/data", header.AppendStream(nil, 12345, data, false),
			header.Frame{Type: header.FrameStream, Offset: 12345, Data: data}},
		{"stream/data fin", header.AppendStream(nil, 70, []byte("end"), true),
			header.Frame{Type: header.FrameStream, Offset: 70, Data: []byte("end"), Fin: true}},
		{"stream/ends at 2^62-1", header.AppendStream(nil, header.MaxVarint-3, []byte("abc"), true),
			header.Frame{Type: header.FrameStream, Offset: header.MaxVarint - 3, Data: []byte("abc"), Fin: true}},
		{"max data", header.AppendMaxData(nil, 1<<24), header.Frame{Type: header.FrameMaxData, Limit: 1 << 24}},
		{"data blocked", header.AppendDataBlocked(nil, 63), header.Frame{Type: header.FrameDataBlocked, Limit: 63}},
		{"path challenge", header.AppendPathChallenge(nil, pathData),
			header.Frame{Type: header.FramePathChallenge, PathData: pathData}},
		{"path response", header.AppendPathResponse(nil, pathData),
			header.Frame{Type: header.FramePathResponse, PathData: pathData}},
		{"reset token", header.AppendResetToken(nil, &resetToken),
			header.Frame{Type: header.FrameResetToken, ResetToken: resetToken}},
		{"datagram", header.AppendDatagram(nil, []byte("sealed")),
			header.Frame{Type: header.FrameDatagram, Data: []byte("sealed")}},
		{"datagram/empty", header.AppendDatagram(nil, nil), header.Frame{Type: header.FrameDatagram, Data: []byte{}}},
		{"new connection id", header.AppendNewConnID(nil, 300, 0x0102030405060708),
			header.Frame{Type: header.FrameNewConnID, Sequence: 300, ConnID: 0x0102030405060708}},
		{"close/reason", header.AppendClose(nil, 0x100, []byte("bye")),
			header.Frame{Type: header.FrameClose, ErrorCode: 0x100, Data: []byte("bye")}},
		{"close/no reason", header.AppendClose(nil, 0, nil), header.Frame{Type: header.FrameClose}},
		{"close/max code", header.AppendClose(nil, header.MaxVarint, nil),
			header.Frame{Type: header.FrameClose, ErrorCode: header.MaxVarint}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var f header.Frame
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			n, err := header.ParseFrame(tc.enc, &f)
			require.NoError(t, err)
			require.Equal(t, len(tc.enc), n)
			require.Equal(t, norm(&tc.want), norm(&f))
			require.Equal(t, tc.enc, appendFrame(t, nil, &f, 0))
			if f.Data != nil {
				require.Equal(t, len(f.Data), cap(f.Data), "aliased data must not be appendable into the datagram")
			}

			// Trailing bytes are not consumed.
			n, err = header.ParseFrame(append(clone(tc.enc), 0x01, 0x01), &f)
			require.NoError(t, err)
			require.Equal(t, len(tc.enc), n)
		})
	}
}

func TestFrameSequence(t *testing.T) {
	cases := frameCases()
	var b []byte
	for _, tc := range cases {
		b = append(b, tc.enc...)
	}
	b = header.AppendPadding(b, 300)

	var f header.Frame
	for _, tc := range cases {
		n, err := header.ParseFrame(b, &f)
		require.NoError(t, err, tc.name)
		require.Equal(t, norm(&tc.want), norm(&f), tc.name)
		b = b[n:]
	}
	n, err := header.ParseFrame(b, &f)
	require.NoError(t, err)
	require.Equal(t, header.FramePadding, f.Type)
	require.Equal(t, 300, n, "a run of padding is one frame")
	require.Len(t, b, 300)
}

func TestPadding(t *testing.T) {
	require.Empty(t, header.AppendPadding(nil, 0))
	require.Empty(t, header.AppendPadding(nil, -3))
	b := header.AppendPadding([]byte{0xff, 0xff}, 5)
	require.Equal(t, []byte{0xff, 0xff, 0, 0, 0, 0, 0}, b)
	// Reused buffers with stale bytes must still be zeroed.
	buf := bytes.Repeat([]byte{0xee}, 16)
	require.Equal(t, make([]byte, 16), header.AppendPadding(buf[:0], 16))

	var f header.Frame
	n, err := header.ParseFrame([]byte{0, 0, 0, byte(header.FramePing), 0}, &f)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, header.FramePadding, f.Type)

	// The run ends exactly at the first non-zero byte, wherever it falls
	// relative to the 8-byte words the parser skips.
	for l := 1; l <= 40; l++ {
		b := header.AppendPadding(nil, l)
		n, err := header.ParseFrame(b, &f)
		require.NoError(t, err)
		require.Equal(t, l, n)
		b = header.AppendPadding(header.AppendPing(b), 20)
		n, err = header.ParseFrame(b, &f)
		require.NoError(t, err)
		require.Equal(t, l, n)
	}
}

func TestFrameTruncatedEveryPosition(t *testing.T) {
	var f header.Frame
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			for i := range len(tc.enc) {
				n, err := header.ParseFrame(tc.enc[:i], &f)
				require.ErrorIs(t, err, header.ErrTruncated, "prefix %d", i)
				requireSentinel(t, err)
				require.Zero(t, n)
			}
		})
	}
}

func TestParseFrameRejects(t *testing.T) {
	maxVarint := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	cases := []struct {
		name string
		b    []byte
		err  error
	}{
		{"ACK with ECN counts (RFC 9000 type 0x03)", []byte{0x03, 0, 0, 0, 0, 0, 0, 0}, header.ErrUnknownFrame},
		{"RESET_STREAM", []byte{0x04, 0, 0, 0}, header.ErrUnknownFrame},
		{"STREAM with OFF/LEN bits of RFC 9000", []byte{0x0e, 0, 0}, header.ErrUnknownFrame},
		{"0x21", []byte{0x21}, header.ErrUnknownFrame},
		{"0x3f", []byte{0x3f}, header.ErrUnknownFrame},
		{"two-byte type", []byte{0x40, 0x40}, header.ErrUnknownFrame},
		{"eight-byte type", maxVarint, header.ErrUnknownFrame},
		{"non-minimal PING", []byte{0x40, 0x01}, header.ErrMalformed},
		{"non-minimal PADDING", []byte{0x80, 0, 0, 0}, header.ErrMalformed},
		{"type cut short", []byte{0x40}, header.ErrTruncated},
		{"stream past 2^62-1", append(append([]byte{0x08}, maxVarint...), 1, 'x'), header.ErrMalformed},
		{"stream length overflow", append([]byte{0x08, 0x00}, maxVarint...), header.ErrTruncated},
		{"stream length past end", []byte{0x09, 0x00, 0x05, 'a', 'b'}, header.ErrTruncated},
		{"empty new token", []byte{0x07, 0x00}, header.ErrMalformed},
		{"new token length overflow", append([]byte{0x07}, maxVarint...), header.ErrTruncated},
		{"close reason overflow", append([]byte{0x1c, 0x00}, maxVarint...), header.ErrTruncated},
		{"path challenge short", []byte{0x1a, 1, 2, 3, 4, 5, 6, 7}, header.ErrTruncated},
	}
	var f header.Frame
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := header.ParseFrame(tc.b, &f)
			require.ErrorIs(t, err, tc.err)
			requireSentinel(t, err)
			require.Zero(t, n)
		})
	}

	// Offset exactly 2^62-1 with no data is the last valid position.
	n, err := header.ParseFrame(append(append([]byte{0x09}, maxVarint...), 0), &f)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	require.Equal(t, uint64(header.MaxVarint), f.Offset)
	require.True(t, f.Fin)
}

// TestParseFrameResets checks that a reused Frame carries nothing over from
// the previous frame.
func TestParseFrameResets(t *testing.T) {
	var f header.Frame
	_, err := header.ParseFrame(header.AppendStream(nil, 9, []byte("x"), true), &f)
	require.NoError(t, err)
	_, err = header.ParseFrame(header.AppendClose(nil, 3, nil), &f)
	require.NoError(t, err)
	require.Equal(t, comparableFrame{Type: header.FrameClose, ErrorCode: 3}, norm(&f))
	require.Zero(t, f.Ack.NumRanges)
	a := manyRanges(5)
	_, err = header.ParseFrame(header.AppendAck(nil, &a), &f)
	require.NoError(t, err)
	_, err = header.ParseFrame(header.AppendPing(nil), &f)
	require.NoError(t, err)
	require.Zero(t, f.Ack.NumRanges)
	require.Zero(t, f.Ack.Delay)
}

func TestStreamOverhead(t *testing.T) {
	for _, off := range []uint64{0, 63, 64, 1 << 14, 1 << 30, header.MaxVarint - 1<<14} {
		for _, l := range []int{0, 1, 63, 64, 1200, 1 << 14} {
			data := make([]byte, l)
			require.Len(t, header.AppendStream(nil, off, data, false), header.StreamOverhead(off, l)+l)
		}
	}
	require.Panics(t, func() { header.AppendStream(nil, header.MaxVarint, []byte{1}, false) })
	require.Panics(t, func() { header.AppendStream(nil, header.MaxVarint+1, nil, false) })
}

func TestFrameTypeString(t *testing.T) {
	for _, tc := range frameCases() {
		require.NotContains(t, tc.want.Type.String(), "unknown")
	}
	require.Equal(t, "STREAM", header.FrameStream.String())
	require.Equal(t, "FrameType(unknown)", header.FrameType(0x3f).String())
}
