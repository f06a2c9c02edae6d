package transport

import "github.com/tlsgram/tlsgram/session"

// Stats is a snapshot of one connection's counters.
//
// The embedded session.Stats carries the protocol view: smoothed/min/latest RTT, congestion
// window, bytes in flight, pacing rate, datagrams and bytes sent and received, stream bytes
// retransmitted, packets lost, probe timeouts, congestion events, flow-control windows, and the
// received datagrams the core dropped, by reason (Drops: corrupted, malformed, duplicate, ...).
// The fields below add what only the transport sees.
type Stats struct {
	session.Stats

	// DroppedQueueFull counts datagrams for this connection that the socket reader dropped
	// because the connection's inbound queue (Config.InboundQueueLen) was full during the
	// handshake; after it a full queue makes the reader wait instead.
	DroppedQueueFull uint64
	// SendErrors counts batch writes to the socket that failed (the core retransmits).
	SendErrors uint64
	// SocketReceiveBuffer and SocketSendBuffer are the kernel buffer sizes (SO_RCVBUF,
	// SO_SNDBUF) of the socket, as the kernel reports them (Linux reports twice the usable size);
	// 0 if unknown. See Config.SocketBuffer.
	SocketReceiveBuffer, SocketSendBuffer int
	// SegmentationOffload reports whether the connection's socket sends with UDP generic
	// segmentation offload (see Config.DisableGSO).
	SegmentationOffload bool
	// ReceiveOffload reports whether the connection's socket receives with UDP generic receive
	// offload now (see Config.DisableGRO). A dialled connection's socket turns it on once it
	// receives in bulk.
	ReceiveOffload bool
}

// Stats returns a snapshot of the connection's counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	s := c.core.Stats()
	c.mu.Unlock()
	ep := c.endpoint()
	return Stats{
		Stats:               s,
		DroppedQueueFull:    c.dropQueueFull.Load(),
		SendErrors:          c.sendErrors.Load(),
		SocketReceiveBuffer: ep.rcvBuf,
		SocketSendBuffer:    ep.sndBuf,
		SegmentationOffload: ep.sock.usesGSO(),
		ReceiveOffload:      ep.sock.usesGRO(),
	}
}

// ListenerStats counts what a Listener did with datagrams that belonged to no connection yet.
type ListenerStats struct {
	Accepted          uint64 // connections handed to Accept
	HandshakeFailures uint64 // TLS handshakes that failed or timed out
	HalfOpen          int    // sessions holding a half-open slot now (Config.MaxHalfOpen)

	DroppedHalfOpen      uint64 // new clients dropped: Config.MaxHalfOpen handshakes in progress
	DroppedPrefix        uint64 // validated new clients dropped: Config.MaxHalfOpenPerPrefix reached
	DroppedShortInitial  uint64 // Initial datagrams below 1200 bytes (RFC 9000 §14.1)
	DroppedInvalid       uint64 // failed the CRC, did not parse, or not an Initial
	DroppedInvalidToken  uint64 // Initials with a Retry token that did not verify or expired
	DroppedUnknownConnID uint64 // short-header datagrams for no known connection
	DroppedMalformed     uint64 // too short for a header, or fixed bit clear
	DroppedTruncated     uint64 // larger than the receive buffers
	DroppedClosed        uint64 // new clients after Close
	RetriesSent          uint64 // stateless Retry datagrams sent (address validation)
	StatelessResets      uint64 // stateless resets sent for connection IDs we had no state for
	VersionNegotiations  uint64 // Version Negotiation datagrams sent
	DroppedVersion       uint64 // unknown versions not answered (rate limit, or too short)

	SocketReceiveBuffer, SocketSendBuffer int
}
