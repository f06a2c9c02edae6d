package session

import "time"

// Stats is a snapshot of one connection's counters. All byte counts are UDP payload bytes unless
// the name says Stream.
type Stats struct {
	SmoothedRTT, RTTVar, MinRTT, LatestRTT time.Duration

	CongestionWindow int // bytes
	BytesInFlight    int
	PacingRate       int64 // bytes per second, 0 when pacing is off or unknown

	DatagramsSent, DatagramsReceived uint64
	BytesSent, BytesReceived         uint64
	StreamBytesSent                  uint64 // first transmissions of stream bytes
	StreamBytesReceived              uint64 // stream bytes delivered in order to the reader
	StreamBytesRetransmitted         uint64

	PacketsLost      uint64 // packets declared lost (RFC 9002 §6.1)
	PTOs             uint64 // probe timeouts fired
	SpuriousLosses   uint64 // packets declared lost and then acknowledged
	CongestionEvents uint64

	SendWindow    uint64 // the peer's flow-control limit for us, absolute
	ReceiveWindow uint64 // our current receive window size (auto-tuned)
	SendBuffered  int    // written, not yet acknowledged stream bytes
	RecvBuffered  int    // received, not yet read stream bytes (in order or not)
	SentTracked   int    // sent packets still tracked for ACK/loss

	// Path MTU discovery (RFC 8899): see Config.DisablePathMTUDiscovery.
	PathMTU        int           // the largest datagram the path carries as far as we know (PLPMTU)
	PMTUProbesSent uint64        // probe packets sent
	PMTUProbesLost uint64        // probes lost: their size does not fit (not counted in PacketsLost)
	PMTUBlackHoles uint64        // fallbacks to 1200 bytes after bigger packets stopped arriving
	PMTUSearchTime time.Duration // how long the last completed search took, first probe to result

	// Migration (RFC 9000 §9): see Conn.HandleDatagramFrom and Conn.Migrate.
	PathChanges     uint64 // times the connection moved to a new path
	PathValidations uint64 // new peer addresses validated by PATH_RESPONSE (server)

	// Unreliable datagrams: see Conn.SendDatagram.
	AppDatagramsSent           uint64 // sent in DATAGRAM frames
	AppDatagramsReceived       uint64 // received and queued for ReceiveDatagram
	AppDatagramsDroppedSend    uint64 // dropped before sending: the send queue was full, or the path shrank
	AppDatagramsDroppedReceive uint64 // dropped on arrival: the read queue was full, or they did not decrypt

	Drops Drops
}

// Drops counts received datagrams the core discarded, by reason. None of them reached
// reassembly or the TLS stream.
type Drops struct {
	Integrity       uint64 // failed the CRC-32C or authentication tag: corrupted in transit or forged
	Unauthenticated uint64 // no tag (or no key yet) where the session requires one: forged or stale
	Malformed       uint64 // header or frames did not parse
	WrongConnID     uint64 // not addressed to us
	WrongType       uint64 // a packet type this side never accepts, or an unexpected Retry
	Duplicate       uint64 // packet number seen before
	FlowControl     uint64 // stream data beyond the advertised window
	TooManyGaps     uint64 // reassembly gap cap, or every ACK range in use; the sender retransmits
	AfterClose      uint64 // arrived after the connection closed
	Amplification   uint64 // datagrams the server withheld because of the 3× limit (sent side)
	ShortInitial    uint64 // server: an Initial in a datagram under 1200 bytes (RFC 9000 §14.1)
	// Unvalidated counts CLOSE and ACK frames a server ignored because they came from an address
	// it had not validated (they could be spoofed); the rest of the datagram was processed.
	Unvalidated uint64
}

// Total is the number of received datagrams dropped for any reason.
func (d Drops) Total() uint64 {
	return d.Integrity + d.Unauthenticated + d.Malformed + d.WrongConnID + d.WrongType + d.Duplicate + d.FlowControl + d.TooManyGaps + d.AfterClose + d.ShortInitial
}
