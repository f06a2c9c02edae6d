package session

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/tlsgram/tlsgram/header"
)

// peerMaxAckDelay is the ACK delay every v1 endpoint promises not to exceed (RFC 9000 §13.2.1's
// max_ack_delay, fixed by our wire format instead of negotiated). PTO and RTT computations use it
// for the peer; Config.MaxAckDelay may only be smaller.
const peerMaxAckDelay = DefaultMaxAckDelay

// maxGaps bounds the holes reassembly tracks. A datagram whose data would open more is not
// acknowledged, so the sender retransmits it later; see reassembly.ErrTooManyGaps.
const maxGaps = 256

// maxChunksPerPacket bounds the STREAM frames one packet carries, so sentPacket stays a fixed size.
const maxChunksPerPacket = 4

// ackOnlyPingEvery makes every Nth otherwise ACK-only packet ack-eliciting (with a PING), so a
// receive-only endpoint learns its ACKs arrived and can forget old ranges (RFC 9000 §13.2.4).
const ackOnlyPingEvery = 16

type connState uint8

const (
	stateOpen     connState = iota
	stateClosing            // we sent CLOSE: answer stray packets with CLOSE until the deadline
	stateDraining           // the peer sent CLOSE: send nothing until the deadline
	stateClosed             // done: the transport may forget the connection
)

// Conn is one tlsgram connection's protocol state. See the package documentation for how to
// drive it. Not safe for concurrent use.
type Conn struct {
	conf     Config
	isClient bool

	localCID  uint64
	remoteCID uint64
	origDCID  uint64 // the DCID of the client's first Initial (server: it routes Initials too)
	retrySCID uint64 // the SCID of the Retry the client followed, 0 if none
	token     []byte // client: Retry token echoed in Initials

	state     connState
	err       error     // terminal error, set once
	closeCode uint64    // what our CLOSE frame says
	closeWhy  string    //
	closeSend bool      // a CLOSE frame is due
	closeSent int       // CLOSE frames sent while closing (rate limit)
	closeAt   time.Time // end of the closing/draining period

	// Handshake and address validation (RFC 9000 §8.1).
	created            time.Time
	handshakeComplete  bool // TLS says the handshake finished (SetHandshakeComplete)
	handshakeConfirmed bool // client: HANDSHAKE_DONE received; server: = handshakeComplete
	handshakeDoneSend  bool // server: a HANDSHAKE_DONE frame is due
	peerCIDKnown       bool // client: learned the server's CID, so short headers may be used
	peerKnowsCID       bool // server: the client addressed us by our CID, so short headers may be used
	addrValidated      bool // server: may send more than 3× what it received
	ampRecv, ampSent   uint64

	tx  sendStream // the send half of the stream: see sendstream.go
	rec recovery   // packets in flight, RTT, congestion control, PTO: see recovery.go
	rx  receiver   // received packet numbers, ACK scheduling, receive window: see receiver.go

	lastRecv time.Time // when the last genuine packet arrived: the idle timer counts from it
	pingSend bool      // a PING is due (keep-alive or probe)
	lastPing time.Time

	// Stateless reset (RFC 9000 §10.3): the server sends the client the token a reset for this
	// connection will end with, in an authenticated datagram; the client watches for it.
	resetToken     [header.StatelessResetTokenLen]byte
	resetKnown     bool // client: resetToken came from the server
	resetTokenSend bool // server: a RESET_TOKEN frame is due

	auth     *packetAuth // nil until InstallPacketKey
	authRecv bool        // an authenticated datagram arrived
	deferred deferredDatagrams

	pmtu  pmtud     // path MTU discovery: see pmtud.go
	path  pathState // migration and connection IDs: see path.go
	dgram datagrams // unreliable datagrams: see datagram.go

	ev eventState // what changed for the transport: see events.go

	tracer      Tracer          // nil unless SetTracer: see trace.go
	tracedState CongestionState // the congestion state last reported to tracer

	frame *header.Frame // scratch for parsing, lent by HandleDatagram (scratch.go), off the stack
	stats Stats
}

// NewClient returns the core of a client connection. localCID is the ID this client demultiplexes
// on; remoteCID is a random initial destination ID that the server will replace with its own.
// Both should come from a CSPRNG.
func NewClient(conf *Config, localCID, remoteCID uint64, now time.Time) *Conn {
	c := newConn(conf, localCID, remoteCID, now)
	c.isClient = true
	c.origDCID = remoteCID
	return c
}

