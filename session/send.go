package session

import (
	"time"

	"github.com/tlsgram/tlsgram/header"
)

// pnLen is the packet number length on the wire. QUIC truncates to what the unacknowledged range
// needs (RFC 9000 §17.1), relying on AEAD over the number to reject a packet that decodes wrongly.
// Our integrity check covers the wire bytes, not the decoded number, so a packet overtaken by more
// than half the truncation window would be accepted with the wrong number — and its ACK would look
// like an ACK for a packet never sent. Four bytes put that window at 2^31 packets, for two bytes
// per datagram.
const pnLen = 4

// immediateAckWindow: below this many datagrams of congestion window, a window-limited sender
// asks for an immediate ACK on the packet that fills the window.
const immediateAckWindow = 16

// minCloseDatagram is the room a CLOSE datagram needs: a long header, the frame with a short
// reason, the trailer.
const minCloseDatagram = 64

// ackRangesPing: an ACK-only packet reporting this many ranges asks to be acknowledged (see
// PollDatagram), a quarter of what an ACK frame holds.
const ackRangesPing = header.MaxAckRanges / 4

// minStreamPayload: do not start a STREAM frame with room for fewer bytes than this.
const minStreamPayload = 32

// PollDatagram writes the next datagram to send into dst and returns its length. ok == false
// means nothing is due now (NextTimeout says when to look again). Call it in a loop after every
// HandleDatagram, HandleTimeout, Write, Read or Close. dst should hold Config.MaxDatagramSize bytes;
// a shorter dst limits the datagram.
func (c *Conn) PollDatagram(now time.Time, dst []byte) (n int, ok bool) {
	switch c.state {
	case stateClosed, stateDraining:
		return 0, false
	case stateClosing:
		if !c.closeSend {
			return 0, false
		}
		if !c.isClient && !c.addrValidated {
			// RFC 9000 §8.1 applies to CLOSE too: a spoofed Initial must not buy an answer
			// beyond three times its size, however many stray packets follow it.
			if b := c.ampBudget(); b < len(dst) {
				dst = dst[:b]
			}
			if len(dst) < minCloseDatagram {
				c.closeSend = false
				c.stats.Drops.Amplification++
				return 0, false
			}
		}
		c.closeSend = false
		n := c.buildClose(dst)
		c.tracePacket(TracePacketSent, now, c.rec.nextPN-1, n, false)
		if c.rx.largest == header.NoPacket || (!c.isClient && !c.addrValidated) {
			// Nothing ever came from the peer, or nothing that proves the peer is where the
			// datagrams came from: there is nobody to answer stray packets for, so skip the
			// closing period (RFC 9000 §10.2.1, §10.2 allows discarding state at once). A
			// spoofed handshake then frees its memory as soon as it fails.
			c.state = stateClosed
		}
		return n, true
	}
	size := min(len(dst), c.datagramSize())
	if !c.isClient && !c.addrValidated {
		// RFC 9000 §8.1: at most three times what this address sent us.
		if b := c.ampBudget(); b < size {
			size = b
		}
		if size < 64 {
			if c.wantsToSend() {
				c.stats.Drops.Amplification++
			}
			return 0, false
		}
	}
	if size < header.MinInitialDatagramSize && c.isClient && !c.peerCIDKnown {
		return 0, false // cannot pad an Initial; the caller passed a tiny buffer
	}
	c.rx.updateWindow(now, c.receiveWindowHeld(), &c.rec.rtt, c.conf.MaxWindow)
	if n, ok := c.pollProbe(now, dst); ok {
		return n, true
	}

	ackDue := c.rx.ackDue(now)
	// May this datagram carry ack-eliciting frames? Probes ignore the congestion window and pacing
	// (RFC 9002 §7.5, §6.2.4); everything else respects both. ACK-only datagrams need neither.
	canSend, probe := c.rec.sendMode(now, size, !c.conf.DisablePacing)
	wantSend := c.wantsToSend() || probe
	c.rec.noteAppLimited(wantSend, size)
	if !(canSend && wantSend) && !ackDue {
		return 0, false
	}

	b := dst[:0:size]
	hdr := c.packetHeader(c.rec.nextNumber())
	hsOnly := hdr.Type == header.TypeShort && c.handshakePacket()
	if hsOnly {
		hdr.Authenticated = false
	}
	b = header.AppendHeader(b, &hdr)
	limit := size - header.TrailerLen
	if hdr.Authenticated {
		limit = size - header.TagLen
	}

	sp := sentPacket{pn: hdr.PacketNumber, time: now, ackLargest: header.NoPacket, tagged: hdr.Authenticated}
	ackEliciting, immediate := false, false
	// A full-size datagram leaves no room for an ACK that is only repeated, not due: leave it out
	// (MaxDatagramPayload counts on that), or the packet would carry the ACK alone, forever.
	if c.rx.hasAckToRepeat() && (ackDue || !c.datagramDue()) { // covers ackPending and ackDue: a pending ACK has ranges
		b, sp.ackLargest, sp.ackGen = c.rx.appendAck(b, now, limit)
	}
	if canSend {
		if c.handshakeDoneSend && len(b)+1 <= limit {
			b = header.AppendHandshakeDone(b)
			c.handshakeDoneSend = false
			sp.handshakeDone = true
			ackEliciting = true
		}
		if c.resetTokenSend && hdr.Authenticated && len(b)+1+header.StatelessResetTokenLen <= limit {
			b = header.AppendResetToken(b, &c.resetToken)
			c.resetTokenSend = false
			sp.resetToken = true
			ackEliciting = true
		}
		if !hsOnly {
			var added bool
			b, added = c.appendPathFrames(b, limit, &sp, hdr.Authenticated)
			ackEliciting = ackEliciting || added
			// Datagrams before stream data: they are the latency-sensitive traffic.
			b, added = c.appendDatagram(b, limit, hdr.PacketNumber, hdr.Authenticated)
			ackEliciting = ackEliciting || added
		}
		if c.rx.maxDataSend && !hsOnly && len(b)+1+header.VarintLen(c.rx.buf.Limit()) <= limit {
			b = header.AppendMaxData(b, c.rx.buf.Limit())
			c.rx.maxDataSend = false
			sp.maxData = true
			ackEliciting = true
		}
		var added bool
		// Leave a byte for IMMEDIATE_ACK (and PING); see below.
		b, added = c.tx.appendStream(b, limit-2, &sp, hsOnly)
		ackEliciting = ackEliciting || added
		if !hsOnly && c.tx.blockedDue() &&
			len(b)+1+header.VarintLen(c.tx.peerMaxData) <= limit {
			b = header.AppendDataBlocked(b, c.tx.peerMaxData)
			c.tx.blockedSent = c.tx.peerMaxData + 1
			ackEliciting = true
		}
		if (c.pingSend || (probe && !ackEliciting)) && len(b)+1 <= limit {
			b = header.AppendPing(b)
			c.pingSend = false
			ackEliciting = true
		}
		// Ask for an immediate ACK on the last packet we can send for now: the tail of a flight,
		// a full small window, or the last an unvalidated server's amplification budget allows.
		// Otherwise the receiver's "every second packet or max_ack_delay" rule stalls an
		// odd-sized flight for 25 ms, and on a short path that — not the RTT — sets the pace of
		// recovery; and during the handshake the receiver holds its ACK while the flight is
		// incomplete (releaseHeldAck), so a server blocked on the budget would wait for it.
		if ackEliciting && len(b)+1 <= limit && (!c.wantsToSend() || c.ampLastPacket(len(b)+1+size-limit) ||
			(c.rec.cc.CongestionWindow() < immediateAckWindow*c.conf.MaxDatagramSize &&
				c.rec.bytesInFlight+len(b)+c.conf.MaxDatagramSize > c.rec.cc.CongestionWindow())) {
			b = header.AppendImmediateAck(b)
			immediate = true
		}
	}
	if !ackEliciting && sp.ackLargest != header.NoPacket {
		// An ACK-only packet. Every so often make one ack-eliciting so that our ACK ranges get
		// acknowledged and can be forgotten — but only if the window allows it. Always when the
		// ranges pile up (a lossy path and a large flight): once they are all in use, packets
		// that would open another are refused (see HandleDatagram).
		c.rx.ackOnlySent++
		if (c.rx.ackOnlySent >= ackOnlyPingEvery || c.rx.received.NumRanges() >= ackRangesPing) && canSend &&
			c.rx.received.NumRanges() > 1 && len(b)+1 <= limit {
			b = header.AppendPing(b)
			ackEliciting = true
		}
	}
	if !ackEliciting && sp.ackLargest == header.NoPacket {
		// Nothing fit after all (or the ACK had no ranges): send nothing. The PN is not consumed.
		return 0, false
	}
	b = c.seal(b, &hdr, size)

	c.rec.commitNumber(hdr.PacketNumber)
	c.stats.DatagramsSent++
	c.stats.BytesSent += uint64(len(b))
	if !c.isClient && !c.addrValidated {
		c.ampSent += uint64(len(b))
	}
	if ackEliciting {
		c.rx.ackOnlySent = 0
		c.rec.onSent(now, &sp, len(b), immediate, probe, !c.conf.DisablePacing)
	}
	c.tracePacket(TracePacketSent, now, hdr.PacketNumber, len(b), ackEliciting)
	return len(b), true
}

