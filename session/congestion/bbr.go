package congestion

import "time"

// BBR's parameters. Gains are percentages so the model is integer arithmetic and replays alike on
// every platform.
const (
	// Startup paces at 2/ln2 ≈ 2.77 times the bandwidth estimate, which doubles the delivery rate
	// every round, with a window of twice the BDP (draft-ietf-ccwg-bbr §5.1.1: BBRStartupPacingGain,
	// BBRDefaultCwndGain).
	bbrStartupPacingGain = 277
	bbrCwndGain          = 200
	// Drain empties the queue Startup built in about one round (§5.1.2: BBRDrainPacingGain 0.35).
	bbrDrainPacingGain = 35
	// ProbeBW's phases (§5.3.3): Down at 0.9 drains what Up queued, Cruise and Refill at 1.0, Up
	// at 1.25 looks for more bandwidth with a window of 2.25 BDP.
	bbrDownGain   = 90
	bbrCruiseGain = 100
	bbrUpGain     = 125
	bbrUpCwndGain = 225
	// bbrCruiseCwndGain bounds what is in flight between probes to 1.5 BDP: enough for ACK
	// aggregation, not the standing queue of a second BDP that cwnd_gain 2 allows when the
	// bandwidth estimate runs ahead of the flow's share.
	bbrCruiseCwndGain = 150
	bbrProbeRTTGain   = 50 // ProbeRTT's window: half the BDP (§5.3.4.3, BBRProbeRTTCwndGain)

	// Startup ends when three rounds in a row (not app-limited) grew the bandwidth estimate by
	// less than 25% (§5.3.1.2): the pipe is full.
	bbrFullBwGrowth = 125
	bbrFullBwRounds = 3

	// bbrPacingMargin paces 1% below the estimate, so the queue Up built drains in cruise (§5.6.2,
	// BBRPacingMarginPercent).
	bbrPacingMargin = 1

	// bbrHeadroom leaves 15% of inflight_hi free outside Up (§5.6.4.1), so that a flow which has
	// found the path's limit leaves room for others to grow into.
	bbrHeadroom = 15

	// The minimum RTT expires after 10 s (§5.3.4.1, MinRTTFilterLen); ProbeRTT runs when it has
	// not fallen for 5 s (ProbeRTTInterval), for 200 ms and a round (ProbeRTTDuration).
	bbrMinRTTWindow    = 10 * time.Second
	bbrProbeRTTAfter   = 5 * time.Second
	bbrProbeRTTTime    = 200 * time.Millisecond
	bbrMinCwndPackets  = 4  // §5.6.4.1, BBRMinPipeCwnd
	bbrMaxProbeRounds  = 63 // §5.3.3.6: Reno coexistence caps the rounds between probes
	bbrProbeWaitBase   = 2 * time.Second
	bbrProbeWaitRandom = time.Second // the wait is 2–3 s (§5.3.3.5), randomised
	bbrBeta            = 70          // multiplicative decrease of the bounds on congestion (§5.5.10, 0.7)
)

// The loss rule that tells random loss from congestion. BBRv3 treats a round with more than 2% of
// its data lost as too much (§5.5.10.2, BBRLossThresh); on a path that drops 5% at random that
// would shrink the window every round and end where loss-based controllers end (the Mathis
// bound). A drop-tail queue that overflows, though, fills first: the losses come with the RTT
// risen above its minimum by the queue's delay — also when another flow filled the queue. A
// policer drops without a queue, but drops everything above its rate, so probing past it loses
// far more than random loss does. Hence a judged sample is congested when
//
//   - at least bbrLossHeavy of its data was lost, whatever else (a policer, a collapse), or
//   - at least bbrLossThresh was lost and the RTT rose by a quarter of min_rtt plus a
//     millisecond.
//
// Random loss of up to 10% each way with a stable RTT is therefore not a reason to slow down
// (TestBBRKeepsItsRateUnderRandomLoss). A falling delivery rate is not a signal of its own: a
// flow limited by its own lower bounds, or by a slow receiver, delivers less than it paces at,
// and reading that as congestion cuts the bounds again, in a spiral (seen on the bench's relay).
const (
	bbrLossThresh = 2  // percent
	bbrLossHeavy  = 20 // percent
	// bbrLossMinPackets: a round with fewer losses than this is never congested (BBRv3 likewise
	// counts loss events, §5.3.1.3 BBRStartupFullLossCnt).
	bbrLossMinPackets = 3
	// bbrLossMinSample: the loss rule judges at least this many packets at a time, over as many
	// rounds as that takes. With 10% random loss, 20% or more of a 5-packet round is lost one
	// time in ten; of 64 packets, about one time in five hundred.
	bbrLossMinSample = 64
)

type bbrMode uint8

const (
	bbrStartup bbrMode = iota
	bbrDrain
	bbrProbeBWDown
	bbrProbeBWCruise
	bbrProbeBWRefill
	bbrProbeBWUp
	bbrProbeRTT
)

