package session

import "time"

// ackHold bounds how long a receiver holds an ACK that the sender asked for at once
// (IMMEDIATE_ACK) while the application has the packet's data to read: the reply it is likely to
// write carries the ACK, so a request/response costs one datagram each way instead of two (issue
// 8). The hold ends early when the application writes (the ACK rides on its data) or reads
// again and finds nothing (it is not replying: see releaseHeldAck). Only an application that
// sits on the data without reading it on makes the bound matter.
//
// 1 ms rather than srtt/4: on a short path srtt/4 is tens of µs, less than it takes to wake the
// application, so the hold would expire before any reply and save nothing; on a path of 4 ms or
// more the two agree. Against IMMEDIATE_ACK's purpose, avoiding the 25 ms delayed-ACK stall at
// the tail of a flight, 1 ms is still a 25th of it, and the sender's PTO for such a tail counts
// this bound as the ACK delay (lossDetectionTimer), as RFC 9002 §6.2.1 counts max_ack_delay.
const ackHold = time.Millisecond

// onImmediateAck handles an IMMEDIATE_ACK frame. Frames are handled in order and the sender puts
// it last, so the packet's stream data is already readable: if there is something to read, the
// ACK waits (at most ackHold, and never beyond maxAckDelay) for the application's reply;
// otherwise it goes at once. During the handshake the reader is TLS, and its reply is its next
// flight (see handshakeAck).
func (r *receiver) onImmediateAck(now time.Time, maxAckDelay time.Duration) {
	r.immediate = true // onPacket: this packet ends the sender's flight
	if r.buf.Readable() == 0 {
		r.ackNow = true
		return
	}
	r.holdAck(now, maxAckDelay)
}

// handshakeAck schedules the ACK of an ack-eliciting packet that arrived during the handshake.
// RFC 9000 §13.2.1 has Initial and Handshake packets acknowledged immediately: every round trip of
// the handshake is one the user waits for. When the packet gave TLS something to read (the
// ClientHello, the server's flight, the client's Finished), TLS's answer is its next flight (or,
// at the server's end, HANDSHAKE_DONE), which leaves as soon as TLS has written it and carries
// the ACK, as a QUIC server's first Initial carries the ACK of the client's. Sending the ACK
// alone first, as this did, cost three datagrams each way per handshake, each a system call on
// the sending end and a read and a step on the receiving one, and the server's went out on its
// socket reader ahead of the TLS work. The ACK waits at most ackHold, which the sender's PTO
// allows for (lossDetectionTimer counts max_ack_delay until the sender's handshake completes,
// ackHold after), and goes at once when TLS reads again and finds nothing although the sender's
// flight is complete (releaseHeldAck): then no answer is coming. While the flight is not (the
// newest packet did not ask for an immediate ACK), TLS blocked in the middle of a record and
// answers once the rest has come. The held ACK carries its delay, but the peer's first RTT
// sample includes it (RFC 9002 §5.3 takes the first sample as it is): on loopback that starts
// srtt at a few hundred µs, not tens, until later samples pull it down.
func (r *receiver) handshakeAck(now time.Time, maxAckDelay time.Duration) {
	if r.ackNow || r.buf.Readable() == 0 {
		r.ackNow = true
		return
	}
	r.holdAck(now, maxAckDelay)
}

// holdAck lets a pending ACK wait at most ackHold (and never beyond its delayed-ACK deadline)
// for a reply to carry it.
func (r *receiver) holdAck(now time.Time, maxAckDelay time.Duration) {
	hold := now.Add(min(ackHold, maxAckDelay))
	if !r.ackPending || hold.Before(r.ackDeadline) {
		r.ackDeadline = hold
	}
	r.ackPending = true
	r.ackHeld = true
}

// releaseHeldAck makes a held ACK due now: the application read everything and asked for more,
// so no reply is coming to carry it. It reports whether that made an ACK due that was not.
//
// Not while the newest packet left the sender's flight open (it did not ask for an immediate
// ACK, so more of the flight is right behind it): a reader that finds nothing then is one in
// the middle of a record, as TLS is when the ClientHello or the server's flight spans two
// datagrams and only the first has come. Its answer still comes once the rest has, and carries
// the ACK; releasing the ACK there sent it alone, ahead of the answer. The hold stays bounded by
// its deadline (holdAck), so a lost tail delays the ACK by at most ackHold, as an application
// that does not read would.
func (r *receiver) releaseHeldAck() bool {
	if r.ackHeld && r.ackPending && !r.ackNow && !r.flightOpen {
		r.ackNow = true
		return true
	}
	return false
}

// AckDue reports whether an ACK is due now, so PollDatagram will produce a datagram. A Read that
// returned nothing may have released a held ACK; TakeEvents reports that as ShouldSend.
func (c *Conn) AckDue() bool { return c.rx.ackPending && c.rx.ackNow }