// NewServer returns the core of a server connection, created by the transport on the first valid
// Initial, which it then passes to HandleDatagram. localCID is the server's own random ID; remoteCID
// is the client's (the Initial's SrcConnID); origDCID is the Initial's DstConnID. addrValidated is
// true when the Initial carried a valid Retry token: the 3× amplification limit then does not apply.
func NewServer(conf *Config, localCID, remoteCID, origDCID uint64, now time.Time, addrValidated bool) *Conn {
	c := newConn(conf, localCID, remoteCID, now)
	c.origDCID = origDCID
	c.addrValidated = addrValidated
	return c
}

func newConn(conf *Config, localCID, remoteCID uint64, now time.Time) *Conn {
	cf := conf.withDefaults()
	if cf.MaxAckDelay > peerMaxAckDelay {
		cf.MaxAckDelay = peerMaxAckDelay
	}
	c := &Conn{
		conf:      cf,
		localCID:  localCID,
		remoteCID: remoteCID,
		created:   now,
		lastRecv:  now,
		lastPing:  now,
		tx:        sendStream{peerMaxData: InitialMaxData},
		rec:       newRecovery(&cf),
		rx:        newReceiver(cf.InitialWindow, now),
	}
	c.pmtu.init(cf.MaxDatagramSize, cf.DisablePathMTUDiscovery)
	return c
}

// SetRetried tells a server core that the client's address was validated by a Retry: origDCID
// is the DCID of the client's first Initial, which the Retry token carries, and the core's own
// CID is the one the Retry chose. Both go into PacketKeyContext.
func (c *Conn) SetRetried(origDCID uint64) {
	c.origDCID = origDCID
	c.retrySCID = c.localCID
}

// PacketKeyContext is the context of the TLS exporter that derives the packet key
// (header/README.md §11): the DCID of the client's first Initial and the SCID of the Retry it
// followed (zero without one), 8 bytes each. Both ends know both, and the TLS handshake
// authenticates the exporter, so a Retry that an attacker injected, or one that did not come
// from the server, gives the two ends different keys (as QUIC's original_destination_connection_id
// and retry_source_connection_id transport parameters bind them, RFC 9000 §7.3).
func (c *Conn) PacketKeyContext() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, c.origDCID)
	binary.BigEndian.PutUint64(b[8:], c.retrySCID)
	return b
}

// SetStatelessResetToken gives a server core the token that a stateless reset for its connection
// ends with: a MAC of its CID under a key of the server's (transport.Config.StatelessResetKey),
// which a restarted server computes again without state. The core sends it to the client in an
// authenticated RESET_TOKEN frame once its handshake is complete.
func (c *Conn) SetStatelessResetToken(token [header.StatelessResetTokenLen]byte) {
	c.resetToken = token
	c.resetTokenSend = true
}

// HoldReceiveWindow keeps the receive window at InitialMaxData after the handshake completes,
// until it is called with false: a server's connection that nobody has accepted yet has no
// reader, and may not make the listener buffer a full window for it.
func (c *Conn) HoldReceiveWindow(held bool, now time.Time) {
	c.rx.hold(held, c.handshakeComplete, now)
	c.noteSendPending()
}

// LocalConnID is the ID this end demultiplexes on.
func (c *Conn) LocalConnID() uint64 { return c.localCID }

// RemoteConnID is the ID this end currently sends to.
func (c *Conn) RemoteConnID() uint64 { return c.remoteCID }

// IsClient reports which side this is.
func (c *Conn) IsClient() bool { return c.isClient }

// Write appends p to the stream. It never blocks and never writes short: either all of p is
// buffered, or an error says why nothing was (the connection is closed, or CloseWrite was called).
// Flow control belongs above this call: see SendSpace.
func (c *Conn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.tx.finWanted {
		return 0, ErrWriteClosed
	}
	c.tx.write(p)
	if len(p) > 0 && c.tx.hasNewData() {
		c.ev.pending |= EventShouldSend
	}
	return len(p), nil
}

// SendSpace is how many more bytes may be written before the send buffer exceeds
// Config.SendBuffer. Writers above the core wait for it to become positive.
//
// The buffer is sized to the path, not only to the configuration: at most four congestion windows
// (at least minSendBuffer), since more only queues data here, where the application can no longer
// take it back, and makes Close wait behind seconds of it on a slow or lossy path. On a fast path
// the window grows and the full SendBuffer is used.
func (c *Conn) SendSpace() int {
	limit := min(c.conf.SendBuffer, max(4*c.rec.cc.CongestionWindow(), minSendBuffer))
	if n := limit - c.tx.buffered(); n > 0 {
		return n
	}
	return 0
}

