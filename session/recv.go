package session

import (
	"crypto/subtle"
	"errors"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/reassembly"
)

// HandleDatagram processes one received UDP payload. The core copies what it keeps and holds no
// reference to dg after it returns, so the caller may reuse the buffer at once. Anything that fails the integrity check, does
// not parse, is not addressed to this connection or repeats a packet number is dropped and counted
// in Stats().Drops; it never reaches reassembly or the TLS stream.
func (c *Conn) HandleDatagram(now time.Time, dg []byte) {
	c.stats.DatagramsReceived++
	c.stats.BytesReceived += uint64(len(dg))
	before := c.observe()
	c.handleDatagram(now, dg)
	c.noteChanges(before)
	c.traceCongestion(now)
}

func (c *Conn) handleDatagram(now time.Time, dg []byte) {
	if c.frame == nil { // not called from within another handleDatagram
		c.frame = getFrame()
		defer c.returnFrame()
	}
	if c.state == stateClosed || c.state == stateDraining {
		c.stats.Drops.AfterClose++
		return
	}
	if c.isStatelessReset(dg) {
		// RFC 9000 §10.3.1: the server has no state for us; send nothing more.
		c.setErr(&ResetError{})
		c.abandonSendState()
		c.state = stateClosed
		return
	}
	hdr, payload, err := header.Open(dg)
	if err != nil {
		if errors.Is(err, header.ErrIntegrity) {
			c.stats.Drops.Integrity++
		} else {
			c.stats.Drops.Malformed++
		}
		return
	}
	if !c.acceptHeader(&hdr) {
		return
	}
	if hdr.Type == header.TypeRetry {
		c.handleRetry(&hdr)
		return
	}
	if !c.isClient && hdr.Type == header.TypeInitial && len(dg) < header.MinInitialDatagramSize {
		// RFC 9000 §14.1 (header/README.md §2): every Initial, not only the first, comes in a
		// datagram of at least 1200 bytes; smaller ones would buy amplification credit cheaply.
		c.stats.Drops.ShortInitial++
		return
	}
	// RFC 9000 §8.1: count what an unvalidated address sent us; the server may send 3× that.
	if !c.isClient && !c.addrValidated {
		c.ampRecv += uint64(len(dg))
	}

	pn := header.DecodePacketNumber(c.rx.largest, hdr.PacketNumber, hdr.PNLen)
	trustedOnly := false
	if hdr.Authenticated {
		if c.auth == nil {
			c.deferDatagram(dg) // the peer has the key before we do
			return
		}
		if !c.auth.verify(dg, c.isClient, pn) {
			c.stats.Drops.Integrity++
			return
		}
		c.authRecv = true
	} else {
		var ok bool
		if ok, trustedOnly = c.acceptUnauthenticated(); !ok {
			// Stale (sent before the peer had the key; what it carried is sent again) or forged.
			c.stats.Drops.Unauthenticated++
			return
		}
	}
	if c.rx.received.Contains(pn) {
		c.stats.Drops.Duplicate++
		return
	}
	// Parse every frame before acting on any: a packet is processed whole or not at all.
	ackEliciting := false
	for p := payload; len(p) > 0; {
		n, err := header.ParseFrame(p, c.frame)
		if err != nil {
			c.stats.Drops.Malformed++
			return
		}
		switch c.frame.Type {
		case header.FramePadding, header.FrameAck, header.FrameClose:
		default:
			ackEliciting = true
		}
		p = p[n:]
	}
	if len(payload) == 0 {
		c.stats.Drops.Malformed++ // RFC 9000 §12.4: a packet without frames is invalid
		return
	}

	if trustedOnly {
		c.handleUntagged(now, payload)
		return
	}

	// The packet is genuine as far as we can tell: learn from its header.
	c.tracePacket(TracePacketReceived, now, pn, len(dg), ackEliciting)
	c.lastRecv = now
	if c.isClient && !c.peerCIDKnown && hdr.Type == header.TypeHandshake {
		c.remoteCID = hdr.SrcConnID
		c.peerCIDKnown = true
	}
	if c.isClient && hdr.Type == header.TypeShort {
		c.peerCIDKnown = true
	}
	if !c.isClient && hdr.DstConnID == c.localCID && !c.path.validating {
		// Only someone who received our packets at this address knows our CID.
		c.addrValidated = true
		c.peerKnowsCID = true
	}

	if c.state == stateClosing {
		// RFC 9000 §10.2.1: answer with CLOSE again, but less and less often. Record the packet
		// first: the CLOSE carries an ACK, and a peer whose FIN arrives only now must learn that
		// it did, or its graceful close fails for want of an acknowledgement.
		c.rx.received.Add(pn)
		c.closeSent++
		if c.closeSent&(c.closeSent-1) == 0 {
			c.closeSend = true
		}
		return
	}

	// Before the client has shown it receives our datagrams, anyone can send these with its
	// address and the CID of its first Initial: a spoofed CLOSE would free the session at once
	// (the TLS work done, the half-open slot back), and a spoofed ACK would fake an RTT sample
	// or acknowledge our flight for a client that never got it. A genuine client sends both to
	// our CID, which validates its address first.
	unvalidated := !c.isClient && !c.addrValidated
	if !c.rx.received.Fits(pn) {
		// Every ACK range is in use and this packet would open another. Forgetting the lowest
		// range would leave packets whose data we used unacknowledged for good (see
		// reassembly.ReceivedPackets.Fits), so the packet is refused as if lost — all but its
		// ACK frames, which need no acknowledgement and are what frees our ranges (our ACKs ask
		// to be acknowledged meanwhile, see ackRangesPing).
		c.stats.Drops.TooManyGaps++
		for p := payload; len(p) > 0; {
			n, _ := header.ParseFrame(p, c.frame)
			p = p[n:]
			if c.frame.Type == header.FrameAck && !unvalidated {
				c.handleFrame(now, c.frame)
			}
		}
		return
	}
	rejected := false
	c.dgram.pn = pn
	c.rx.immediate = false // onImmediateAck sets it for onPacket
	for p := payload; len(p) > 0; {
		n, _ := header.ParseFrame(p, c.frame)
		p = p[n:]
		if unvalidated && (c.frame.Type == header.FrameClose || c.frame.Type == header.FrameAck) {
			c.stats.Drops.Unvalidated++
			continue
		}
		if !hdr.Authenticated && onlyTagged(c.frame.Type) {
			continue // anyone could send it; the peer sends it tagged
		}
		if !c.handleFrame(now, c.frame) {
			rejected = true
			break
		}
		if c.state != stateOpen {
			return
		}
	}
	if rejected {
		// Stream data that could not be stored: do not acknowledge the packet, so the sender
		// retransmits it. Everything else in it was idempotent.
		return
	}
	c.rx.onPacket(now, pn, ackEliciting, c.handshakeComplete, c.conf.MaxAckDelay)
}

