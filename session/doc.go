// Package session is tlsgram's connection core: one connection as a sans-IO state machine.
//
// The core sits between the transport (sockets, goroutines, the real clock) and the wire format
// (package header) and the receive-side reassembly (package reassembly). It owns everything that
// makes a lossy datagram path carry one reliable, ordered byte stream in each direction: the send
// buffer and chunker, packet numbers, ACK generation and processing (RFC 9000 §13.2), RTT
// estimation, loss detection and PTO (RFC 9002 §5–6), congestion control and pacing (RFC 9002 §7,
// via package congestion), flow control with window auto-tuning, address validation and the
// anti-amplification limit (RFC 9000 §8.1), keep-alive, idle and handshake timeouts, and close.
//
// The byte stream the core carries is the TLS record stream: the transport runs crypto/tls over an
// adapter around [Conn.Write] and [Conn.Read] — the Go analog of an OpenSSL memory BIO pair. The core
// never interprets those bytes.
//
// Sans-IO: the core never reads the clock, sleeps, starts goroutines or touches sockets. The
// caller passes `now` into every call that needs it and drives the core with
//
//	HandleDatagram(now, b)      // a UDP payload arrived
//	PollDatagram(now, dst)      // until it returns ok == false: datagrams to send now
//	NextTimeout()               // when to call HandleTimeout next
//	HandleTimeout(now)          // a timer fired
//	TakeEvents()                // what changed: whom to wake (Readable, Writable, ShouldSend, ...)
//
// Inside, a Conn composes three parts that own their state: sendStream (the bytes written, sent,
// acknowledged and to retransmit, the peer's flow-control limit), recovery (packets in flight,
// RTT, congestion controller, pacer, loss and PTO timers, the send-mode gate) and receiver
// (packet numbers received, ACK scheduling, the receive window). The Conn coordinates them:
// handshake, authentication, paths, close.
//
// This makes the whole protocol testable on a simulated network with a virtual clock
// (package session/simnet) as well as on real sockets (package transport).
//
// A Conn is not safe for concurrent use: the transport holds one lock around every call.
package session
