// Package congestion is the send-rate machinery of a tlsgram session: the round-trip-time estimator
// (RFC 9002 §5), delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation), the
// congestion controllers — NewReno (RFC 9002 §7 and Appendix B), CUBIC (RFC 9438) with HyStart++
// slow start (RFC 9406), and BBR (draft-ietf-ccwg-bbr) — and a pacer (RFC 9002 §7.7).
//
// It sits below package session, which owns the sent-packet table, loss detection, the PTO timer and
// the count of bytes in flight. This package only turns the session's events into numbers: an RTT
// estimate and a PTO, delivery-rate samples, a congestion window and pacing rate, and the earliest
// time the next datagram may leave. It imports only the standard library.
//
// Like the session core it is sans-IO: it never reads the clock, sleeps or starts goroutines. Every
// call that depends on time takes `now`, so a simulated network with a virtual clock replays exactly.
// Nothing here is safe for concurrent use; the session's lock covers it. The per-packet calls
// ([Controller.OnPacketSent], [Controller.OnAck], [Sampler.OnSent], [Sampler.OnAcked],
// [Pacer.TimeUntilSend], [Pacer.OnSent]) do not allocate.
//
// # Driving a controller
//
// The session calls, for ack-eliciting (in-flight) packets only:
//
//	state := sampler.OnSent(now, inFlight, size) // kept with the packet in the sent-packet table
//	cc.OnPacketSent(now, size)
//
// and for each ACK frame (and each firing of the loss timer) builds one [AckEvent]:
//
//	rtt.Update(...)                        // when the frame newly acknowledges the largest
//	sampler.OnAcked(now, &state, size)     // each newly acknowledged packet, listed in ev.Acked
//	...                                    // loss detection: ev.LostBytes, ev.PersistentCongestion
//	ev.Sample = sampler.Sample(rtt.MinRTT())
//	cc.OnAck(&ev)
//
// Before handing acknowledgements over, it tells the sampler (OnAppLimited) and controllers that
// implement [AppLimitedSetter] whether the window is being used (RFC 9002 §7.8). Sending is allowed
// while bytes in flight are below [Controller.CongestionWindow]; the [Pacer] spreads those sends at
// [Controller.PacingRate] when the controller sets one (SetBandwidth), otherwise at 1.25·cwnd/srtt
// (SetRate after every change; ACK-only datagrams are not paced).
//
// [Names] and [ByName] list and look up the controllers by name, for configuration and flags.
package congestion
