package header_test

import (
	"fmt"

	"github.com/tlsgram/tlsgram/header"
)

// Build a short header datagram in a reused buffer, then open it and walk
// its frames as a receiver does.
func Example() {
	buf := make([]byte, 0, 1500)
	const pn, largestAcked = 1000, 990
	h := header.Header{Type: header.TypeShort, DstConnID: 0x1122334455667788,
		PacketNumber: pn, PNLen: header.PacketNumberLen(pn, largestAcked)}
	ack := header.AckFrame{NumRanges: 2, Delay: 250}
	ack.Ranges[0] = header.AckRange{Smallest: 40, Largest: 42}
	ack.Ranges[1] = header.AckRange{Smallest: 30, Largest: 37}

	b := header.AppendHeader(buf[:0], &h)
	b = header.AppendAck(b, &ack)
	b = header.AppendStream(b, 4096, []byte("tls bytes"), false)
	dg := header.Seal(b, 0)

	got, payload, err := header.Open(dg)
	if err != nil {
		fmt.Println("drop:", err)
		return
	}
	const largestReceived = 995
	fmt.Printf("%v to %#x, packet %d (%d byte on the wire)\n", got.Type, got.DstConnID,
		header.DecodePacketNumber(largestReceived, got.PacketNumber, got.PNLen), got.PNLen)
	var f header.Frame
	for len(payload) > 0 {
		n, err := header.ParseFrame(payload, &f)
		if err != nil {
			fmt.Println("drop:", err)
			return
		}
		payload = payload[n:]
		switch f.Type {
		case header.FrameAck:
			fmt.Println(f.Type, f.Ack.Ranges[:f.Ack.NumRanges], "delay", f.Ack.Delay, "µs")
		case header.FrameStream:
			fmt.Printf("%v offset %d %q fin=%v\n", f.Type, f.Offset, f.Data, f.Fin)
		}
	}

	dg[len(dg)-1] ^= 1 // corrupt the trailer
	_, _, err = header.Open(dg)
	fmt.Println(err)
	// Output:
	// Short to 0x1122334455667788, packet 1000 (1 byte on the wire)
	// ACK [{40 42} {30 37}] delay 250 µs
	// STREAM offset 4096 "tls bytes" fin=false
	// header: integrity check failed
}
