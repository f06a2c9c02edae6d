package session

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// recovery is loss recovery and congestion control for the packets we send (RFC 9002): the
// table of packets in flight, packet numbers (with the skips that catch optimistic ACKs), the
// RTT estimator, the congestion controller, pacer and delivery-rate sampler, the loss and PTO
// timers, and the send-mode gate that says whether the next packet may carry ack-eliciting
// frames. It knows what a packet carried only as a sentPacket; the Conn moves acknowledged and
// lost data to the send stream. Not safe for concurrent use.
type recovery struct {
	sent               sentList
	nextPN             uint64
	largestAcked       uint64 // header.NoPacket until the first ACK
	rtt                congestion.RTT
	cc                 congestion.Controller
	pacer              *congestion.Pacer
	sampler            congestion.Sampler  // delivery-rate estimation over the sent-packet table
	ackEv              congestion.AckEvent // the event being built for cc; reused (see beginAckEvent)
	bytesInFlight      int
	ackElicitingFlight int
	lastAckElicitSent  time.Time
	tailImmediate      bool // the last ack-eliciting packet asked for an immediate ACK
	// Loss-detection thresholds (RFC 9002 §6.1), raised when a loss turns out to be spurious:
	// the path reorders more than the defaults allow for (as Linux's RACK adapts its window).
	reorderPackets int // packet threshold, initially 3
	reorderEighths int // time threshold in eighths of an RTT, initially 9
	lossTime       time.Time
	ptoCount       int
	probes         int       // probe packets due after a PTO (they bypass the congestion window)
	pacingNext     time.Time // when the pacer next allows a packet, if it was the blocker
	skip           skipper
}

// newRecovery returns the recovery state of a new connection with configuration cf (defaults
// applied).
func newRecovery(cf *Config) recovery {
	r := recovery{
		largestAcked:   header.NoPacket,
		cc:             cf.Congestion(cf.MaxDatagramSize),
		pacer:          congestion.NewPacer(cf.MaxDatagramSize),
		reorderPackets: 3,
		reorderEighths: 9,
	}
	r.skip.init(cf.Rand)
	return r
}

// sendMode is the send-mode gate: whether the next packet of size bytes may carry ack-eliciting
// frames now (canSend), and whether it is a PTO probe. Probes ignore the congestion window and
// the pacer (RFC 9002 §7.5, §6.2.4); everything else respects both (with pacing, unless
// Config.DisablePacing), and when only the pacer says no, pacingNext says until when.
// ACK-only packets need neither.
func (r *recovery) sendMode(now time.Time, size int, pacing bool) (canSend, probe bool) {
	probe = r.probes > 0
	canSend = probe || r.bytesInFlight+size <= r.cc.CongestionWindow()
	if canSend && !probe && pacing {
		if rate := r.cc.PacingRate(); rate > 0 {
			r.pacer.SetBandwidth(rate)
		} else {
			r.pacer.SetRate(r.cc.CongestionWindow(), r.rtt.SmoothedRTT())
		}
		if t := r.pacer.TimeUntilSend(now, size); t.After(now) {
			canSend = false
			r.pacingNext = t
		}
	}
	return canSend, probe
}

// noteAppLimited tells the sampler and the controller whether the sender is using its window:
// wantSend says whether anything ack-eliciting waits to be sent, size is the packet size.
// RFC 9002 §7.8: a sender that is not using its window must not grow it. The delivery-rate
// samples of what is in flight now say how fast the application is, not the path
// (draft-cheng-iccrg-delivery-rate-estimation §3.4).
func (r *recovery) noteAppLimited(wantSend bool, size int) {
	if !wantSend && r.bytesInFlight < r.cc.CongestionWindow() {
		r.sampler.OnAppLimited(r.bytesInFlight)
	}
	if al, ok := r.cc.(congestion.AppLimitedSetter); ok {
		if !wantSend && r.bytesInFlight < r.cc.CongestionWindow() {
			al.SetAppLimited(true)
		} else if wantSend && r.bytesInFlight+size > r.cc.CongestionWindow() {
			al.SetAppLimited(false)
		}
	}
}