// minSendBuffer is the send buffer's floor while the congestion window is small.
const minSendBuffer = 256 << 10

// Read copies in-order stream bytes into p. It never blocks: (0, nil) means nothing is ready yet.
// After the peer's FIN has been read it returns io.EOF; after a terminal error it returns the error
// once the bytes that did arrive in order have been read.
func (c *Conn) Read(p []byte) (int, error) {
	due := c.rx.windowUpdateDue(c.receiveWindowHeld())
	n, err := c.rx.buf.Read(p)
	if n > 0 {
		c.stats.StreamBytesReceived += uint64(n)
		if !due && c.rx.windowUpdateDue(c.receiveWindowHeld()) {
			c.ev.pending |= EventShouldSend // a MAX_DATA is due
		}
		return n, nil
	}
	if err == io.EOF {
		return 0, io.EOF
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.rx.releaseHeldAck() {
		c.ev.pending |= EventShouldSend
	}
	return 0, nil
}

// Readable is the number of in-order bytes Read would return now.
func (c *Conn) Readable() int { return c.rx.buf.Readable() }

// CloseWrite sends FIN after everything written so far. Further Writes fail.
func (c *Conn) CloseWrite() {
	c.tx.finWanted = true
	if c.tx.hasNewData() {
		c.ev.pending |= EventShouldSend
	}
}

// Close closes the connection now: a CLOSE frame with code and reason goes out, unacknowledged
// data is abandoned, and the core answers stray packets with CLOSE for three PTOs before Done.
// For a graceful close, call CloseWrite and wait for AllAcked first.
func (c *Conn) Close(now time.Time, code uint64, reason string) {
	if c.state != stateOpen {
		return
	}
	c.setErr(&CloseError{Code: code, Reason: reason})
	c.enterClosing(now, code, reason)
}

func (c *Conn) enterClosing(now time.Time, code uint64, reason string) {
	c.state = stateClosing
	c.closeCode, c.closeWhy = code, reason
	c.closeSend = true
	c.ev.pending |= EventShouldSend
	c.closeAt = now.Add(c.closingPeriod())
	c.abandonSendState()
}

// abandonSendState forgets everything in flight: a closing connection sends only CLOSE.
func (c *Conn) abandonSendState() {
	c.rec.forgetInFlight()
	c.rec.probes = 0
	c.tx.retransmit.clear()
}

func (c *Conn) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// SetHandshakeComplete tells the core the TLS handshake finished: the handshake timer stops, and a
// server confirms the handshake to the client with HANDSHAKE_DONE. Call InstallPacketKey first:
// authenticated datagrams that arrived before the key are verified and processed now.
func (c *Conn) SetHandshakeComplete(now time.Time) {
	if c.handshakeComplete {
		return
	}
	before := c.observe()
	defer c.noteChanges(before)
	c.handshakeComplete = true
	c.pmtu.holdFirstProbe(now, c.tx.bytesSent, c.rec.rtt.SmoothedRTT())
	c.rx.open(now)
	c.tx.hsEnd = c.tx.buf.end
	if !c.isClient {
		c.handshakeConfirmed = true
		c.handshakeDoneSend = true
	}
	c.handleDeferred(now)
}

// HandshakeComplete reports whether SetHandshakeComplete was called.
func (c *Conn) HandshakeComplete() bool { return c.handshakeComplete }

// AllAcked reports whether the peer acknowledged every byte written, and the FIN if CloseWrite was
// called.
func (c *Conn) AllAcked() bool {
	return c.tx.allAcked()
}

// Err is nil while the connection is open, and the terminal error after it closed: *CloseError or
// *TimeoutError, both unwrapping to net.ErrClosed.
func (c *Conn) Err() error { return c.err }

// Done reports that the connection has nothing more to send or receive; the transport may forget it.
func (c *Conn) Done() bool { return c.state == stateClosed }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	s := c.stats
	s.SmoothedRTT = c.rec.rtt.SmoothedRTT()
	s.RTTVar = c.rec.rtt.RTTVar()
	s.MinRTT = c.rec.rtt.MinRTT()
	s.LatestRTT = c.rec.rtt.LatestRTT()
	s.CongestionWindow = c.rec.cc.CongestionWindow()
	s.BytesInFlight = c.rec.bytesInFlight
	if !c.conf.DisablePacing {
		// The rate the pacer uses (see PollDatagram): the controller's own, or 1.25·cwnd/srtt.
		if r := c.rec.cc.PacingRate(); r > 0 {
			s.PacingRate = int64(min(r, 1<<62))
		} else if s.SmoothedRTT > 0 {
			s.PacingRate = int64(float64(s.CongestionWindow) * 1.25 / s.SmoothedRTT.Seconds())
		}
	}
	s.SendWindow = c.tx.peerMaxData
	s.ReceiveWindow = c.rx.window
	s.SendBuffered = c.tx.buffered()
	s.StreamBytesSent = c.tx.bytesSent
	s.StreamBytesRetransmitted = c.tx.bytesRetransmitted
	s.RecvBuffered = c.rx.buf.Buffered()
	s.SentTracked = c.rec.sent.len()
	s.PathMTU = c.datagramSize()
	return s
}