// acceptHeader checks that a parsed header is addressed to this connection and of a type this side
// accepts.
func (c *Conn) acceptHeader(h *header.Header) bool {
	switch h.Type {
	case header.TypeShort:
	case header.TypeInitial:
		if c.isClient || h.Version != header.Version1 {
			c.stats.Drops.WrongType++
			return false
		}
		if h.DstConnID == c.origDCID && h.DstConnID != 0 {
			return true
		}
	case header.TypeHandshake:
		if !c.isClient || h.Version != header.Version1 {
			c.stats.Drops.WrongType++
			return false
		}
		// After a Retry the server's session is the one with the Retry's CID (RFC 9000 §7.3
		// binds it). Another session, made by one of our Initials that got no Retry, may
		// answer too; following it would give the two ends different packet keys
		// (PacketKeyContext).
		if (c.peerCIDKnown || c.retrySCID != 0) && h.SrcConnID != c.remoteCID {
			c.stats.Drops.WrongConnID++
			return false
		}
	case header.TypeRetry:
		// RFC 9000 §17.2.5.2: one Retry, only before anything else came from the server.
		if !c.isClient || c.peerCIDKnown || c.token != nil || h.Version != header.Version1 || len(h.Token) == 0 {
			c.stats.Drops.WrongType++
			return false
		}
	default:
		c.stats.Drops.WrongType++
		return false
	}
	if h.DstConnID != c.localCID && !c.ownsConnID(h.DstConnID) {
		c.stats.Drops.WrongConnID++
		return false
	}
	return true
}

// handleRetry restarts the client's first flight towards the CID the server chose, echoing its
// token. The server kept no state, so everything sent so far is sent again — without counting as
// loss for congestion control.
func (c *Conn) handleRetry(h *header.Header) {
	c.token = append([]byte(nil), h.Token...)
	c.remoteCID = h.SrcConnID
	c.retrySCID = h.SrcConnID
	for i := c.rec.sent.head; i < len(c.rec.sent.pkts); i++ {
		p := &c.rec.sent.pkts[i]
		if p.gone || p.lost {
			continue
		}
		c.requeue(p) // nothing was acknowledged yet, and a client's packets carry no server frames
	}
	c.rec.forgetInFlight()
	c.rec.ptoCount = 0
}

// onlyTagged reports whether frames of type t are acted on only in authenticated datagrams: the
// peer sends them after its handshake, always tagged, and a forgery could end the connection
// (RESET_TOKEN), steer its path (NEW_CONNECTION_ID, PATH_RESPONSE) or inject application
// datagrams (DATAGRAM, whose own AEAD would catch it, but at a cost).
func onlyTagged(t header.FrameType) bool {
	switch t {
	case header.FrameResetToken, header.FrameNewConnID, header.FramePathResponse, header.FrameDatagram:
		return true
	}
	return false
}