// pacingWait is when the pacer will next allow a packet of size bytes that waits only for it,
// or zero: no probe is due (probes are not paced) and the window has room.
func (r *recovery) pacingWait(size int) time.Time {
	if r.probes > 0 {
		return time.Time{}
	}
	if r.bytesInFlight+size > r.cc.CongestionWindow() {
		return time.Time{} // waiting for ACKs, not for the pacer
	}
	return r.pacingNext
}

// nextNumber is the packet number of the next packet; nothing changes until commitNumber.
func (r *recovery) nextNumber() uint64 { return r.skip.number(r.nextPN) }

// commitNumber records that packet pn (from nextNumber) was sent.
func (r *recovery) commitNumber(pn uint64) {
	r.skip.commit(r.nextPN, pn)
	r.nextPN = pn + 1
}

// onSent starts tracking an ack-eliciting packet of size bytes (RFC 9002 §A.5): in flight, for
// the controller, the sampler and the pacer. immediate: it asked for an immediate ACK; probe: it
// was a PTO probe, which the pacer does not count.
func (r *recovery) onSent(now time.Time, sp *sentPacket, size int, immediate, probe, pacing bool) {
	sp.size = size
	sp.rate = r.sampler.OnSent(now, r.bytesInFlight, size)
	r.sent.push(*sp)
	r.bytesInFlight += size
	r.ackElicitingFlight++
	r.lastAckElicitSent = now
	r.tailImmediate = immediate
	r.cc.OnPacketSent(now, size)
	if probe {
		r.probes--
	} else if pacing {
		r.pacer.OnSent(now, size)
	}
}

// leaveFlight takes p out of the bytes in flight (acknowledged, lost, or retired unauthenticated).
func (r *recovery) leaveFlight(p *sentPacket) {
	r.bytesInFlight -= p.size
	r.ackElicitingFlight--
}

// onPacketAcked takes p out of flight and adds it to the controller's event and the sampler.
func (r *recovery) onPacketAcked(now time.Time, p *sentPacket) {
	r.leaveFlight(p)
	r.ackEv.Acked = append(r.ackEv.Acked, congestion.AckedPacket{Size: p.size, SentTime: p.time})
	r.ackEv.AckedBytes += p.size
	r.sampler.OnAcked(now, &p.rate, p.size)
}

// onSpuriousLoss handles an ACK for p, which was declared lost too early: the path reorders
// more than the thresholds allow for, so they grow (RFC 9002 §6.1), and the delivery rate counts
// it, since it was delivered after all.
func (r *recovery) onSpuriousLoss(now time.Time, p *sentPacket) {
	r.reorderPackets = min(r.reorderPackets+r.reorderPackets/2+1, maxReorderPackets)
	r.reorderEighths = min(r.reorderEighths+2, maxReorderEighths)
	r.sampler.OnAcked(now, &p.rate, p.size)
}

// lossDelay is the time threshold (RFC 9002 §6.1.2): 9/8 of the larger of smoothed and latest
// RTT, at least 1 ms — 9/8 grows after spurious losses (§6.1: "implementations ... MAY increase
// the threshold").
func (r *recovery) lossDelay() time.Duration {
	d := max(r.rtt.LatestRTT(), r.rtt.SmoothedRTT())
	d = d * time.Duration(r.reorderEighths) / 8
	return max(d, time.Millisecond)
}

// isLost reports whether p is lost by the packet or the time threshold, given the send time
// before which packets are lost (RFC 9002 §6.1).
func (r *recovery) isLost(p *sentPacket, lostSendTime time.Time) bool {
	return !p.time.After(lostSendTime) || r.largestAcked >= p.pn+uint64(r.reorderPackets)
}

// ptoDeadline is when the probe timeout fires (RFC 9002 §6.2.1): ackDelay is what the peer may
// delay its ACK by, the timeout doubles per consecutive PTO (capped at a minute), and counts
// from the last ack-eliciting packet sent, or from start before any.
func (r *recovery) ptoDeadline(ackDelay time.Duration, start time.Time) time.Time {
	pto := r.rtt.PTO(ackDelay)
	shift := min(r.ptoCount, 16)
	pto <<= shift
	if pto > time.Minute || pto <= 0 {
		pto = time.Minute
	}
	base := r.lastAckElicitSent
	if base.IsZero() {
		base = start
	}
	return base.Add(pto)
}

