// Package congestion is the send-rate machinery of a tlsgram session: the round-trip-time estimator
// (RFC 9002 §5), the congestion controllers — NewReno (RFC 9002 §7 and Appendix B) and CUBIC
// (RFC 9438) with HyStart++ slow start (RFC 9406) — and a pacer (RFC 9002 §7.7).
//
// It sits below package session, which owns the sent-packet table, loss detection, the PTO timer and
// the count of bytes in flight. This package only turns the session's events into numbers: an RTT
// estimate and a PTO, a congestion window, and the earliest time the next datagram may leave.
// It imports only the standard library.
//
// Like the session core it is sans-IO: it never reads the clock, sleeps or starts goroutines. Every
// call that depends on time takes `now`, so a simulated network with a virtual clock replays exactly.
// Nothing here is safe for concurrent use; the session's lock covers it. The per-packet calls
// ([Controller.OnPacketSent], [Controller.OnPacketAcked], [Pacer.TimeUntilSend], [Pacer.OnSent]) do
// not allocate.
//
// # Driving a controller
//
// The session calls, for ack-eliciting (in-flight) packets only:
//
//	OnPacketSent(now, size)                      // each packet counted in bytes in flight
//	rtt.Update(...)                              // once per ACK frame that newly acknowledges the largest
//	OnPacketAcked(now, size, timeSent, &rtt)     // each newly acknowledged in-flight packet
//	OnCongestionEvent(now, lostBytes, timeSent)  // packets declared lost: timeSent of the newest lost one
//	OnPersistentCongestion(now)                  // after OnCongestionEvent, when RFC 9002 §7.6 applies
//
// and, before handing acknowledgements over, tells controllers that implement [AppLimitedSetter]
// whether the window is being used (RFC 9002 §7.8). Sending is allowed while bytes in flight are
// below [Controller.CongestionWindow]; the [Pacer] spreads those sends over the RTT
// (SetRate(cwnd, srtt) after every change; ACK-only datagrams are not paced).
package congestion
