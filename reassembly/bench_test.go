package reassembly

import (
	"testing"

	"github.com/tlsgram/tlsgram/header"
)

const benchMTU = 1180 // stream bytes per full-sized datagram

// BenchmarkInsertReadInOrder is the common case: every datagram arrives in order and the session
// reads after each one. One op is one datagram.
func BenchmarkInsertReadInOrder(b *testing.B) {
	src := sourceStream(64 * benchMTU)
	buf := NewBuffer(1<<20, 64)
	p := make([]byte, 16<<10)
	var off uint64
	b.SetBytes(benchMTU)
	b.ReportAllocs()
	for b.Loop() {
		i := off % uint64(len(src))
		if err := buf.Insert(off, src[i:i+benchMTU], false); err != nil {
			b.Fatal(err)
		}
		off += benchMTU
		if _, err := buf.Read(p); err != nil {
			b.Fatal(err)
		}
		buf.SetLimit(buf.ReadOffset() + 1<<20)
	}
}

// BenchmarkInsertReadReordered delivers each group of 8 datagrams scrambled (up to 3 holes at a
// time) and reads whenever bytes are ready. One op is one datagram.
func BenchmarkInsertReadReordered(b *testing.B) {
	src := sourceStream(8 * benchMTU)
	order := [8]uint64{1, 3, 2, 7, 0, 5, 4, 6}
	buf := NewBuffer(1<<20, 64)
	p := make([]byte, 16<<10)
	var base uint64
	var k int
	b.SetBytes(benchMTU)
	b.ReportAllocs()
	for b.Loop() {
		i := order[k]
		if err := buf.Insert(base+i*benchMTU, src[i*benchMTU:(i+1)*benchMTU], false); err != nil {
			b.Fatal(err)
		}
		if buf.Readable() > 0 {
			if _, err := buf.Read(p); err != nil {
				b.Fatal(err)
			}
		}
		if k++; k == len(order) {
			k = 0
			base += uint64(len(order)) * benchMTU
			buf.SetLimit(buf.ReadOffset() + 1<<20)
		}
	}
}

// BenchmarkReceivedPacketsAdd adds packet numbers in order, and with reordering and loss such that
// the set stays full (header.MaxAckRanges ranges) and an ACK frame is built every second packet.
func BenchmarkReceivedPacketsAdd(b *testing.B) {
	b.Run("InOrder", func(b *testing.B) {
		var r ReceivedPackets
		var pn uint64
		b.ReportAllocs()
		for b.Loop() {
			r.Add(pn)
			pn++
		}
	})
	b.Run("ReorderedLossy", func(b *testing.B) {
		var r ReceivedPackets
		var f header.AckFrame
		var i uint64
		b.ReportAllocs()
		for b.Loop() {
			pn := i
			switch i % 10 {
			case 4:
				pn++ // 4 and 5 swap places
			case 5:
				pn--
			case 7:
				pn++ // 7 is lost: a new range every 10 packets
			}
			r.Add(pn)
			if i%2 == 1 {
				r.AppendAckFrame(&f)
			}
			i++
		}
	})
}
