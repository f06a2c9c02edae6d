package session

import (
	"time"

	"github.com/tlsgram/tlsgram/header"
)

// Datagram packetization layer path MTU discovery, DPLPMTUD (RFC 8899). The core starts at
// BASE_PLPMTU, the 1200 bytes every Internet path carries (RFC 9000 §14), and searches upwards to
// Config.MaxDatagramSize with probe packets: a PING padded to the size under test, which carries
// no stream data, so that losing one loses nothing. A probe that is acknowledged raises the size
// every later packet uses; maxProbes lost probes of one size mark it too big. The loss of a probe
// says the size does not fit the path, not that the path is congested, so it never reaches the
// congestion controller (RFC 8899 §4.4). When full-size packets stop arriving — the path changed
// under us, to one with a smaller MTU that drops them silently (a black hole, §4.3) — the core
// falls back to the base size and searches again.
const (
	// basePLPMTU is RFC 8899's BASE_PLPMTU.
	basePLPMTU = header.MinInitialDatagramSize
	// maxProbes is RFC 8899's MAX_PROBES: lost probes of one size before it counts as too big.
	maxProbes = 3
	// pmtuStep ends the search: once the largest size known to fit and the smallest known not to
	// are this close, the search is complete. 16 bytes is about 1% of a datagram, for a search of
	// at most five sizes between 1200 and 1452.
	pmtuStep = 16
	// pmtuRaiseInterval is RFC 8899's PMTU_RAISE_TIMER: a complete search is repeated this long
	// later, in case the path now carries more.
	pmtuRaiseInterval = 600 * time.Second
	// blackHoleLosses is how many packets above the base size must be lost, with none acknowledged
	// in between and a base-size packet acknowledged since, to conclude the path no longer carries
	// the current size (RFC 8899 §4.3). Three, like maxProbes.
	blackHoleLosses = 3
	// blackHolePTOs: consecutive probe timeouts with the current size above the base, with not a
	// single acknowledgement, also mean a black hole — or an outage, for which falling back costs
	// one search once the path is back.
	blackHolePTOs = 2
	// The first probe of a connection waits until it has sent firstProbeBytes of stream data
	// since the handshake, or for firstProbeRTTs smoothed RTTs, whichever comes first (quic-go
	// waits 5 RTTs, its mtuProbeDelay). A connection that exchanges a message or two and closes,
	// such as the bench's handshake metric, never needed a larger datagram, and probing at once
	// cost each end a 1452-byte send and its acknowledgement: 14.2 datagrams per such connection
	// (both ends), 11.8 with the wait (BenchmarkHandshake). A bulk transfer reaches the byte
	// threshold within its first flight, so its search starts as early as before (simnet's
	// TestPathMTUDiscoveryFindsLimit takes the same times), and a receiver that only
	// acknowledges probes after the RTTs.
	firstProbeBytes = 4 << 10
	firstProbeRTTs  = 5
)

type pmtuPhase uint8

const (
	pmtuOff       pmtuPhase = iota // MaxDatagramSize is the base size: nothing to search
	pmtuSearching                  // probing sizes between lo and hi
	pmtuComplete                   // searched; again at raiseAt
)

// pmtud is the search state (RFC 8899 §5.2's state machine, with BASE folded into SEARCHING:
// the base size is confirmed by every acknowledged packet).
type pmtud struct {
	phase       pmtuPhase
	cur         int       // PLPMTU: the size every packet but a probe may use
	max         int       // MAX_PLPMTU: Config.MaxDatagramSize
	lo, hi      int       // searching: lo fits (= cur), hi is the smallest size known not to (max+1 if none)
	probing     int       // size of the probe in flight, 0 if none
	failures    int       // lost probes of size probing
	raiseAt     time.Time // complete: when to search again
	bigLost     int       // packets above basePLPMTU lost since the last one acknowledged
	smallAck    bool      // a packet of at most basePLPMTU was acknowledged since bigLost was 0
	searchStart time.Time // when the current search started (for Stats.PMTUSearchTime)
	// The first probe waits for notBefore or until the stream has sent bytesAt bytes (see
	// firstProbeBytes); both are zero after the first.
	notBefore time.Time
	bytesAt   uint64
}