var bbrModeNames = [...]string{"Startup", "Drain", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP", "ProbeRTT"}

func (m bbrMode) String() string { return bbrModeNames[m] }

// bbrRound is what the rounds since the loss rule last judged saw: one round trip (the
// acknowledgement of the data sent during the previous one), or several when they were small
// (bbrLossMinSample).
type bbrRound struct {
	lost, delivered int
	rttSum          time.Duration
	rttN            int
	maxRate         uint64
	appLimited      bool      // some sample in the round was app-limited
	peakInFlight    int       // the largest TxInFlight of an acknowledged packet
	rounds          int       // round trips counted in
	start           time.Time // when the first of them started
}

// bbr is a model-based controller after BBR (draft-ietf-ccwg-bbr, BBRv3): it estimates the path's
// bottleneck bandwidth (a windowed maximum of delivery-rate samples) and its round-trip
// propagation time (a windowed minimum of RTT samples), paces at the bandwidth times a gain that
// cycles to probe for more and to drain what probing queued, and bounds what is in flight by a
// multiple of their product and by what the path carried without congestion.
type bbr struct {
	mds     int
	minCwnd int
	mode    bbrMode
	cwnd    int
	pacing  uint64 // bytes per second; 0 until the first bandwidth sample

	// The model.
	maxBw      maxFilter
	minRTT     minFilter
	bwLo       uint64 // lower bound after congestion (BBR.bw_lo); 0 = none
	inflightHi int    // the upper bound on what is in flight (BBR.inflight_hi); 0 = none
	inflightLo int    // lower bound after congestion (BBR.inflight_lo); 0 = none

	// Rounds (§5.5.1): a round ends when a packet sent after its start is acknowledged.
	roundCount         uint64
	nextRoundDelivered uint64
	round              bbrRound

	// Startup.
	filledPipe      bool
	startupEndRound uint64 // roundCount when Startup ended
	fullBw          uint64
	fullBwCount     int

	// ProbeBW.
	cycleStart      time.Time
	cycleRound      uint64 // roundCount when the cycle started
	phaseRound      uint64 // roundCount when the phase started
	probeWait       time.Duration
	probeWaitRounds uint64
	rng             uint64

	// ProbeRTT.
	probeRTTDone     time.Time     // when ProbeRTT may end, zero until its window is reached
	probeRTTRoundEnd uint64        // ProbeRTT also lasts at least until this round
	probeRTTMin      time.Duration // the smallest RTT sample seen in this ProbeRTT
	roundMinRTT      time.Duration // the smallest RTT sample of the current round, 0 = none yet
	lastRoundMinRTT  time.Duration // and of the round before it
	recentMinRTT     minSlots      // the smallest of the last 8 to 16 rounds' minima

	// Standing queues in ProbeBW (see queueStanding).
	cruiseStart     time.Time     // when Cruise started
	cruiseDelivered uint64        // the delivered count then
	bwQueue         uint64        // the bandwidth bound a standing queue or a policer set in this cycle; 0 = none
	drainRound      uint64        // roundCount when Cruise went Down for a standing queue; 0 = not draining one
	drainRTT        time.Duration // the last round's minimum RTT then
	drainEnd        uint64        // roundCount when the last such drain ended
	drainGain       int           // Down's pacing gain for that drain
	notOursUntil    uint64        // a drain did not shrink the queue: another flow keeps it; ignore it until this round
	lastLossy       bool          // the last judged sample lost at least bbrLossThresh (see checkPolicer)
	lossBound       bool          // a lossy sample set bwQueue from its delivery rate, not yet judged
	lossBoundAt     time.Time     // when
	lossRandomUntil uint64        // the loss was found random: ignore it until this round
	priorCwnd       int
	lastProbeRTT    time.Time
	earlyProbeRTT   time.Time // when probeRTTSoon last brought ProbeRTT forward
	probeRTTForced  bool      // and ProbeRTT runs even if rttStillMin
	riseBw          uint64    // the bandwidth estimate then (see probeRTTSoon)
	rttStepRound    uint64    // roundCount at the last step in the RTT (noteRTTStep); 0 = none
	started         bool
}

var _ Controller = (*bbr)(nil)

// NewBBR returns a BBR controller (draft-ietf-ccwg-bbr's BBRv3, with this package's loss rule that
// ignores random loss; see bbrLossThresh) for datagrams of at most maxDatagramSize bytes (a
// non-positive value means 1200). It needs the session's delivery-rate samples (AckEvent.Sample)
// and paces itself (PacingRate).
func NewBBR(maxDatagramSize int) Controller {
	mds := datagramSize(maxDatagramSize)
	return &bbr{
		mds:     mds,
		minCwnd: bbrMinCwndPackets * mds,
		cwnd:    InitialWindow(mds),
		rng:     0x9e3779b97f4a7c15,
		minRTT:  minFilter{window: bbrMinRTTWindow},
	}
}

// OnPacketSent needs no state: the delivery-rate sampler records what BBR needs per packet.
func (b *bbr) OnPacketSent(time.Time, int) {}

func (b *bbr) CongestionWindow() int { return b.cwnd }
func (b *bbr) PacingRate() uint64    { return b.pacing }
func (b *bbr) InRecovery() bool      { return false }
func (b *bbr) InSlowStart() bool     { return b.mode == bbrStartup }

// bw is the bandwidth the model believes in: the windowed maximum, bounded by bw_lo after
// congestion.
func (b *bbr) bw() uint64 {
	bw := b.maxBw.get()
	if b.bwLo != 0 && !b.probing() {
		bw = min(bw, b.bwLo)
	}
	if b.bwQueue != 0 {
		// Also while probing: Up's quarter more is of the rate measured at the bottleneck,
		// not of a maximum of samples that ran above it, and the queue it builds no deeper.
		bw = min(bw, b.bwQueue)
	}
	return bw
}

// probing reports whether the flow is probing above its lower bounds (Refill and Up).
func (b *bbr) probing() bool { return b.mode == bbrProbeBWRefill || b.mode == bbrProbeBWUp }

// bdp returns gain percent of the estimated bandwidth-delay product, or 0 while either is unknown.
func (b *bbr) bdp(gain int) int {
	bw, rtt := b.bw(), b.minRTT.get()
	if bw == 0 || rtt == 0 {
		return 0
	}
	return int(min(uint64(bytesIn(bw, rtt))*uint64(gain)/100, maxWindow))
}

// OnAck updates the model with one ACK frame's sample and losses, then the state machine, then
// the window and pacing rate (draft-ietf-ccwg-bbr §5.2.3, BBRUpdateOnACK).
func (b *bbr) OnAck(ev *AckEvent) {
	if len(ev.Acked) == 0 && ev.LostBytes == 0 && !ev.PersistentCongestion {
		return
	}
	now := ev.Now
	if !b.started {
		b.started = true
		b.lastProbeRTT = now
		b.cycleStart = now
	}
	rs := &ev.Sample
	roundStart := false
	if ev.AckedBytes > 0 {
		// §5.5.1: a new round once a packet sent after the last round ended is acknowledged.
		if rs.PriorDelivered >= b.nextRoundDelivered {
			b.nextRoundDelivered = rs.TotalDelivered
			b.roundCount++
			roundStart = true
			b.noteRTTStep(b.roundMinRTT)
			b.lastRoundMinRTT, b.roundMinRTT = b.roundMinRTT, 0
			b.recentMinRTT.add(b.lastRoundMinRTT, b.roundCount%bbrRecentRounds == 0)
		}
		if rs.RTT > 0 {
			if b.roundMinRTT == 0 || rs.RTT < b.roundMinRTT {
				b.roundMinRTT = rs.RTT
			}
			// ProbeRTT is due 5 s after min_rtt last changed (BBRUpdateMinRTT takes a sample below
			// probe_rtt_min_delay, not one equal to it). A sample that merely matches the
			// minimum keeps the filter's window fresh but must not postpone ProbeRTT: on a
			// jitter-free path every drained queue matches it exactly, right up to a route
			// change that raises the RTT, and ProbeRTT — the only way the new RTT is learnt
			// before the filter expires — would then come a full 5 s after the change, with
			// the window sized for the old, smaller BDP meanwhile.
			prev := b.minRTT.get()
			if b.minRTT.update(now, rs.RTT) && b.minRTT.get() != prev {
				b.lastProbeRTT = now
			}
			if b.mode == bbrProbeRTT && (b.probeRTTMin == 0 || rs.RTT < b.probeRTTMin) {
				b.probeRTTMin = rs.RTT
			}
		}
	}
	var ended bbrRound
	congested := false
	if roundStart && b.round.lost+b.round.delivered >= bbrLossMinSample*b.mds {
		ended = b.round
		b.round = bbrRound{start: now}
		congested = b.congested(&ended)
		if !congested {
			b.relaxLowerBounds(ended.rounds)
			b.checkPolicer(&ended, now)
		}
	}
	if roundStart {
		b.round.rounds++
	}
	b.round.lost += ev.LostBytes
	b.round.delivered += ev.AckedBytes
	if ev.AckedBytes > 0 {
		b.round.rttSum += rs.RTT
		b.round.rttN++
		b.round.peakInFlight = max(b.round.peakInFlight, rs.TxInFlight)
		b.round.appLimited = b.round.appLimited || rs.AppLimited
	}
	if rs.Rate > 0 {
		b.round.maxRate = max(b.round.maxRate, rs.Rate)
		// §5.5.5: app-limited samples count only when they raise the estimate.
		if !rs.AppLimited || rs.Rate >= b.maxBw.get() {
			b.maxBw.update(rs.Rate)
		}
	}
	if congested {
		b.onCongestion(&ended)
	}
	if roundStart {
		b.checkFullPipe(rs)
	}
	if ev.PersistentCongestion {
		// RFC 9002 §7.6.2: everything in flight was lost; start again from the minimum window,
		// keeping the model (§5.6.4.4 keeps it across an RTO too).
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
		b.cwnd = b.minCwnd
	}
	b.updateMode(ev, roundStart)
	b.updateProbeUp(ev)
	b.setPacingRate(ev)
	b.setCwnd(ev)
}

// congested reports whether a round that ended was congested (see bbrLossThresh).
func (b *bbr) congested(r *bbrRound) bool {
	total := r.lost + r.delivered
	if r.lost < bbrLossMinPackets*b.mds || total == 0 {
		// A round of a handful of packets says nothing: one random loss in five is 20%.
		return false
	}
	lossPct := r.lost * 100 / total
	if lossPct >= bbrLossHeavy {
		return true
	}
	if lossPct < bbrLossThresh {
		return false
	}
	min := b.minRTT.get()
	return min > 0 && r.rttN > 0 && r.rttSum/time.Duration(r.rttN) > min+min/4+time.Millisecond
}

// lossy reports whether a sample lost at least bbrLossThresh of its data.
func (b *bbr) lossy(r *bbrRound) bool {
	total := r.lost + r.delivered
	return total > 0 && r.lost >= bbrLossMinPackets*b.mds && r.lost*100/total >= bbrLossThresh
}

// bbrLossRandomRounds is how long loss found random is not tested again (see checkPolicer).
const bbrLossRandomRounds = 32

// checkPolicer looks for a policer in a judged sample that was not congested (draft-ietf-ccwg-bbr
// §5.5.10 and BBRv1's long-term bandwidth have the same aim). A policer drops what exceeds its
// rate and builds no queue, so neither a standing queue nor the loss rule sees it until a fifth
// of a sample is lost; cruising a few percent above the policed rate (an estimate raised by the
// token bucket's bursts, a window that allows a little more) loses that excess all along.
// Random loss looks the same in one sample. So the test is an experiment: a lossy sample while
// cruising bounds the estimate by what the sample delivered (bwQueue, the flow's rate as the
// path gives it). If the next sample sent under that bound is clean, the excess was dropped by a
// limit: the bound stays, growing a datagram per round while the samples stay clean
// (growBwQueue). If it is lossy again, the loss is random: the bound goes, and the next
// bbrLossRandomRounds ignore loss.
func (b *bbr) checkPolicer(r *bbrRound, now time.Time) {
	if b.mode != bbrProbeBWCruise && b.mode != bbrProbeBWDown {
		b.lossBound = false
		return
	}
	b.lastLossy = b.lossy(r)
	switch {
	case b.lossBound && r.start.Before(b.lossBoundAt.Add(b.minRTT.get())):
		// The sample began before the bound took effect: what it lost was sent above it.
	case !b.lastLossy:
		b.lossBound = false
	case b.lossBound:
		b.bwQueue, b.lossBound, b.lossRandomUntil = 0, false, b.roundCount+bbrLossRandomRounds
	case b.roundCount >= b.lossRandomUntil && !r.start.IsZero() && now.After(r.start):
		rate := bytesPerSecond(uint64(r.delivered), now.Sub(r.start))
		if b.bwQueue == 0 || rate < b.bwQueue {
			b.bwQueue = max(rate, 1)
		}
		b.lossBound, b.lossBoundAt = true, now
	}
}

// onCongestion lowers the bounds once for a congested round (§5.5.10.3): inflight_hi to what was
// in flight when probing went too far, bw_lo and inflight_lo by β per congested round. Startup
// ends: the pipe is full.
func (b *bbr) onCongestion(r *bbrRound) {
	peak := r.peakInFlight
	if peak == 0 {
		peak = b.cwnd // the round acknowledged nothing: losses only
	}
	switch b.mode {
	case bbrStartup, bbrProbeBWUp:
		b.inflightHi = max(peak*bbrBeta/100, b.bdp(100), b.minCwnd)
	}
	if b.mode == bbrStartup || b.mode == bbrDrain || b.roundCount <= b.startupEndRound+1 {
		// Startup overshot by design; Drain empties what it queued, and inflight_hi keeps the
		// next probe from overshooting as far. Lower bounds for these losses — detected up to
		// a round after Startup ends — would only slow the flow down below a rate the path
		// has just shown it carries.
		b.filledPipe = true
		return
	}
	switch b.mode {
	case bbrProbeBWUp:
		b.enterProbeBW(bbrProbeBWDown, time.Time{})
	}
	// §5.5.10.3: the lower bounds fall by β per congested sample. Unlike BBRv3 they fall from
	// the lower of the bound and what the flow actually delivered, a multiplicative decrease
	// like CUBIC's: a queue shared with a loss-based flow then overflows for both, and both
	// yield. (With BBRv3's max(delivered, β·bound) a flow holding most of the link keeps it.)
	// Random loss never gets here. Neither bound falls below half of what it was in one
	// sample: a burst that loses most of a round (a probe from an estimate a route change
	// inflated with reordered ACKs) delivers next to nothing, and a bound of 0.7 times that
	// left the flow at 1% of the link for seconds, regrowing a datagram per round.
	bw := b.bw()
	if r.maxRate > 0 {
		bw = min(bw, r.maxRate)
	}
	b.bwLo = max(bw*bbrBeta/100, b.bw()/2, 1)
	inflight := b.cwnd
	if r.delivered > 0 {
		inflight = min(inflight, r.delivered/max(r.rounds, 1))
	}
	b.inflightLo = max(inflight*bbrBeta/100, b.cwnd/2, b.minCwnd)
}

// relaxLowerBounds lets the lower bounds grow back by one datagram per round trip of samples
// without congestion, and forgets them once they no longer bind. With the multiplicative
// decrease of onCongestion this is AIMD, which converges flows sharing a bottleneck to equal
// shares (Chiu and Jain 1989); a growth proportional to the bound would keep their ratio.
func (b *bbr) relaxLowerBounds(rounds int) {
	rounds = max(rounds, 1)
	if b.bwLo != 0 {
		if rtt := b.minRTT.get(); rtt > 0 {
			b.bwLo += bytesPerSecond(uint64(rounds*b.mds), rtt)
		}
		if b.bwLo >= b.maxBw.get() {
			b.bwLo = 0
		}
	}
	if b.inflightLo != 0 {
		b.inflightLo += rounds * b.mds
		if b.inflightLo >= b.bdp(bbrCwndGain) {
			b.inflightLo = 0
		}
	}
}

// checkFullPipe ends Startup when the bandwidth stopped growing (§5.3.1.2).
func (b *bbr) checkFullPipe(rs *RateSample) {
	if b.filledPipe || rs.AppLimited {
		return
	}
	bw := b.maxBw.get()
	if bw*100 >= b.fullBw*bbrFullBwGrowth {
		b.fullBw = bw
		b.fullBwCount = 0
		return
	}
	b.fullBwCount++
	if b.fullBwCount >= bbrFullBwRounds {
		b.filledPipe = true
	}
}

// updateMode runs the state machine (§5.3).
func (b *bbr) updateMode(ev *AckEvent, roundStart bool) {
	now := ev.Now
	switch b.mode {
	case bbrStartup:
		if b.filledPipe {
			b.mode = bbrDrain
			b.startupEndRound = b.roundCount
		}
	case bbrDrain:
		if ev.BytesInFlight <= b.bdp(100) {
			b.enterProbeBW(bbrProbeBWDown, now)
		}
	case bbrProbeBWDown:
		switch {
		case b.drainRound != 0:
			// A standing queue's drain lasts one round (see drainStandingQueue).
			if roundStart && b.roundCount > b.drainRound {
				b.drainRound, b.drainEnd = 0, b.roundCount
				b.enterCruise()
			}
		case b.timeToProbe(now):
			b.enterRefill()
		case ev.BytesInFlight <= b.cruiseTarget():
			b.enterCruise()
		case roundStart && b.roundCount > b.phaseRound:
			// The estimate may be too high for the window to fall to its BDP: a round
			// that found the queue gone ends Down as well, and until then Down drains
			// what the last round measured. A queue that bbrDrainWindow rounds of that
			// did not empty is not this flow's to drain (see probeRTTSoon): draining it
			// on would hold the flow at half its rate until ProbeRTT.
			switch {
			case !b.queueStanding():
				b.enterCruise()
			case b.roundCount > b.phaseRound+bbrDrainWindow:
				b.probeRTTSoon(now)
				b.enterCruise()
			default:
				b.setDrainGain()
			}
		}
	case bbrProbeBWCruise:
		// A probe starts from an empty queue: one standing now is drained first, or Up would
		// pile its quarter of a BDP on top of it.
		standing := b.roundCount >= b.notOursUntil && b.queueStanding()
		switch {
		case b.timeToProbe(now) && !standing:
			b.enterRefill()
		case !roundStart:
		case b.roundCount == b.phaseRound+1:
			// What Cruise delivers is measured from its second round: the first still
			// carries what Down's lower rate left the pipe short of.
			b.cruiseStart, b.cruiseDelivered = now, ev.Sample.TotalDelivered
		case standing:
			b.drainStandingQueue(ev)
		default:
			b.growBwQueue()
		}
	case bbrProbeBWRefill:
		// §5.3.3.4: one round at the estimated rate, so Up's extra is not lost in a queue that
		// Refill's fresh bounds have not filled yet.
		if roundStart && b.roundCount > b.phaseRound {
			b.mode = bbrProbeBWUp
			b.phaseRound = b.roundCount
		}
	case bbrProbeBWUp:
		// §5.3.3.6: leave once at least a round was spent at 1.25 and what is in flight reached
		// 1.25 BDP — or after three rounds, so a path that cannot fill is not probed forever.
		if b.roundCount > b.phaseRound && (ev.PriorInFlight >= b.bdp(bbrUpGain) || b.roundCount >= b.phaseRound+3) {
			// Up went this far without congestion (which would have ended it): the path has
			// room, so whatever set the lower bounds has gone. Their additive regrowth alone
			// takes a round per datagram — seconds at a large BDP after one congested sample.
			b.bwLo, b.inflightLo = 0, 0
			b.enterProbeBW(bbrProbeBWDown, now)
		}
	case bbrProbeRTT:
		b.updateProbeRTT(ev)
		return
	}
	if b.mode != bbrStartup && now.Sub(b.lastProbeRTT) > bbrProbeRTTAfter {
		// The recent rounds' minimum still holds rounds from before a route change; a drain
		// that emptied nothing (probeRTTSoon) is the better witness.
		if b.rttStillMin() && !b.probeRTTForced {
			b.lastProbeRTT = now
			return
		}
		b.probeRTTForced = false
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
		b.mode = bbrProbeRTT
		b.probeRTTDone = time.Time{}
		b.probeRTTMin = 0
	}
}

// queueStanding reports whether the last round found a queue standing at the bottleneck: even
// its smallest RTT sample exceeded min_rtt by more than 1/bbrSimilarRTT. Cruising at 0.99 of the
// estimate should leave none; one stands when the estimate runs above the bottleneck's rate
// (the maximum of noisy delivery-rate samples — a real host's timers and ACK batching make
// them scatter by several percent), and cruise would then keep a queue of everything the
// window allows (up to half a BDP) for the whole cycle: the ping of every flow sharing the
// bottleneck pays for it. Down drains it in a round or two.
//
// The margin is at least bbrQueueFloor, as the loss rule's RTT test has a millisecond: on a
// path of a few hundred microseconds or less (loopback, a LAN) the hosts' scheduling and ACK
// batching alone put every sample well above min_rtt/8 over min_rtt, with no queue at any
// bottleneck, and draining for it cost bulk goodput on loopback (335-351 MB/s before these
// drains, 279-295 after, interleaved runs of the bench). A millisecond of queue is within the
// ping-under-load goal (base + 3.5 ms) on any path.
func (b *bbr) queueStanding() bool {
	min := b.minRTT.get()
	return b.lastRoundMinRTT > 0 && min > 0 && b.lastRoundMinRTT > min+max(min/bbrSimilarRTT, bbrQueueFloor)
}

// bbrQueueFloor is the least RTT excess queueStanding reads as a standing queue.
const bbrQueueFloor = time.Millisecond

// A queue that stands again within bbrDrainWindow rounds of a drain, not halved, is another
// flow's; it is ignored for bbrNotOursRounds (see drainStandingQueue).
const (
	bbrDrainWindow   = 3
	bbrNotOursRounds = 8
)

// enterCruise starts Cruise.
func (b *bbr) enterCruise() {
	b.mode = bbrProbeBWCruise
	b.drainGain = 0
	b.phaseRound = b.roundCount
}

// drainStandingQueue answers a standing queue found while cruising: the bandwidth estimate is
// above what the bottleneck gives this flow. What Cruise delivered while the queue built, over
// its rounds (a single round's rate scatters as much as the samples do), is the flow's real
// rate: it bounds the estimate until the next cycle probes again (bwQueue), and Down drains the
// queue for one round at min_rtt/RTT — what empties the queue the last round measured — in the
// same cycle, keeping its probing schedule.
//
// A queue this flow built is gone after that, and with bwQueue the flow's rate it stays so for
// a while. One that stands again at once, not even halved, is another flow's (a loss-based one
// fills the queue whatever this flow does): yielding to it round after round would starve this
// flow, so it is ignored for bbrNotOursRounds, and the loss rule answers it when it overflows.
func (b *bbr) drainStandingQueue(ev *AckEvent) {
	if min := b.minRTT.get(); b.drainEnd != 0 && b.roundCount <= b.drainEnd+bbrDrainWindow &&
		b.lastRoundMinRTT-min > (b.drainRTT-min)*3/4 {
		b.notOursUntil = b.roundCount + bbrNotOursRounds
		b.probeRTTSoon(ev.Now)
		return
	}
	if d := ev.Now.Sub(b.cruiseStart); d > 0 && ev.Sample.TotalDelivered > b.cruiseDelivered {
		rate := bytesPerSecond(ev.Sample.TotalDelivered-b.cruiseDelivered, d)
		if b.bwQueue == 0 || rate < b.bwQueue {
			b.bwQueue = max(rate, 1)
		}
	}
	b.mode = bbrProbeBWDown
	b.phaseRound = b.roundCount
	b.drainRound = b.roundCount
	b.drainRTT = b.lastRoundMinRTT
	b.setDrainGain()
}

// probeRTTSoon brings ProbeRTT forward when a drain did not shrink the queue. That queue is
// another flow's, or none at all: a route change that raised the RTT looks like a standing queue
// that no drain empties, and the window, sized for the old min_rtt, then holds the flow to a
// fraction of the link until ProbeRTT measures the new RTT — up to bbrProbeRTTAfter later
// (TestBBRRouteChangeRTTRise). ProbeRTT tells the two apart (§5.3.4.4): an empty queue
// measures the path's RTT. It is brought forward at most once per bbrProbeRTTAfter, so that a
// loss-based flow's queue costs no more than one extra ProbeRTT per period.
//
// Only an RTT that rose in a step (noteRTTStep), by a quarter of min_rtt, counts: the jitter of a real path leaves smaller
// queues that drains do not seem to shrink. The bandwidth estimate of the time is kept for
// ProbeRTT's end (riseBw): the rounds since the rise were limited by a window sized for the old
// RTT and measured only a fraction of the path's rate.
func (b *bbr) probeRTTSoon(now time.Time) {
	if min := b.minRTT.get(); b.lastRoundMinRTT <= min+min/4 || b.rttStepRound == 0 ||
		b.roundCount > b.rttStepRound+bbrRTTStepRounds ||
		!b.earlyProbeRTT.IsZero() && now.Sub(b.earlyProbeRTT) < bbrProbeRTTAfter {
		return
	}
	b.riseBw = b.maxBw.get()
	b.earlyProbeRTT = now
	b.lastProbeRTT = now.Add(-bbrProbeRTTAfter - 1)
	b.probeRTTForced = true
}

// bbrRTTStepRounds: probeRTTSoon answers an RTT step only this many rounds after it.
const bbrRTTStepRounds = 16

// noteRTTStep notes a step in the RTT: a round whose smallest sample, m, is half min_rtt above
// that of the round before (a probe's quarter BDP in Up adds at most a quarter). A route change moves the
// RTT so, at once; a loss-based flow's queue builds up over many rounds (a datagram per round
// in congestion avoidance), and a queue this flow's probe built is drained by Down. Only a step
// brings ProbeRTT forward (probeRTTSoon): that flow's queue must not, or every ProbeRTT would
// hand it half this flow's window (TestFairnessTwoFlows, CUBIC against BBR).
func (b *bbr) noteRTTStep(m time.Duration) {
	min := b.minRTT.get()
	if prev := b.lastRoundMinRTT; prev > 0 && m > prev+min/2 {
		b.rttStepRound = b.roundCount
	}
}

// setDrainGain sets Down's pacing gain from the queue the last round measured: Down's 0.9 of an
// estimate a few percent too high drains little per round, while pacing at min_rtt/RTT of the
// estimate empties that queue in about a round. Never above 0.9, nor below ProbeRTT's 0.5.
func (b *bbr) setDrainGain() {
	b.drainGain = 0
	if rtt := b.minRTT.get(); rtt > 0 && b.lastRoundMinRTT > rtt {
		g := int(int64(bbrCruiseGain) * int64(rtt) / int64(b.lastRoundMinRTT))
		b.drainGain = min(max(g, bbrProbeRTTGain), bbrDownGain)
	}
}

// growBwQueue raises bwQueue by a datagram per round trip while no queue stands, as
// relaxLowerBounds does bw_lo: the measured rate may have been low (a round the pipe was not
// full), and only a queue tells when it reached the bottleneck's.
func (b *bbr) growBwQueue() {
	if b.bwQueue == 0 || b.lastLossy {
		return
	}
	if rtt := b.minRTT.get(); rtt > 0 {
		b.bwQueue += bytesPerSecond(uint64(b.mds), rtt)
	}
	if b.bwQueue >= b.maxBw.get() {
		b.bwQueue = 0
	}
}

// bbrSimilarRTT: a round whose smallest RTT sample is within an eighth of min_rtt found the queue
// (nearly) empty, as ProbeRTT would (Chromium's BBR sender skips ProbeRTT alike,
// kSimilarMinRttThreshold 1.125).
const bbrSimilarRTT = 8

// bbrRecentRounds is the period of recentMinRTT's slots.
const bbrRecentRounds = 8

// rttStillMin reports whether the recent rounds measured what ProbeRTT would: an RTT within
// 1/bbrSimilarRTT of min_rtt, that is a queue drained (Cruise drains its standing queues every
// few rounds). ProbeRTT then would only halve the window for 200 ms and a round — 2% of the
// link every 5 s — to learn nothing new. A route change that raised the RTT, or a queue kept
// standing (by another flow, or by several flows' probes), fails the test, and ProbeRTT runs as
// before.
func (b *bbr) rttStillMin() bool {
	min, recent := b.minRTT.get(), b.recentMinRTT.get()
	return recent > 0 && min > 0 && recent <= min+min/bbrSimilarRTT
}

// minSlots is a minimum over the current and the previous period (as maxFilter is a maximum).
type minSlots struct{ slot [2]time.Duration }

// add adds v (ignored if 0), starting a new period first if next.
func (m *minSlots) add(v time.Duration, next bool) {
	if next {
		m.slot[0], m.slot[1] = m.slot[1], 0
	}
	if v > 0 && (m.slot[1] == 0 || v < m.slot[1]) {
		m.slot[1] = v
	}
}

// get returns the minimum over both periods, 0 if none.
func (m *minSlots) get() time.Duration {
	switch {
	case m.slot[0] == 0:
		return m.slot[1]
	case m.slot[1] == 0:
		return m.slot[0]
	}
	return min(m.slot[0], m.slot[1])
}

// updateProbeRTT holds the window at half the BDP until it is reached, then for bbrProbeRTTTime and
// a round, so that the queue drains and min_rtt is measured again (§5.3.4.4).
func (b *bbr) updateProbeRTT(ev *AckEvent) {
	now := ev.Now
	if b.probeRTTDone.IsZero() {
		if ev.BytesInFlight <= b.probeRTTCwnd() {
			b.probeRTTDone = now.Add(bbrProbeRTTTime)
			b.probeRTTRoundEnd = b.roundCount + 1
		}
		return
	}
	if now.Before(b.probeRTTDone) || b.roundCount < b.probeRTTRoundEnd {
		return
	}
	b.lastProbeRTT = now
	riseBw := uint64(0)
	if b.probeRTTMin > 0 {
		// §5.3.4.4: what ProbeRTT measured with the queue drained is the path's RTT now, even
		// if it grew since the old minimum (a route change): believe it at once rather than when
		// the old minimum expires.
		if old := b.minRTT.get(); b.probeRTTMin > old+old/4 {
			riseBw = b.riseBw
		}
		b.minRTT.value, b.minRTT.stamp = b.probeRTTMin, now
		b.probeRTTMin = 0
	}
	b.riseBw = 0
	b.cwnd = max(b.cwnd, b.priorCwnd)
	b.priorCwnd = 0
	if b.filledPipe {
		b.enterProbeBW(bbrProbeBWDown, now)
		// The RTT rose: what was measured since came through a window too small for it.
		b.maxBw.update(riseBw)
	} else {
		b.mode = bbrStartup
	}
}

func (b *bbr) probeRTTCwnd() int { return max(b.bdp(bbrProbeRTTGain), b.minCwnd) }

// cruiseTarget is what may stay in flight while cruising: the BDP, within inflight_hi's headroom.
func (b *bbr) cruiseTarget() int {
	t := b.bdp(100)
	if b.inflightHi != 0 {
		t = min(t, b.inflightHi*(100-bbrHeadroom)/100)
	}
	return t
}

// enterProbeBW starts a ProbeBW phase; Down starts a new cycle with a fresh random wait before the
// next probe (§5.3.3.5), and advances the bandwidth filter's period.
func (b *bbr) enterProbeBW(m bbrMode, now time.Time) {
	b.mode = m
	b.phaseRound = b.roundCount
	if m != bbrProbeBWDown {
		return
	}
	b.drainRound, b.drainEnd, b.notOursUntil, b.bwQueue, b.drainGain = 0, 0, 0, 0, 0
	b.lossBound = false
	b.maxBw.advance()
	if !now.IsZero() {
		b.cycleStart = now
	}
	b.cycleRound = b.roundCount
	b.rng ^= b.rng << 13
	b.rng ^= b.rng >> 7
	b.rng ^= b.rng << 17
	b.probeWait = bbrProbeWaitBase + time.Duration(b.rng%uint64(bbrProbeWaitRandom))
	// §5.3.3.6: a Reno flow sharing the path would take about a BDP in packets of rounds to
	// regrow; probe no later than that, and never later than bbrMaxProbeRounds.
	b.probeWaitRounds = uint64(min(max(b.bdp(100)/b.mds, 1), bbrMaxProbeRounds))
}

// timeToProbe reports whether the cruise has lasted long enough (§5.3.3.5, §5.3.3.6).
func (b *bbr) timeToProbe(now time.Time) bool {
	return now.Sub(b.cycleStart) >= b.probeWait || b.roundCount-b.cycleRound >= b.probeWaitRounds
}

// enterRefill starts probing from the long-term model (§5.3.3.3). Unlike BBRv3 the lower bounds
// are not forgotten here but only set aside while probing, and forgotten when Up ends without
// congestion: a probe that overflows a shared queue keeps them (see relaxLowerBounds).
func (b *bbr) enterRefill() {
	b.enterProbeBW(bbrProbeBWRefill, time.Time{})
}

// updateProbeUp raises inflight_hi while Up is limited by it (§5.3.3.6, BBRProbeInflightHiUpward):
// by what was acknowledged, doubling the growth each round as slow start would.
func (b *bbr) updateProbeUp(ev *AckEvent) {
	if b.mode != bbrProbeBWUp || b.inflightHi == 0 {
		return
	}
	if ev.PriorInFlight+b.mds >= b.inflightHi {
		b.inflightHi = min(b.inflightHi+ev.AckedBytes, maxWindow)
	}
}

func (b *bbr) pacingGain() int {
	switch b.mode {
	case bbrStartup:
		return bbrStartupPacingGain
	case bbrDrain:
		return bbrDrainPacingGain
	case bbrProbeBWDown:
		if b.drainGain != 0 {
			return b.drainGain
		}
		return bbrDownGain
	case bbrProbeBWUp:
		return bbrUpGain
	}
	return bbrCruiseGain
}

// setPacingRate paces at the bandwidth times the phase's gain, 1% under (§5.6.2). Until the pipe
// is full the rate only grows: an early sample from a short flight must not slow Startup.
func (b *bbr) setPacingRate(ev *AckEvent) {
	bw := b.bw()
	if bw == 0 {
		return
	}
	margin := uint64(bbrPacingMargin)
	if bw == b.bwQueue {
		margin = 0 // a rate measured at the bottleneck, not a maximum of samples
	}
	rate := min(bw, (1<<64-1)/400) * uint64(b.pacingGain()) / 100 * (100 - margin) / 100
	if b.filledPipe || rate > b.pacing {
		b.pacing = rate
	}
}

// setCwnd sets the window (§5.6.4): the phase's multiple of the BDP, reached by growing with what
// is acknowledged, bounded by inflight_hi (with headroom outside Up) and inflight_lo, and by half
// the BDP in ProbeRTT.
func (b *bbr) setCwnd(ev *AckEvent) {
	gain := bbrCwndGain
	switch b.mode {
	case bbrProbeBWUp:
		gain = bbrUpCwndGain
	case bbrProbeBWCruise, bbrProbeBWDown:
		gain = bbrCruiseCwndGain
	}
	target := b.bdp(gain)
	if target == 0 {
		// No model yet: grow like slow start.
		b.cwnd = min(b.cwnd+ev.AckedBytes, maxWindow)
	} else {
		// Leave room for the pacer's burst, so an ACK train does not stall a window near the
		// BDP (§5.6.4.2 adds send quanta).
		target += 2 * PacingBurstDatagrams * b.mds
		if !b.filledPipe {
			if b.cwnd < target {
				b.cwnd = min(b.cwnd+ev.AckedBytes, maxWindow)
			}
		} else {
			b.cwnd = min(b.cwnd+ev.AckedBytes, target)
		}
	}
	if b.inflightHi != 0 {
		hi := b.inflightHi
		if b.mode == bbrProbeBWCruise || b.mode == bbrProbeBWDown {
			// The headroom never cuts into the BDP itself: it is room left for others above
			// what this flow needs to fill the pipe.
			hi = max(hi*(100-bbrHeadroom)/100, b.bdp(100))
		}
		b.cwnd = min(b.cwnd, max(hi, b.minCwnd))
	}
	if b.inflightLo != 0 && !b.probing() {
		b.cwnd = min(b.cwnd, b.inflightLo)
	}
	if b.mode == bbrProbeRTT {
		b.cwnd = min(b.cwnd, b.probeRTTCwnd())
	}
	b.cwnd = max(b.cwnd, b.minCwnd)
}
