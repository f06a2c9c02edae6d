package header_test

import (
	"fmt"
	"testing"

	"github.com/tlsgram/tlsgram/header"
)

// BenchmarkAppendShortHeaderStream builds a full 1200-byte datagram the way
// the sender's hot path does: header, one STREAM frame filling the rest,
// trailer, into a reused buffer.
func BenchmarkAppendShortHeaderStream(b *testing.B) {
	const size = 1200
	buf := make([]byte, 0, 1500)
	h := header.Header{Type: header.TypeShort, DstConnID: testDCID, PNLen: 2}
	offset := uint64(1 << 20)
	room := size - header.HeaderLen(&h) - header.TrailerLen
	dataLen := room - header.StreamOverhead(offset, room)
	data := make([]byte, dataLen)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		h.PacketNumber++
		p := header.AppendHeader(buf[:0], &h)
		p = header.AppendStream(p, offset, data, false)
		p = header.Seal(p, 0)
		if len(p) != size {
			b.Fatalf("datagram is %d bytes", len(p))
		}
	}
}

// BenchmarkOpenParse verifies and parses a 1200-byte datagram with an ACK,
// a STREAM frame, a PING and padding.
func BenchmarkOpenParse(b *testing.B) {
	dg := fullDatagram(nil)
	var f header.Frame
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		_, payload, err := header.Open(dg)
		if err != nil {
			b.Fatal(err)
		}
		for len(payload) > 0 {
			n, err := header.ParseFrame(payload, &f)
			if err != nil {
				b.Fatal(err)
			}
			payload = payload[n:]
		}
	}
}

func BenchmarkAckEncodeParse(b *testing.B) {
	for _, n := range []int{1, 8, header.MaxAckRanges} {
		b.Run(fmt.Sprintf("ranges=%d", n), func(b *testing.B) {
			a := manyRanges(n)
			buf := make([]byte, 0, 512)
			var f header.Frame
			b.ReportAllocs()
			for b.Loop() {
				p := header.AppendAck(buf[:0], &a)
				if _, err := header.ParseFrame(p, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