// forgetInFlight forgets every packet in flight without calling any of them lost or
// acknowledged: the connection closes, or a Retry restarts the first flight.
func (r *recovery) forgetInFlight() {
	r.sent.clear()
	r.bytesInFlight = 0
	r.ackElicitingFlight = 0
	r.lossTime = time.Time{}
}

// Caps on the adaptive loss-detection thresholds: beyond them, waiting longer to detect a real
// loss costs more than a spurious retransmission.
const (
	maxReorderPackets = 64
	maxReorderEighths = 16 // two RTTs
)

// streamChunk is one STREAM frame a packet carried.
type streamChunk struct {
	off uint64
	n   uint32
	fin bool
}

// sentPacket is what the sender remembers about an ack-eliciting packet until it is acknowledged or
// declared lost (RFC 9002 §A.1.1). ACK-only packets are not tracked: they are never acknowledged.
type sentPacket struct {
	pn            uint64
	time          time.Time
	size          int
	ackLargest    uint64 // largest PN in the ACK frame it carried, header.NoPacket if none
	ackGen        uint64 // what the ACK frame reported: see reassembly.ReceivedPackets.DropAcked
	nChunks       uint8
	chunks        [maxChunksPerPacket]streamChunk
	maxData       bool                   // carried MAX_DATA
	handshakeDone bool                   // carried HANDSHAKE_DONE
	resetToken    bool                   // carried RESET_TOKEN
	tagged        bool                   // carried an authentication tag
	pmtuProbe     bool                   // a path MTU probe: see pmtud.go
	pathChallenge bool                   // carried PATH_CHALLENGE: see path.go
	connIDs       uint8                  // NEW_CONNECTION_ID frames it carried, by slot: see path.go
	lost          bool                   // declared lost; kept a while so a late ACK still counts (spurious loss)
	gone          bool                   // acknowledged, or lost and forgotten; removed lazily
	rate          congestion.PacketState // the delivery-rate sampler's state at send
}

// sentList holds tracked packets in packet-number order. Packets leave from anywhere (ACK ranges)
// but mostly from the front, so entries are flagged and the front is trimmed; the backing array is
// compacted when the dead prefix grows large. Steady state does not allocate.
type sentList struct {
	pkts []sentPacket
	head int
	live int
}

func (l *sentList) len() int { return l.live }

func (l *sentList) clear() {
	l.pkts = l.pkts[:0]
	l.head = 0
	l.live = 0
}

func (l *sentList) push(p sentPacket) {
	if l.head > 0 && l.head >= len(l.pkts)/2 {
		n := copy(l.pkts, l.pkts[l.head:])
		l.pkts = l.pkts[:n]
		l.head = 0
	}
	l.pkts = append(l.pkts, p)
	l.live++
}

// remove marks p gone; p must point into l.pkts. Indexes stay valid until trim.
func (l *sentList) remove(p *sentPacket) {
	p.gone = true
	l.live--
}

// trim drops gone packets from the front.
func (l *sentList) trim() {
	for l.head < len(l.pkts) && l.pkts[l.head].gone {
		l.head++
	}
	if l.head == len(l.pkts) {
		l.pkts = l.pkts[:0]
		l.head = 0
	}
}

