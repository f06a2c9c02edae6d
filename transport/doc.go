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
// connection usable. CloseWrite half-closes (TLS 1.3 close_notify and the end of the stream, in
// one packet). Close delivers every written byte to the peer or returns an error
// (ErrNotAcknowledged). After Close every method returns an error matching net.ErrClosed. Done
// and Err tell an application that is not reading when the connection ended, and why. Stats
// reports RTT, congestion window, datagram and byte counters, retransmissions and drops by
// reason. CloseWithError ends a connection with an application's code, which the peer's Read
// returns as an *ApplicationError. An Endpoint is one socket that both listens and dials.
// Config.Tracer (SlogTracer, QlogTracer, or TLSGRAM_QLOGDIR) traces connections, and
// ReadMetrics snapshots process-wide counters. Subpackages tlsgramhttp and tlsgramgrpc carry
// HTTP/2 and gRPC with the standard servers and clients.
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
// closed, or enough read that the receive window may need an update), and the core's next
// deadline. Each step takes everything queued, feeds it to the core and polls the core's output
// under one acquisition of the connection's lock (which guards the core), then sends the
// output in batches without the lock and wakes blocked Reads and Writes.
//
// Each socket has one reader goroutine. It reads batches and routes datagrams by destination
// connection ID, handing each connection its share of a batch at once; when a driver falls
// behind, the reader yields its processor so the driver can catch up. On Linux, the reader of a
// dialled connection's own socket ends after 1-2 s of quiet and a process-wide epoll instance
// starts another when a datagram comes (park_linux.go), so an idle Conn has none. On a
// Listener, an unknown ID carrying a padded Initial of our version starts a new session (its TLS
// handshake runs in a goroutine of its own, bounded by HandshakeTimeout, so Accept never waits
// behind a slow client), up to MaxHalfOpen at once (a session holds its slot until it is queued
// for Accept or released). An unknown version is answered with Version Negotiation,
// rate-limited. With RequireAddressValidation, while RetryThreshold sessions are half-open, or
// beyond RetryRate new clients a second whose handshakes do not complete (a spoofed client never
// completes one; a completed handshake proved its address and gives its count back), new clients get a stateless Retry whose token (an HMAC
// over the client's address, the new connection ID, its original DCID and the time) they must
// echo before the server keeps any state (RFC 9000 §8.1.2). The core enforces the 3×
// anti-amplification limit for unvalidated addresses, CLOSE frames included, ignores their
// CLOSE and ACK frames, and pads the client's first datagrams to 1200 bytes. A short header for
// an unknown connection ID is answered with a stateless reset (Config.StatelessResetKey). The
// README's Security section has the threat model and the limits' memory cost.
//
// # Closing
//
// Conn.Close sends close_notify and the end of the stream, waits up to CloseTimeout for the peer
// to acknowledge everything, then sends a CLOSE frame (which acknowledges everything received)
// and returns once it is in the socket, so a process may exit right after Close. The core's
// closing period (RFC 9000 §10.2) runs on in the background. Listener.Close stops accepting,
// aborts handshakes in progress and connections not yet accepted, and leaves accepted
// connections working: the shared socket is closed after the last of them. A failed Dial
// releases everything before it returns.
//
// On Linux, Dial connects its socket to the server, so the kernel reports an ICMP port
// unreachable on it as ECONNREFUSED: a Dial to a port where nothing listens fails at once with
// an error matching syscall.ECONNREFUSED, unless a datagram from the server arrived first.
// After that such errors are ignored (anyone on the path can forge them).
//
// Package transporttest provides an in-memory datagram network, so that whole sessions run
// inside a testing/synctest bubble on virtual time.
//
// # Defaults
//
// A nil *Config, and a zero field of one, mean the defaults below (Settings returns them, with
// what each does; the tlsgram command's flag is in parentheses):
//
//   - MaxDatagramSize: 1452 (-max-datagram)
//   - MaxAckDelay: 25ms
//   - IdleTimeout: 30s (-idle)
//   - KeepAlive: 10s (-keepalive)
//   - InitialWindow: 1 MiB
//   - MaxWindow: 16 MiB
//   - SendBuffer: 4 MiB
//   - Congestion: BBR (-cc)
//   - DisablePacing: false
//   - DisablePathMTUDiscovery: false
//   - HandshakeTimeout: 10s (-handshake-timeout)
//   - MaxHalfOpen: 1024
//   - MaxHalfOpenPerPrefix: MaxHalfOpen/8
//   - AcceptQueueLen: 128
//   - RequireAddressValidation: false
//   - RetryThreshold: MaxHalfOpen/2
//   - RetryRate: 256
//   - StatelessResetKey: nil
//   - CloseTimeout: 5s
//   - SocketBuffer: 4 MiB
//   - DisableGSO: false
//   - DisableGRO: false
//   - InboundQueueLen: 1024
//   - Tracer: nil
package transport