// NextTimeout returns when HandleTimeout should be called next, or the zero time if no timer is
// armed. It is the earliest of a small fixed set of deadlines.
func (c *Conn) NextTimeout() time.Time {
	var t time.Time
	earliest := func(d time.Time) {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	switch c.state {
	case stateClosed:
		return time.Time{}
	case stateClosing, stateDraining:
		return c.closeAt
	}
	earliest(c.lossDetectionTimer())
	earliest(c.rx.ackTimer())
	earliest(c.lastRecv.Add(c.idleTimeout()))
	if !c.handshakeComplete {
		earliest(c.created.Add(c.conf.HandshakeTimeout))
	}
	if c.conf.KeepAlive > 0 {
		earliest(c.keepAliveAt())
	}
	if p := c.pacingWait(); !p.IsZero() {
		earliest(p)
	}
	return t
}

// idleTimeout is at least three PTOs, so a slow path is not mistaken for a dead one (RFC 9000
// §10.1) — but at most maxPTOPeriod beyond the configuration: the PTO follows RTT samples, which
// the peer shapes, and must not let it pin the connection for hours.
func (c *Conn) idleTimeout() time.Duration {
	return max(c.conf.IdleTimeout, min(3*c.rec.rtt.PTO(peerMaxAckDelay), maxPTOPeriod))
}

// closingPeriod is how long a closing or draining connection lingers: three PTOs (RFC 9000
// §10.2), capped like idleTimeout.
func (c *Conn) closingPeriod() time.Duration {
	return min(3*c.rec.rtt.PTO(peerMaxAckDelay), maxPTOPeriod)
}

// maxPTOPeriod caps the periods derived from the PTO. A minute covers three PTOs on any path with
// an RTT under ten seconds.
const maxPTOPeriod = time.Minute

func (c *Conn) keepAliveAt() time.Time {
	last := c.lastRecv
	if c.lastPing.After(last) {
		last = c.lastPing
	}
	return last.Add(c.conf.KeepAlive)
}

// HandleTimeout runs every timer that is due at now.
func (c *Conn) HandleTimeout(now time.Time) {
	before := c.observe()
	c.handleTimeout(now)
	c.noteChanges(before)
}

func (c *Conn) handleTimeout(now time.Time) {
	switch c.state {
	case stateClosed:
		return
	case stateClosing, stateDraining:
		if !now.Before(c.closeAt) {
			c.state = stateClosed
		}
		return
	}
	if !c.handshakeComplete && !now.Before(c.created.Add(c.conf.HandshakeTimeout)) {
		c.setErr(&TimeoutError{Handshake: true})
		c.enterClosing(now, CodeHandshakeTimeout, "handshake timeout")
		return
	}
	if !now.Before(c.lastRecv.Add(c.idleTimeout())) {
		// RFC 9000 §10.1: an idle timeout closes silently.
		c.setErr(&TimeoutError{})
		c.abandonSendState()
		c.state = stateClosed
		return
	}
	c.rx.onTimeout(now)
	if t := c.lossDetectionTimer(); !t.IsZero() && !now.Before(t) {
		c.onLossDetectionTimeout(now)
		c.traceCongestion(now)
	}
	if c.conf.KeepAlive > 0 && !now.Before(c.keepAliveAt()) {
		c.pingSend = true
		c.lastPing = now
	}
}