// holdFirstProbe makes the first probe wait (see firstProbeBytes): the handshake completed at
// now, with sent stream bytes sent and the smoothed RTT srtt.
func (p *pmtud) holdFirstProbe(now time.Time, sent uint64, srtt time.Duration) {
	p.notBefore = now.Add(firstProbeRTTs * srtt)
	p.bytesAt = sent + firstProbeBytes
}

// probeHeld reports whether the first probe still waits, sent stream bytes sent.
func (p *pmtud) probeHeld(now time.Time, sent uint64) bool {
	if p.notBefore.IsZero() || !now.Before(p.notBefore) || sent >= p.bytesAt {
		p.notBefore, p.bytesAt = time.Time{}, 0
		return false
	}
	return true
}

func (p *pmtud) init(maxSize int, disabled bool) {
	p.max = maxSize
	p.cur = min(basePLPMTU, maxSize)
	if disabled || maxSize <= basePLPMTU {
		p.cur = maxSize
		return
	}
	p.restart()
}

// restart searches from the current size upwards.
func (p *pmtud) restart() {
	p.phase = pmtuSearching
	p.lo, p.hi = p.cur, p.max+1
	p.failures = 0
	p.searchStart = time.Time{}
}

// next is the size to probe next: the maximum first (most paths carry it, and then one probe
// ends the search), then halfway between what fits and what does not.
func (p *pmtud) next() int {
	if p.hi == p.max+1 {
		return p.max
	}
	return (p.lo + p.hi) / 2
}

// datagramSize is the largest datagram the core sends now, probes aside.
func (c *Conn) datagramSize() int { return c.pmtu.cur }

// pollProbe builds a path MTU probe into dst if one is due and the congestion window has room
// for it. It is called by PollDatagram with the connection open.
func (c *Conn) pollProbe(now time.Time, dst []byte) (int, bool) {
	p := &c.pmtu
	if p.phase == pmtuComplete && !now.Before(p.raiseAt) {
		p.restart()
	}
	// Probes go out only once both ends authenticate datagrams: an untagged probe would be
	// dropped by a peer that requires tags, and count as a size that does not fit.
	// Nor to an address that is not validated: the 3× amplification budget is for data.
	if p.phase != pmtuSearching || p.probing != 0 || !c.authSending() || c.handshakePending() || (!c.isClient && !c.addrValidated) ||
		p.probeHeld(now, c.tx.bytesSent) {
		return 0, false
	}
	// A probe goes out wherever a datagram of the current size could: it takes the place of one,
	// a few hundred bytes larger. Asking for room for the whole probe starved it under a
	// controller that keeps the window full (BBR: the room that opens is one datagram at a time).
	size := p.next()
	if size > len(dst) || c.rec.bytesInFlight+c.datagramSize() > c.rec.cc.CongestionWindow() {
		return 0, false
	}
	if p.searchStart.IsZero() {
		p.searchStart = now
	}
	hdr := c.packetHeader(c.rec.skip.number(c.rec.nextPN))
	b := header.AppendHeader(dst[:0:size], &hdr)
	b = header.AppendPing(b)
	b = header.AppendPadding(b, size-len(b)-header.TagLen)
	b = c.seal(b, &hdr, size)

	c.rec.skip.commit(c.rec.nextPN, hdr.PacketNumber)
	c.rec.nextPN = hdr.PacketNumber + 1
	c.stats.DatagramsSent++
	c.stats.BytesSent += uint64(len(b))
	c.stats.PMTUProbesSent++
	// The probe carries the delivery-rate sampler's state like any packet in flight: an
	// acknowledged probe is a delivery (its loss is not congestion, pmtuProbeLost).
	c.rec.sent.push(sentPacket{pn: hdr.PacketNumber, time: now, size: len(b), ackLargest: header.NoPacket, tagged: true, pmtuProbe: true,
		rate: c.rec.sampler.OnSent(now, c.rec.bytesInFlight, len(b))})
	c.rec.bytesInFlight += len(b)
	c.rec.ackElicitingFlight++
	c.rec.lastAckElicitSent = now
	c.rec.cc.OnPacketSent(now, len(b))
	p.probing = size
	c.tracePacket(TracePacketSent, now, hdr.PacketNumber, len(b), true)
	return len(b), true
}

