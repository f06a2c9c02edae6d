package session

import (
	"time"

	"github.com/tlsgram/tlsgram/reassembly"
)

// receiver is the receive side: the packet numbers received (what our ACKs report), when the
// next ACK is due (RFC 9000 §13.2; ackhold.go for IMMEDIATE_ACK), the reassembly buffer the
// reader reads from, and the receive window we advertise with MAX_DATA (RFC 9000 §4.1, with
// auto-tuning). Not safe for concurrent use.
type receiver struct {
	buf          *reassembly.Buffer
	received     reassembly.ReceivedPackets
	largest      uint64 // header.NoPacket until the first packet
	largestTime  time.Time
	ackPending   bool      // something ack-eliciting arrived since our last ACK
	ackNow       bool      // send the ACK without waiting (gap, 2nd packet, handshake)
	ackDeadline  time.Time // latest time to send a pending ACK
	ackEliciting int       // ack-eliciting packets since our last ACK
	ackHeld      bool      // the pending ACK was asked for at once but waits for a reply: see ackHold
	ackOnlySent  int       // ACK-only packets since our last ack-eliciting packet

	// Receive flow control and window auto-tuning.
	window       uint64
	windowUpdate time.Time // when the limit was last raised
	maxDataSend  bool      // a MAX_DATA frame is due
	openWindow   bool      // the handshake completed: raise the limit to the configured window
	windowHeld   bool      // HoldReceiveWindow: keep the handshake's window after completion
}
