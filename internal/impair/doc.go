// Package impair is tlsgram's network impairment model: a seeded, deterministic model of one
// direction of a bad path (loss, bursty loss, reordering, duplication, corruption, delay and
// jitter, a rate limit with a tail-drop queue, blackouts).
//
// The kernel we test on has no netem, so this model is the only impairment we have. It is pure:
// standard library only, no clock, no goroutines, no sockets, and it knows nothing about
// tlsgram's wire format. That is why it lives below every layer that uses it:
//
//   - session/simnet drives two sans-IO session cores over a pair of [Link] values with a virtual
//     clock. A Link never reads the clock: every call takes now, so the same seed and the same
//     sequence of calls give the same deliveries, byte for byte.
//   - package relay (internal/impair/relay) applies the model to real sockets on loopback: a UDP
//     relay for the `tlsgram relay` subcommand and the benchmark suite, and a TCP relay for TLS
//     over TCP, which applies only what makes sense for a byte stream ([TCPApplicable]).
//
// # Model
//
// A [Link] is one direction. [Link.Send] takes a datagram at time now, decides its fate and, if it
// survives, copies it into a buffer the Link owns and queues it by delivery time (a min-heap,
// ties broken by send order). [Link.NextDelivery] tells when the earliest copy is due;
// [Link.Receive] copies out one due copy. The simulator steps its virtual clock to NextDelivery;
// the relay arms a timer for it. In steady state neither Send nor Receive allocates.
//
// Every random decision about the i-th datagram given to Send is drawn from a generator seeded
// by (Config.Seed, i) alone. So switching one impairment on or off does not change the decisions
// the others make for the same datagram: a run with Duplicate=0.01 loses exactly the datagrams a
// run without it loses. (The Gilbert-Elliott state is the one piece of history; it depends only
// on the seed and the datagram count, too.)
//
// Order of decisions for each datagram: blackout, bursty loss, random loss, the Link's Limit, the
// rate limiter's queue (tail drop), then delay and jitter, reordering, duplication, corruption.
//
// Jitter never reorders: only Reorder delivers a datagram before one sent earlier. (netem, by
// contrast, reorders with jitter unless told otherwise; we keep the two apart so that a test of
// reordering and a test of delay variation are different tests.) To get there without clamping
// every datagram behind the slowest one before it — which, at a high packet rate, would turn
// jitter into a constant extra delay — the delay is a smooth function of the departure time
// rather than an independent draw per datagram: the slowly varying queueing delay of a real
// path, which is also what a FIFO path looks like.
package impair