// pmtuAcked learns from an acknowledged packet: a probe's size fits the path; any other packet
// shows which sizes still get through (black hole detection).
func (c *Conn) pmtuAcked(now time.Time, sp *sentPacket) {
	p := &c.pmtu
	if sp.size > basePLPMTU {
		p.bigLost, p.smallAck = 0, false
	} else {
		p.smallAck = true
	}
	if !sp.pmtuProbe || sp.size != p.probing {
		return
	}
	p.probing, p.failures = 0, 0
	if sp.size > p.cur {
		p.cur = sp.size
	}
	p.lo = max(p.lo, sp.size)
	c.pmtuSearchStep(now)
}

// pmtuProbeLost handles a probe declared lost. Its bytes leave the flight, and nothing else
// happens to the sender: no retransmission (it carried nothing) and no congestion response.
func (c *Conn) pmtuProbeLost(now time.Time, sp *sentPacket) {
	c.rec.bytesInFlight -= sp.size
	c.rec.ackElicitingFlight--
	c.stats.PMTUProbesLost++
	sp.lost = true // kept a while, like other lost packets, for a late ACK: see pmtuLateAck
	p := &c.pmtu
	if sp.size != p.probing {
		return
	}
	p.probing = 0
	if p.failures++; p.failures < maxProbes {
		return
	}
	p.failures = 0
	p.hi = min(p.hi, sp.size)
	c.pmtuSearchStep(now)
}

// pmtuSearchStep ends the search when the bounds have met.
func (c *Conn) pmtuSearchStep(now time.Time) {
	p := &c.pmtu
	if p.phase != pmtuSearching || p.hi-p.lo > pmtuStep && p.lo < p.max {
		return
	}
	p.phase = pmtuComplete
	p.raiseAt = now.Add(pmtuRaiseInterval)
	if !p.searchStart.IsZero() {
		c.stats.PMTUSearchTime = now.Sub(p.searchStart)
	}
}

// pmtuLost counts a lost packet that was not a probe towards black hole detection.
func (c *Conn) pmtuLost(size int) {
	p := &c.pmtu
	if size <= basePLPMTU || p.cur <= basePLPMTU {
		return
	}
	p.bigLost++
	if p.bigLost >= blackHoleLosses && p.smallAck {
		c.pmtuBlackHole()
	}
}

// pmtuOnPTO is called when a probe timeout fires: consecutive ones without any acknowledgement
// while packets are above the base size are a black hole too (all the packets are big, so no
// small one could be acknowledged).
func (c *Conn) pmtuOnPTO() {
	if c.rec.ptoCount >= blackHolePTOs && c.pmtu.cur > basePLPMTU {
		c.pmtuBlackHole()
	}
}

// pmtuBlackHole falls back to the base size and searches again (RFC 8899 §5.2: SEARCH_COMPLETE
// or SEARCHING → BASE → SEARCHING).
func (c *Conn) pmtuBlackHole() {
	p := &c.pmtu
	c.stats.PMTUBlackHoles++
	p.cur = basePLPMTU
	p.bigLost, p.smallAck = 0, false
	p.probing = 0 // a probe still in flight is judged by its size when it is acknowledged or lost
	p.restart()
}

// pmtuLateAck handles the ACK of a probe declared lost: it was late, not too big, so its size
// fits after all. Without this, a path that delays one probe more than the loss-detection
// threshold (a busy machine) would make the search settle below the real limit.
func (c *Conn) pmtuLateAck(sp *sentPacket) {
	c.stats.PMTUProbesLost--
	p := &c.pmtu
	if sp.size <= p.cur {
		return
	}
	p.cur = sp.size
	p.lo = max(p.lo, sp.size)
	if p.hi <= sp.size {
		p.hi = p.max + 1 // the failures that set hi were not about the size
	}
	if p.phase == pmtuComplete && p.hi-p.lo > pmtuStep && p.lo < p.max {
		p.restart()
	}
}
