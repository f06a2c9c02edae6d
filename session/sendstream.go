package session

import "github.com/tlsgram/tlsgram/header"

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

	bytesSent          uint64 // first transmissions of stream bytes (Stats.StreamBytesSent)
	bytesRetransmitted uint64 // Stats.StreamBytesRetransmitted
}

// write appends p to the stream.
func (s *sendStream) write(p []byte) { s.buf.write(p) }

// buffered is how many written bytes are not yet acknowledged.
func (s *sendStream) buffered() int { return s.buf.len() }

// allAcked reports whether every byte written, and the FIN if one was wanted, is acknowledged.
func (s *sendStream) allAcked() bool {
	return s.buf.base == s.buf.end && (!s.finWanted || s.finAcked)
}

// hasNewData reports whether never-sent stream bytes (or a FIN) may be sent now.
func (s *sendStream) hasNewData() bool {
	if s.next < s.buf.end && s.next < s.peerMaxData {
		return true
	}
	return s.finWanted && !s.finSent && s.next == s.buf.end
}

// onMaxData raises the peer's flow-control limit (RFC 9000 §19.9: a smaller one is ignored)
// and reports whether it grew, which may let new data go.
func (s *sendStream) onMaxData(limit uint64) bool {
	if limit <= s.peerMaxData {
		return false
	}
	s.peerMaxData = limit
	return true
}

// blockedDue reports whether a DATA_BLOCKED frame is due: everything up to the peer's limit is
// sent, more is waiting, and the limit was not reported yet (RFC 9000 §4.1).
func (s *sendStream) blockedDue() bool {
	return s.next == s.peerMaxData && s.next < s.buf.end && s.blockedSent != s.peerMaxData+1
}

// ackChunks records the STREAM frames of an acknowledged packet as delivered.
func (s *sendStream) ackChunks(chunks []streamChunk) {
	for _, ch := range chunks {
		s.ack(ch.off, ch.off+uint64(ch.n))
		if ch.fin {
			s.finAcked = true
		}
	}
}

// requeue schedules the STREAM frames of a packet to be sent again: it was lost, a PTO probes
// with its data, or a Retry restarts the first flight. This is the one path by which sent data
// goes back to the queue (RFC 9002 §6: the data is retransmitted in new packets, not the
// packet); its FIN too, unless the FIN was acknowledged meanwhile in another packet.
func (s *sendStream) requeue(chunks []streamChunk) {
	for _, ch := range chunks {
		s.queueRetransmit(ch.off, ch.off+uint64(ch.n))
		if ch.fin && !s.finAcked {
			s.finSent = false
		}
	}
}

// ack records [start, end) as delivered and frees the send buffer below the lowest hole.
func (s *sendStream) ack(start, end uint64) {
	s.retransmit.remove(start, end)
	base := s.buf.base
	if start > base {
		s.acked.add(start, end)
		return
	}
	if end > base {
		base = end
	}
	for {
		r, ok := s.acked.first()
		if !ok || r.start > base {
			break
		}
		if r.end > base {
			base = r.end
		}
		s.acked.remove(r.start, r.end)
	}
	s.buf.advance(base)
}

// queueRetransmit schedules [start, end) to be sent again, minus what is already acknowledged.
func (s *sendStream) queueRetransmit(start, end uint64) {
	if start < s.buf.base {
		start = s.buf.base
	}
	if start >= end {
		return
	}
	s.retransmit.add(start, end)
	for i := s.acked.search(start + 1); i < len(s.acked.r) && s.acked.r[i].start < end; i++ {
		s.retransmit.remove(s.acked.r[i].start, s.acked.r[i].end)
	}
}

// appendStream fills the packet with STREAM frames: retransmissions first (they block the
// receiver's in-order delivery), then new data within the peer's flow-control limit. With hsOnly
// (an untagged packet after the handshake, see handshakePacket) only bytes below hsEnd go in,
// and no FIN.
func (s *sendStream) appendStream(b []byte, limit int, sp *sentPacket, hsOnly bool) ([]byte, bool) {
	added := false
	for sp.nChunks < maxChunksPerPacket {
		room := limit - len(b)
		if r, ok := s.retransmit.first(); ok {
			if r.start < s.buf.base { // acknowledged meanwhile
				s.retransmit.removeBelow(s.buf.base)
				continue
			}
			if hsOnly {
				if r.start >= s.hsEnd {
					break
				}
				r.end = min(r.end, s.hsEnd)
			}
			over := header.StreamOverhead(r.start, int(r.end-r.start))
			if room-over < minStreamPayload && room-over < int(r.end-r.start) {
				break
			}
			data := s.buf.slice(r.start, min(room-over, int(r.end-r.start)))
			if len(data) == 0 {
				s.retransmit.remove(r.start, r.end) // nothing held there any more
				continue
			}
			end := r.start + uint64(len(data))
			fin := s.finWanted && !s.finAcked && !hsOnly && end == s.buf.end && s.next == s.buf.end
			b = header.AppendStream(b, r.start, data, fin)
			s.retransmit.remove(r.start, end)
			sp.chunks[sp.nChunks] = streamChunk{off: r.start, n: uint32(len(data)), fin: fin}
			sp.nChunks++
			if fin {
				s.finSent = true
			}
			s.bytesRetransmitted += uint64(len(data))
			added = true
			continue
		}
		if !s.hasNewData() {
			break
		}
		stop := min(s.buf.end, s.peerMaxData)
		if hsOnly {
			if s.next >= s.hsEnd {
				break
			}
			stop = min(stop, s.hsEnd)
		}
		avail := stop - s.next
		over := header.StreamOverhead(s.next, int(min(avail, uint64(room))))
		if room-over < minStreamPayload && uint64(room-over) < avail {
			break
		}
		if room < over {
			break
		}
		data := s.buf.slice(s.next, int(min(avail, uint64(room-over))))
		end := s.next + uint64(len(data))
		fin := s.finWanted && !hsOnly && end == s.buf.end
		if len(data) == 0 && !fin {
			break
		}
		b = header.AppendStream(b, s.next, data, fin)
		sp.chunks[sp.nChunks] = streamChunk{off: s.next, n: uint32(len(data)), fin: fin}
		sp.nChunks++
		s.bytesSent += uint64(len(data))
		s.next = end
		if fin {
			s.finSent = true
		}
		added = true
	}
	return b, added
}