// packetHeader is the header of our next packet, numbered pn: long (with our CID, and the Retry
// token from a client) until the peer knows our CID, then short and, once both ends hold the
// packet key, authenticated.
func (c *Conn) packetHeader(pn uint64) header.Header {
	h := header.Header{DstConnID: c.remoteCID, PacketNumber: pn, PNLen: pnLen}
	switch {
	case !c.longHeader():
		h.Type = header.TypeShort
		h.Authenticated = c.authSending()
	case c.isClient:
		h.Type, h.Version, h.SrcConnID, h.Token = header.TypeInitial, header.Version1, c.localCID, c.token
	default:
		h.Type, h.Version, h.SrcConnID = header.TypeHandshake, header.Version1, c.localCID
	}
	return h
}

// longHeader reports whether packets still need the long header: until the client has heard from
// the server, and until the server knows the client has its CID.
func (c *Conn) longHeader() bool {
	if c.isClient {
		return !c.peerCIDKnown
	}
	return !c.peerKnowsCID
}

// wantsToSend reports whether anything ack-eliciting is waiting for the congestion window.
func (c *Conn) wantsToSend() bool {
	return !c.tx.retransmit.empty() || c.tx.hasNewData() || c.rx.maxDataSend || c.handshakeDoneSend || c.pingSend ||
		(c.resetTokenSend && c.authSending()) || c.pathFramesDue() || c.datagramDue()
}

