// Package reassembly is the receive side of a tlsgram connection, between the session's datagram
// processing and the TLS byte stream.
//
// The session core parses each authenticated datagram (package header) and hands this package two
// kinds of facts:
//
//   - the packet number, to [ReceivedPackets], which detects duplicates and remembers the ranges the
//     next ACK frame has to report (RFC 9000 §13.2);
//   - each STREAM frame's (offset, data, fin), to [Buffer], which puts chunks that arrive out of
//     order, twice or overlapping back into one contiguous byte stream. The session reads that
//     stream with [Buffer.Read] and feeds it to crypto/tls as the bytes of the underlying connection.
//
// Everything here is bounded because everything here is driven by the network: a [Buffer] never
// stores a byte past the flow-control limit the session advertised (RFC 9000 §4.1) and never holds
// more than a fixed number of holes, and a [ReceivedPackets] never keeps more ranges than one ACK
// frame can carry (header.MaxAckRanges). Input that would break a bound is refused whole, so the
// caller can count and drop it; the peer's loss recovery resends it.
//
// The package has no clock, no goroutines and no sockets, and it does not allocate in steady state.
// Its types are not safe for concurrent use; the session holds one lock around every call.
package reassembly