// returnFrame gives back the scratch frame handleDatagram borrowed.
func (c *Conn) returnFrame() {
	putFrame(c.frame)
	c.frame = nil
}

// handleUntagged acts on an untagged datagram that a client takes after its handshake, before
// the server's first tagged one (acceptUnauthenticated): the tail of the server's flight, sent
// before the server completed, or a forgery. Its stream bytes are taken (a forgery of them fails
// TLS at worst), and its ACK may acknowledge packets we sent untagged (onUntaggedAck). Nothing
// else moves, since tagged datagrams depend on it: not the packet number state (a forged number
// near 2^32 would make every genuine number decode wrong, RFC 9000 §A.3, and fail its tag), not
// the set of packets we acknowledge (a genuine ack-eliciting one is retransmitted, tagged), not
// the idle timer. A CLOSE, MAX_DATA or HANDSHAKE_DONE in it is ignored: those come tagged.
func (c *Conn) handleUntagged(now time.Time, payload []byte) {
	for p := payload; len(p) > 0; {
		n, _ := header.ParseFrame(p, c.frame)
		p = p[n:]
		switch c.frame.Type {
		case header.FrameStream:
			if !c.handleFrame(now, c.frame) {
				return
			}
		case header.FrameAck:
			c.onUntaggedAck(&c.frame.Ack)
		}
		if c.state != stateOpen {
			return
		}
	}
}

// handleFrame applies one frame. It returns false if the frame's stream data could not be stored
// (the packet must then not be acknowledged). Protocol violations close the connection.
func (c *Conn) handleFrame(now time.Time, f *header.Frame) bool {
	switch f.Type {
	case header.FrameAck:
		if !c.onAck(now, &f.Ack) {
			c.protocolViolation(now, CodeProtocolViolation, "ACK for a packet never sent")
		}
	case header.FrameStream:
		err := c.rx.buf.Insert(f.Offset, f.Data, f.Fin)
		switch {
		case err == nil:
		case errors.Is(err, reassembly.ErrTooManyGaps):
			c.stats.Drops.TooManyGaps++
			return false
		case errors.Is(err, reassembly.ErrFlowControl):
			c.stats.Drops.FlowControl++
			c.protocolViolation(now, CodeFlowControl, "stream data beyond the flow-control limit")
		default:
			c.protocolViolation(now, CodeFinalSize, "inconsistent final size")
		}
	case header.FrameMaxData:
		c.tx.onMaxData(f.Limit)
	case header.FrameDataBlocked:
		c.rx.maxDataSend = true
	case header.FrameClose:
		c.setErr(peerCloseError(f.ErrorCode, string(f.Data)))
		// RFC 9000 §10.2.2: drain — send nothing more, then forget the connection.
		c.state = stateDraining
		c.closeAt = now.Add(c.closingPeriod())
		c.abandonSendState()
	case header.FrameHandshakeDone:
		if !c.isClient {
			c.protocolViolation(now, CodeProtocolViolation, "HANDSHAKE_DONE from a client")
			return true
		}
		c.handshakeConfirmed = true
	case header.FrameImmediateAck:
		c.rx.onImmediateAck(now, c.conf.MaxAckDelay)
	case header.FrameResetToken:
		if !c.isClient {
			c.protocolViolation(now, CodeProtocolViolation, "RESET_TOKEN from a client")
			return true
		}
		c.resetToken, c.resetKnown = f.ResetToken, true
	case header.FramePathChallenge, header.FramePathResponse, header.FrameNewConnID:
		c.handlePathFrame(f)
	case header.FrameDatagram:
		c.handleDatagramFrame(f, c.dgram.pn)
	case header.FramePing, header.FramePadding, header.FrameNewToken:
		// PING and PADDING need nothing beyond the ACK. NEW_TOKEN is parsed for forward
		// compatibility and not acted on yet.
	}
	return true
}

// isStatelessReset reports whether dg is a stateless reset from the server: it ends in the token
// the server gave us (header.StatelessResetToken). A genuine datagram ends in a tag or CRC that
// matches the token with probability 2^-128, so every datagram may be checked, before any other
// processing; the comparison takes constant time, so that timing does not reveal the token.
func (c *Conn) isStatelessReset(dg []byte) bool {
	if !c.resetKnown {
		return false
	}
	tok, ok := header.StatelessResetToken(dg)
	return ok && subtle.ConstantTimeCompare(tok[:], c.resetToken[:]) == 1
}

func (c *Conn) protocolViolation(now time.Time, code uint64, reason string) {
	if c.state != stateOpen {
		return
	}
	c.setErr(&CloseError{Code: code, Reason: reason})
	c.enterClosing(now, code, reason)
}
