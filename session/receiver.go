package session

import (
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/reassembly"
	"github.com/tlsgram/tlsgram/session/congestion"
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
	immediate    bool      // the packet being handled asked for an immediate ACK (onImmediateAck)
	flightOpen   bool      // the newest packet did not: the rest of its flight is right behind
	ackDeadline  time.Time // latest time to send a pending ACK
	ackEliciting int       // ack-eliciting packets since our last ACK
	ackHeld      bool      // the pending ACK was asked for at once but waits for a reply: see ackHold
	ackOnlySent  int       // ACK-only packets since our last ack-eliciting packet
	// What our ACK frames must go on repeating (hasAckToRepeat): ackNew, a packet arrived since
	// the last one; unconfirmed, the peer has not yet acknowledged a packet of ours whose ACK
	// reported elicitingLargest, the largest ack-eliciting packet received.
	ackNew           bool
	unconfirmed      bool
	elicitingLargest uint64

	// Receive flow control and window auto-tuning.
	window       uint64
	windowUpdate time.Time // when the limit was last raised
	maxDataSend  bool      // a MAX_DATA frame is due
	openWindow   bool      // the handshake completed: raise the limit to the configured window
	windowHeld   bool      // HoldReceiveWindow: keep the handshake's window after completion

}

// newReceiver returns the receive side of a new connection: window is the configured initial
// window, which applies once the handshake completes (see updateWindow).
func newReceiver(window uint64, now time.Time) receiver {
	return receiver{
		// InitialMaxData until the handshake completes; see updateWindow.
		buf:          reassembly.NewBuffer(InitialMaxData, maxGaps),
		largest:      header.NoPacket,
		window:       window,
		windowUpdate: now,
	}
}

// onPacket records packet pn, whose frames were all handled, as received, and schedules its
// acknowledgement (RFC 9000 §13.2): at once when it opened or filled a gap, at every second
// ack-eliciting packet and during the handshake; otherwise within maxAckDelay.
func (r *receiver) onPacket(now time.Time, pn uint64, ackEliciting, handshakeComplete bool, maxAckDelay time.Duration) {
	r.received.Add(pn)
	r.ackNew = true
	if r.largest == header.NoPacket || pn > r.largest {
		if r.largest != header.NoPacket && pn != r.largest+1 {
			r.ackNow = true // RFC 9000 §13.2.1: a gap opened — tell the sender at once
		}
		r.largest = pn
		r.largestTime = now
		if ackEliciting {
			// The sender asks for an immediate ACK on the last packet it can send for now
			// (PollDatagram): without one, more of the flight is on its way (see releaseHeldAck).
			r.flightOpen = !r.immediate // HandleDatagram clears it before the packet's frames
		}
	} else {
		r.ackNow = true // filled a gap
	}
	if !ackEliciting {
		return
	}
	if !r.unconfirmed || pn > r.elicitingLargest {
		r.elicitingLargest = pn
	}
	r.unconfirmed = true
	if !r.ackPending {
		r.ackPending = true
		r.ackDeadline = now.Add(maxAckDelay)
	}
	r.ackEliciting++
	// RFC 9000 §13.2.2: ACK at least every second ack-eliciting packet; during the handshake ACK
	// at once, since every round trip there is visible to the user, unless TLS's next flight,
	// written as soon as it has read, will carry it (handshakeAck).
	switch {
	case !handshakeComplete:
		r.handshakeAck(now, maxAckDelay)
	case r.ackEliciting >= 2:
		r.ackNow = true
	}
}

// ackDue reports whether the pending ACK must go in the next datagram.
func (r *receiver) ackDue(now time.Time) bool {
	return r.ackPending && (r.ackNow || !now.Before(r.ackDeadline))
}

// ackTimer is when a pending, not yet due ACK becomes due, or zero.
func (r *receiver) ackTimer() time.Time {
	if r.ackPending && !r.ackNow {
		return r.ackDeadline
	}
	return time.Time{}
}

