// Package transport is tlsgram's public API: TLS 1.3 over UDP as a net.Conn.
//
//	ln, err := transport.Listen("udp", ":4433", serverTLS, nil) // one socket, many sessions
//	c, err := ln.Accept()                                        // handshake completed
//
//	c, err := transport.Dial(ctx, "udp", "example.com:4433", clientTLS, nil)
//
// A *Conn is a full net.Conn over standard crypto/tls: any certificate setup, ALPN, client
// authentication and ConnectionState work as with tls.Conn over TCP. Read and Write honour
// deadlines; a timed-out Read or Write returns a net.Error with Timeout() == true and leaves the
// connection usable. CloseWrite half-closes (TLS 1.3 close_notify, then the end of the stream).
// Close delivers every written byte to the peer or returns an error (ErrNotAcknowledged). After
// Close every method returns an error matching net.ErrClosed. Stats reports RTT, congestion
// window, datagram and byte counters, retransmissions and drops by reason.
//
// # Place in the layering
//
//	header (wire format) <- reassembly <- session (sans-IO core) <- transport (this package)
//
// The protocol lives in package session, a state machine that never touches the clock,
// goroutines or sockets. This package supplies those: UDP sockets with batch I/O (recvmmsg and
// sendmmsg on Linux), demultiplexing by connection ID, one driver goroutine per connection with
// its timer, the real clock, and crypto/tls on top.
//
// # How a connection runs
//
// crypto/tls runs over an in-memory adapter (the Go analog of an OpenSSL memory BIO) around the
// core's byte stream. crypto/tls makes any error of its underlying connection's Write permanent,
// so the adapter's Write never blocks or fails: Conn.Write waits for send-buffer space (and its
// deadline) above TLS and hands TLS only what fits. The adapter's Read blocks until the core has
// data, reporting a passed read deadline as a temporary net.Error, which crypto/tls does not
// make sticky.
//
// Each connection has one driver goroutine. It owns the core's timer and waits on three things:
// datagrams from the socket reader (a bounded queue; when it is full, datagrams are dropped and
// counted rather than stalling the socket), a 1-slot wake-up from the application (data written,
// read, closed), and the core's next deadline. After each step it sends what the core produced,
// in batches, and signals blocked Reads and Writes. One lock per connection guards the core.
//
// Each socket has one reader goroutine. It routes datagrams by destination connection ID; on a
// Listener, an unknown ID carrying a padded Initial of our version starts a new session (its TLS
// handshake runs in a goroutine of its own, bounded by HandshakeTimeout, so Accept never waits
// behind a slow client), up to MaxHalfOpen at once. An unknown version is answered with Version
// Negotiation, rate-limited. With RequireAddressValidation, or while RetryThreshold handshakes
// are in progress, new clients get a stateless Retry whose token (an HMAC over the client's
// address, the new connection ID and the time) they must echo before the server keeps any state
// (RFC 9000 §8.1.2). The core enforces the 3× anti-amplification limit for unvalidated
// addresses and pads the client's first datagrams to 1200 bytes.
//
// # Closing
//
// Conn.Close sends close_notify and the end of the stream, waits up to CloseTimeout for the peer
// to acknowledge everything, then sends a CLOSE frame; the core's closing period runs on in the
// background. Listener.Close stops accepting, aborts handshakes in progress and connections not
// yet accepted, and leaves accepted connections working: the shared socket is closed after the
// last of them. A failed Dial releases everything before it returns.
//
// # Defaults
//
// A nil *Config means: 1200-byte datagrams, NewReno with pacing, 1 MiB initial receive window
// growing to 16 MiB, 4 MiB send buffer, 25 ms max ACK delay, 30 s idle timeout, 10 s keep-alive,
// 10 s handshake timeout, 256 half-open sessions per listener, 128 queued accepts, Retry above
// 128 handshakes in progress, 5 s close timeout, 4 MiB socket buffers, 1024 queued datagrams per
// connection. See Config.
//
// Package transporttest provides an in-memory datagram network, so that whole sessions run
// inside a testing/synctest bubble on virtual time.
package transport
