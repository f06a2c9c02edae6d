package session

// sendStream is the send half of the stream: the bytes the application wrote and not yet saw
// acknowledged, which of them were sent, acknowledged out of order or are due again, the FIN,
// and the flow-control limit the peer gave us (RFC 9000 §4.1). It knows nothing of packets:
// recovery says which chunks were acknowledged or lost, and the Conn moves that here (ack,
// requeue). The zero value is an empty stream with no flow-control credit. Not safe for
// concurrent use.
type sendStream struct {
	buf         sendBuffer
	next        uint64   // next never-sent stream offset
	acked       rangeSet // stream bytes acknowledged above buf.base
	retransmit  rangeSet // stream bytes to send again (lost, or queued by a probe)
	finWanted   bool     // CloseWrite was called
	finSent     bool
	finAcked    bool
	peerMaxData uint64 // flow-control limit the peer gave us
	blockedSent uint64 // the limit we last sent DATA_BLOCKED for (+1; 0 = none)
	hsEnd       uint64 // client: the stream offset where its handshake bytes end
}