// onTimeout makes a pending ACK due once its deadline has passed.
func (r *receiver) onTimeout(now time.Time) {
	if r.ackPending && !now.Before(r.ackDeadline) {
		r.ackNow = true
	}
}

// hasAckToRepeat: piggyback an ACK on data packets while the peer may still be waiting for it,
// so that a lost ACK-only packet is repaired by the next data packet: until the peer has
// acknowledged one of ours that reported its latest ack-eliciting packet. Packets that only
// acknowledge (a bulk receiver's) need no acknowledgement: an ACK goes out once for what arrived
// since the last one, not on every data packet. Repeating it on every one cost a bulk sender
// an ACK frame per datagram to write, and its receiver one to parse and process (issue 8).
func (r *receiver) hasAckToRepeat() bool {
	return r.received.NumRanges() > 0 && (r.ackNew || r.unconfirmed)
}

// onAckAcked notes that the peer acknowledged a packet of ours whose ACK frame reported packets
// up to largest.
func (r *receiver) onAckAcked(largest uint64) {
	if r.unconfirmed && largest >= r.elicitingLargest {
		r.unconfirmed = false
	}
}

// appendAck appends an ACK frame of the packets received, if it fits before limit, and returns
// the largest number it acknowledges and the generation of its ranges (header.NoPacket and 0 if
// it did not fit). A pending ACK is then sent.
func (r *receiver) appendAck(b []byte, now time.Time, limit int) ([]byte, uint64, uint64) {
	f := getAck()
	defer putAck(f)
	gen := r.received.AppendAckFrame(f)
	if f.NumRanges == 0 {
		return b, header.NoPacket, 0
	}
	f.Delay = uint64(now.Sub(r.largestTime) / time.Microsecond)
	if len(b)+header.AckLen(f) > limit {
		return b, header.NoPacket, 0
	}
	b = header.AppendAck(b, f)
	r.ackPending, r.ackNow, r.ackEliciting, r.ackHeld = false, false, 0, false
	r.ackNew = false
	return b, f.Ranges[0].Largest, gen
}

// hold keeps the window at InitialMaxData after the handshake (HoldReceiveWindow) until it is
// called with false.
func (r *receiver) hold(held, handshakeComplete bool, now time.Time) {
	if r.windowHeld && !held {
		r.openWindow = handshakeComplete
		r.windowUpdate = now
	}
	r.windowHeld = held
}

// open raises the limit to the configured window at the next chance: the handshake completed.
func (r *receiver) open(now time.Time) {
	r.openWindow = true
	r.windowUpdate = now
}

// windowUpdateDue reports whether updateWindow would raise the limit now: the reader consumed
// half the window since the last MAX_DATA, or the window opened. held is as for updateWindow.
func (r *receiver) windowUpdateDue(held bool) bool {
	window := r.window
	if held {
		window = InitialMaxData
	}
	return r.openWindow || r.buf.Limit()-r.buf.ReadOffset() <= window/2
}

// updateWindow raises the flow-control limit once the reader consumed half the window, and
// doubles the window when that happened within two RTTs — the reader is faster than the window
// lets the sender be (auto-tuning, as in quic-go and Linux TCP), up to maxWindow.
//
// Until the handshake completes the window is InitialMaxData, whatever the configuration: a peer
// that has not authenticated may not make us allocate megabytes (half-open sessions are many).
// The same holds while HoldReceiveWindow says so: the listener's connections not yet accepted.
// The caller says which applies with held.
func (r *receiver) updateWindow(now time.Time, held bool, rtt *congestion.RTT, maxWindow uint64) {
	if !r.windowUpdateDue(held) {
		return
	}
	read := r.buf.ReadOffset()
	window := r.window
	if held {
		window = InitialMaxData
	}
	r.openWindow = false
	if !held && r.window < maxWindow && rtt.HasSample() && now.Sub(r.windowUpdate) < 2*rtt.SmoothedRTT() {
		r.window = min(2*r.window, maxWindow)
		window = r.window
	}
	if read+window <= r.buf.Limit() {
		return
	}
	r.buf.SetLimit(read + window)
	r.windowUpdate = now
	r.maxDataSend = true
}
