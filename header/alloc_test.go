package header_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

// fullDatagram builds a typical 1200-byte short-header datagram: an ACK with
// several ranges, a STREAM frame, a PING and padding up to 1200 bytes.
func fullDatagram(b []byte) []byte {
	h := header.Header{Type: header.TypeShort, DstConnID: testDCID, PacketNumber: 1 << 20,
		PNLen: header.PacketNumberLen(1<<20, 1<<20-100)}
	ack := manyRanges(8)
	start := len(b)
	b = header.AppendHeader(b, &h)
	b = header.AppendAck(b, &ack)
	b = header.AppendStream(b, 1<<30, streamData[:900], false)
	b = header.AppendPing(b)
	b = header.AppendPadding(b, 1200-header.TrailerLen-(len(b)-start))
	return header.Seal(b, start)
}

var streamData = bytes.Repeat([]byte{0x17, 0x03, 0x03, 0x99}, 400)

func TestZeroAllocsParse(t *testing.T) {
	dg := fullDatagram(nil)
	require.Len(t, dg, 1200)
	var f header.Frame
	unknown := []byte{0x3f}
	frames := 0
	allocs := testing.AllocsPerRun(1000, func() {
		_, payload, err := header.Open(dg)
		if err != nil {
			panic(err)
		}
		frames = 0
		for len(payload) > 0 {
			n, err := header.ParseFrame(payload, &f)
			if err != nil {
				panic(err)
			}
			payload = payload[n:]
			frames++
		}
		// The error paths must not allocate either.
		if _, _, err := header.Open(dg[:len(dg)-1]); err == nil {
			panic("truncated datagram accepted")
		}
		if _, err := header.ParseFrame(unknown, &f); err == nil {
			panic("unknown frame accepted")
		}
	})
	require.Zero(t, allocs)
	require.Equal(t, 4, frames)
}

func TestZeroAllocsEncode(t *testing.T) {
	buf := make([]byte, 0, 1500)
	scratch := make([]byte, 0, 100)
	versions := []uint32{header.Version1}
	var dg []byte
	allocs := testing.AllocsPerRun(1000, func() {
		dg = fullDatagram(buf[:0])
		_ = header.AppendVersionNegotiation(scratch[:0], 1, 2, versions)
		_ = header.AppendClose(scratch[:0], 1, []byte("reason"))
	})
	require.Zero(t, allocs)
	_, _, err := header.Open(dg)
	require.NoError(t, err)
}