// pacingWait is when the pacer will next allow a packet that is waiting only for it, or zero.
func (c *Conn) pacingWait() time.Time {
	if c.conf.DisablePacing || !c.wantsToSend() || c.ampLimited() {
		return time.Time{}
	}
	return c.rec.pacingWait(c.conf.MaxDatagramSize)
}

// buildClose writes a datagram with a CLOSE frame, after an ACK of everything received.
func (c *Conn) buildClose(dst []byte) int {
	size := min(len(dst), c.conf.MaxDatagramSize)
	hdr := c.packetHeader(c.rec.nextPN)
	b := header.AppendHeader(dst[:0:size], &hdr)
	// Acknowledge everything received along with the CLOSE: a peer that closes right after
	// reading our FIN then learns that all its data arrived, instead of guessing.
	f := getAck()
	c.rx.received.AppendAckFrame(f)
	if f.NumRanges > 0 && len(b)+header.AckLen(f)+header.TagLen+64 <= size {
		f.Delay = 0
		b = header.AppendAck(b, f)
	}
	putAck(f)
	b = c.appendCloseTail(b, size)
	reason := c.closeWhy
	if room := size - len(b) - header.TagLen - 16; len(reason) > room {
		reason = reason[:max(room, 0)]
	}
	b = header.AppendClose(b, c.closeCode, []byte(reason))
	b = c.seal(b, &hdr, size)
	c.rec.nextPN++
	c.stats.DatagramsSent++
	c.stats.BytesSent += uint64(len(b))
	if !c.isClient && !c.addrValidated {
		c.ampSent += uint64(len(b))
	}
	return len(b)
}

// maxCloseTail is the most unacknowledged stream bytes a CLOSE datagram repeats.
const maxCloseTail = 256

// appendCloseTail puts the stream bytes the peer has not acknowledged in front of the CLOSE frame,
// if they are few and within its flow-control limit: typically the TLS alert of a failed
// handshake, written just before the close. The peer's TLS reads it before the CLOSE's error
// (Read returns in-order bytes first), so it reports the alert itself — "remote error: tls:
// unknown certificate authority" — within one round trip. (QUIC maps alerts to CONNECTION_CLOSE
// codes, RFC 9001 §4.8; we carry the TLS record stream, so the record itself can go.)
func (c *Conn) appendCloseTail(b []byte, size int) []byte {
	base, end := c.tx.buf.base, c.tx.buf.end
	n := end - base
	if n == 0 || n > maxCloseTail || end > c.tx.peerMaxData {
		return b
	}
	data := c.tx.buf.slice(base, int(n))
	if uint64(len(data)) != n || len(b)+header.StreamOverhead(base, int(n))+int(n)+header.TagLen+16 > size {
		return b // wrapped around the ring, or no room: the CLOSE alone says enough
	}
	return header.AppendStream(b, base, data, false)
}

// seal ends the datagram in b (at most size bytes) with its authentication tag or its CRC. A
// client's Initial is padded to 1200 bytes first (RFC 9000 §14.1), so that the server's 3×
// allowance covers its first flight; so are its probes until the handshake completes, which
// give an amplification-limited server the credit to resend that flight (RFC 9002 §6.2.2.1).
func (c *Conn) seal(b []byte, h *header.Header, size int) []byte {
	if h.Type == header.TypeInitial || (c.isClient && !c.handshakeComplete && c.rec.probes > 0) {
		if pad := header.MinInitialDatagramSize - header.TrailerLen - len(b); pad > 0 && len(b)+pad+header.TrailerLen <= size {
			b = header.AppendPadding(b, pad)
		}
	}
	if h.Authenticated {
		return c.auth.seal(b, 0, !c.isClient, h.PacketNumber)
	}
	return header.Seal(b, 0)
}