// index returns the index of the first packet with number >= pn.
func (l *sentList) index(pn uint64) int {
	lo, hi := l.head, len(l.pkts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.pkts[m].pn < pn {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// oldest returns the lowest packet still in flight.
func (l *sentList) oldest() *sentPacket {
	for i := l.head; i < len(l.pkts); i++ {
		if !l.pkts[i].gone && !l.pkts[i].lost {
			return &l.pkts[i]
		}
	}
	return nil
}

// skipper decides which packet numbers to skip. An ACK for a skipped number proves the peer is
// acknowledging packets it never saw — an optimistic-ACK attack (RFC 9000 §21.4). The choice must
// be unpredictable to the peer, who sees every number we use: the numbers come from a SHA-256
// hash chain keyed from Config.Rand (a linear generator such as xorshift could be solved from a
// few observed gaps). It replaced a ChaCha8 generator, 320 bytes of heap per connection for one
// number every 64 to 1088 packets (issue 8).
type skipper struct {
	key     [32]byte
	next    uint64                // the next packet number to skip
	skipped [rememberSkips]uint64 // recent skipped numbers (0 = none; PN 0 is never skipped)
	i       int
}

// rememberSkips is how many skipped numbers are checked against ACKs. Skips come every 64 to 1088
// packets, so this covers the last several thousand packets, more than any window in flight: an
// optimistic ACK must cover what is in flight to be of use, and with it a recent skip.
const rememberSkips = 16

func (s *skipper) init(src io.Reader) {
	var seed [32]byte
	if _, err := io.ReadFull(src, seed[:]); err != nil {
		// crypto/rand.Read never fails (Go 1.24+); a caller's reader might. The skips are then
		// predictable, which costs only optimistic-ACK detection; the session still works.
		seed = [32]byte{}
	}
	s.key = seed
	s.next = 32 + s.draw()%256
}

// draw returns a random number, SHA-256(key ‖ 1), and moves the key on to SHA-256(key ‖ 0): a
// hash chain, so the numbers drawn tell nothing of the key that draws the next ones.
func (s *skipper) draw() uint64 {
	var in [33]byte
	copy(in[:], s.key[:])
	in[32] = 1
	out := sha256.Sum256(in[:])
	in[32] = 0
	s.key = sha256.Sum256(in[:])
	return binary.LittleEndian.Uint64(out[:8])
}

// number returns the packet number to use for the next packet: next, or next+1 when next is due to
// be skipped. Nothing changes until commit, so an unsent packet skips nothing.
func (s *skipper) number(next uint64) uint64 {
	if next == s.next {
		return next + 1
	}
	return next
}

// commit records that pn was sent as the packet after next.
func (s *skipper) commit(next, pn uint64) {
	if pn == next {
		return
	}
	s.skipped[s.i%len(s.skipped)] = next
	s.i++
	s.next = pn + 64 + s.draw()%1024
}

func (s *skipper) isSkipped(smallest, largest uint64) bool {
	for _, pn := range s.skipped {
		if pn != 0 && pn >= smallest && pn <= largest {
			return true
		}
	}
	return false
}

// onAck processes an ACK frame (RFC 9002 §A.7). It returns false if the frame is a protocol
// violation (it acknowledges a packet never sent), in which case the caller closes the connection.
func (c *Conn) onAck(now time.Time, a *header.AckFrame) bool {
	if a.NumRanges == 0 {
		return true
	}
	if !c.rec.ackPlausible(a) {
		return false
	}
	largest := a.Ranges[0].Largest
	if c.rec.largestAcked == header.NoPacket || largest > c.rec.largestAcked {
		c.rec.largestAcked = largest
	}
	c.rec.beginAckEvent(now)
	// RFC 9002 §5.1: an RTT sample when the largest acknowledged packet is newly acknowledged
	// (every tracked packet is ack-eliciting).
	if i := c.rec.sent.index(largest); i < len(c.rec.sent.pkts) && c.rec.sent.pkts[i].pn == largest && !c.rec.sent.pkts[i].gone && !c.rec.sent.pkts[i].lost {
		c.rec.rttSample(now.Sub(c.rec.sent.pkts[i].time), ackDelay(a.Delay), c.handshakeConfirmed)
	}
	newly := false
	for r := 0; r < a.NumRanges; r++ {
		rg := a.Ranges[r]
		for i := c.rec.sent.index(rg.Smallest); i < len(c.rec.sent.pkts) && c.rec.sent.pkts[i].pn <= rg.Largest; i++ {
			p := &c.rec.sent.pkts[i]
			if p.gone {
				continue
			}
			if p.lost {
				if p.pmtuProbe {
					c.pmtuLateAck(p) // a probe that fitted after all
					c.rec.sent.remove(p)
					continue
				}
				// Declared lost too early (reordering): its data did arrive. Count it, so that
				// nothing waits for a copy the peer may never acknowledge (it may be closing).
				c.stats.SpuriousLosses++
				c.rec.onSpuriousLoss(now, p)
				c.tx.ackChunks(p.chunks[:p.nChunks])
				c.rec.sent.remove(p)
				continue
			}
			newly = true
			c.onPacketAcked(now, p)
			c.rec.sent.remove(p)
		}
	}
	if !newly {
		c.rec.endAckEvent()
		return true
	}
	c.rec.sent.trim()
	c.detectLost(now)
	c.rec.endAckEvent()
	// RFC 9002 §6.2.1: the PTO backoff resets when an acknowledgement arrives.
	c.rec.ptoCount = 0
	return true
}

// rttSample feeds an RTT sample and the ACK delay the peer reported for it (saturated by
// ackDelay) to the estimator.
//
// RFC 9002 §5.3 takes the first sample unadjusted, because min_rtt starts there. We subtract the
// reported delay when it is smaller than the sample, a deliberate deviation: when a handshake
// packet was lost, the first ACK often comes with the peer's PTO probe, a second or more after
// the packet it acknowledges, and our peers report exactly that wait in the ACK delay. Kept, it
// inflates srtt, the PTO and the pacing interval for dozens of round trips; at 30% loss the
// handshake then times out (session/simnet's loss30 scenario, seed 1, does with the RFC's rule,
// and also when such a first ACK gives no sample at all). What the deviation costs: a peer that
// lies can make our first sample as small as it likes — it only makes us retransmit to it
// sooner. What it must not do, and did before the delay saturated, is wrap: a 62-bit delay
// multiplied into time.Duration came out negative and made the sample an hour.
func (r *recovery) rttSample(sample, delay time.Duration, handshakeConfirmed bool) {
	if !r.rtt.HasSample() && delay < sample {
		sample -= delay
		delay = 0
	}
	r.rtt.Update(sample, delay, peerMaxAckDelay, handshakeConfirmed)
}

// ackPlausible reports whether a acknowledges only packet numbers we used: none above the
// largest sent, none we skipped (RFC 9000 §13.1, §21.4).
func (r *recovery) ackPlausible(a *header.AckFrame) bool {
	if a.Ranges[0].Largest >= r.nextPN {
		return false
	}
	for i := 0; i < a.NumRanges; i++ {
		if r.skip.isSkipped(a.Ranges[i].Smallest, a.Ranges[i].Largest) {
			return false
		}
	}
	return true
}

// maxAckDelayField bounds the ACK Delay a peer reports. The field is a 62-bit count of
// microseconds, which overflows time.Duration (RFC 9000 §19.3 leaves the range to the
// receiver); no genuine delay comes near an hour.
const maxAckDelayField = time.Hour

// ackDelay converts an ACK frame's delay field, saturating rather than wrapping.
func ackDelay(us uint64) time.Duration {
	if us >= uint64(maxAckDelayField/time.Microsecond) {
		return maxAckDelayField
	}
	return time.Duration(us) * time.Microsecond
}

// onUntaggedAck applies an ACK from an untagged datagram that a client takes after its
// handshake (handleUntagged). A server acknowledges our tagged packets only once it has the key,
// and then in tagged datagrams, so an ACK that covers a tagged packet is forged or confused and
// is ignored whole. Otherwise it retires the untagged packets it covers — their data arrived —
// and nothing else: no RTT sample, no largest acknowledged, no loss detection, no congestion
// window growth, since a forgery could fake those against packets that are tagged.
func (c *Conn) onUntaggedAck(a *header.AckFrame) {
	if a.NumRanges == 0 || !c.rec.ackPlausible(a) {
		c.stats.Drops.Unauthenticated++ // not a drop of the datagram, but of its claim
		return
	}
	for pass := 0; pass < 2; pass++ { // first check, then act: the ACK counts whole or not at all
		for r := 0; r < a.NumRanges; r++ {
			rg := a.Ranges[r]
			for i := c.rec.sent.index(rg.Smallest); i < len(c.rec.sent.pkts) && c.rec.sent.pkts[i].pn <= rg.Largest; i++ {
				p := &c.rec.sent.pkts[i]
				switch {
				case p.gone:
				case p.tagged:
					c.stats.Drops.Unauthenticated++
					return
				case pass == 1:
					if !p.lost {
						c.rec.leaveFlight(p)
					}
					c.tx.ackChunks(p.chunks[:p.nChunks])
					c.rec.sent.remove(p)
				}
			}
		}
	}
	c.rec.sent.trim()
}

// beginAckEvent starts the congestion controller's event for one ACK frame or loss-timer firing:
// onPacketAcked and detectLost fill it in, endAckEvent hands it over. Its Acked slice is reused,
// so steady state does not allocate.
func (r *recovery) beginAckEvent(now time.Time) {
	r.ackEv = congestion.AckEvent{Now: now, Acked: r.ackEv.Acked[:0], PriorInFlight: r.bytesInFlight}
}

// endAckEvent completes the event with the frame's delivery-rate sample and gives it to the
// controller, if anything was acknowledged or lost.
func (r *recovery) endAckEvent() {
	ev := &r.ackEv
	ev.Sample = r.sampler.Sample(r.rtt.MinRTT())
	if len(ev.Acked) == 0 && ev.LostBytes == 0 {
		return
	}
	ev.BytesInFlight = r.bytesInFlight
	ev.RTT = &r.rtt
	r.cc.OnAck(ev)
}

func (c *Conn) onPacketAcked(now time.Time, p *sentPacket) {
	c.rec.onPacketAcked(now, p)
	c.pmtuAcked(now, p)
	c.tx.ackChunks(p.chunks[:p.nChunks])
	if p.ackLargest != header.NoPacket {
		// The peer has our ACK up to ackLargest: stop repeating what it reported (RFC 9000
		// §13.2.4).
		c.rx.received.DropAcked(p.ackLargest, p.ackGen)
		c.rx.onAckAcked(p.ackLargest)
	}
}

// detectLost declares packets lost by the packet and time thresholds (RFC 9002 §6.1, §A.10).
func (c *Conn) detectLost(now time.Time) {
	if c.rec.largestAcked == header.NoPacket {
		return
	}
	c.rec.lossTime = time.Time{}
	// §6.1: the thresholds grow after spurious losses (see onSpuriousLoss).
	lossDelay := c.rec.lossDelay()
	lostSendTime := now.Add(-lossDelay)

	var lostBytes int
	var firstLost, lastLost time.Time
	// Packets declared lost are kept for a late ACK until they are this old.
	forget := now.Add(-3 * c.rec.rtt.PTO(peerMaxAckDelay))
	for i := c.rec.sent.head; i < len(c.rec.sent.pkts) && c.rec.sent.pkts[i].pn <= c.rec.largestAcked; i++ {
		p := &c.rec.sent.pkts[i]
		if p.gone {
			continue
		}
		if p.lost {
			if p.time.Before(forget) {
				c.rec.sent.remove(p)
			}
			continue
		}
		if c.rec.isLost(p, lostSendTime) {
			if p.pmtuProbe {
				c.pmtuProbeLost(now, p) // not congestion: RFC 8899 §4.4
				continue
			}
			lostBytes += p.size
			if firstLost.IsZero() {
				firstLost = p.time
			}
			lastLost = p.time
			c.onPacketLost(p)
			p.lost = true
			c.tracePacket(TracePacketLost, now, p.pn, p.size, true)
			continue
		}
		if t := p.time.Add(lossDelay); c.rec.lossTime.IsZero() || t.Before(c.rec.lossTime) {
			c.rec.lossTime = t
		}
	}
	c.rec.sent.trim()
	if lostBytes == 0 {
		return
	}
	c.stats.CongestionEvents++
	c.rec.ackEv.LostBytes += lostBytes
	c.rec.ackEv.LostSentTime = lastLost
	// §7.6: persistent congestion when the lost packets span more than three PTOs with nothing
	// acknowledged in between. Only packets lost in this one batch are considered, and only once
	// an RTT sample exists (§7.6.2) — a conservative approximation.
	if c.rec.rtt.HasSample() && lastLost.Sub(firstLost) > 3*c.rec.rtt.PTO(peerMaxAckDelay) {
		c.rec.ackEv.PersistentCongestion = true
		c.rec.rtt.ResetMinRTT()
	}
}

// onPacketLost re-queues what a lost packet carried (RFC 9002 §6: the data, not the packet, is
// retransmitted, in new packets with new numbers).
func (c *Conn) onPacketLost(p *sentPacket) {
	c.stats.PacketsLost++
	c.rec.leaveFlight(p)
	c.lostFrames(p)
	c.requeue(p)
}

// requeue queues again everything a lost packet carried that must be delivered: its stream data
// (sendStream.requeue) and its control frames. A Retry uses it too, for the packets the server
// dropped unread.
func (c *Conn) requeue(p *sentPacket) {
	c.tx.requeue(p.chunks[:p.nChunks])
	if p.maxData {
		c.rx.maxDataSend = true
	}
	if p.handshakeDone {
		c.handshakeDoneSend = true
	}
	if p.resetToken {
		c.resetTokenSend = true
	}
}

// lossDetectionTimer is the earlier of the loss time and the PTO deadline (RFC 9002 §A.8).
func (c *Conn) lossDetectionTimer() time.Time {
	if !c.rec.lossTime.IsZero() {
		return c.rec.lossTime
	}
	if c.rec.ackElicitingFlight == 0 {
		// §6.2.2.1: a client keeps probing until its handshake is complete, or the handshake
		// could deadlock on a lost server flight while the server is amplification-limited and
		// our ACKs, which would give it credit, are lost too. Having heard from the server is
		// not enough: it validates our address only once a packet of ours with its CID arrives.
		// (The probes are padded; see seal.)
		if !c.isClient || c.handshakeComplete {
			return time.Time{}
		}
	}
	if !c.isClient && !c.addrValidated && c.ampBudget() < 64 {
		return time.Time{} // §6.2.2.1: nothing could be sent anyway
	}
	// RFC 9002 §6.2.1 adds max_ack_delay for the receiver's delayed ACK. When the last packet
	// asked for an immediate ACK, the receiver delays it at most ackHold (for the reply to carry
	// it), so neither does the probe (the ACK frequency draft's reasoning): a lost tail is
	// repaired in about an RTT, not 25 ms.
	ackDelay := peerMaxAckDelay
	if c.rec.tailImmediate && c.handshakeComplete {
		ackDelay = ackHold
	}
	return c.rec.ptoDeadline(ackDelay, c.created)
}

func (c *Conn) onLossDetectionTimeout(now time.Time) {
	if !c.rec.lossTime.IsZero() {
		c.rec.beginAckEvent(now)
		c.detectLost(now)
		c.rec.endAckEvent()
		return
	}
	// §6.2.4: send one or two probes. Retransmit data from the oldest packet in flight if there
	// is no new data, so a probe can repair a loss rather than just elicit an ACK.
	c.rec.ptoCount++
	c.stats.PTOs++
	c.onPTOExtra()
	c.rec.probes = 2
	if c.handshakePending() {
		// A client whose Finished has not been acknowledged: the server may be waiting for it,
		// and until it has it, it cannot acknowledge anything we tagged since — so no ACK
		// would ever declare the Finished lost. Probe with it (RFC 9002 §6.2.4 likewise has a
		// PTO in the handshake space resend handshake data).
		c.tx.queueRetransmit(c.tx.buf.base, c.tx.hsEnd)
	}
	if c.tx.retransmit.empty() && !c.tx.hasNewData() {
		if p := c.rec.sent.oldest(); p != nil {
			c.tx.requeue(p.chunks[:p.nChunks]) // the packet is still in flight: only its data
		}
	}
	if c.tx.retransmit.empty() && !c.tx.hasNewData() {
		c.pingSend = true
	}
	c.rec.lastAckElicitSent = now // the next PTO counts from these probes
}

func (c *Conn) ampBudget() int {
	b := 3*int64(c.ampRecv) - int64(c.ampSent)
	if b < 0 {
		return 0
	}
	return int(b)
}
