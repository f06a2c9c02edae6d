package congestion

import (
	"math"
	"time"
)

// CUBIC constants (RFC 9438 §4.1, §4.3, §4.6).
const (
	cubicC    = 0.4 // window growth scale, segments per second³
	cubicBeta = 0.7 // multiplicative decrease factor β_cubic
	// cubicAlpha is the Reno-friendly additive increase α_cubic = 3(1−β)/(1+β) (§4.3), which makes
	// AIMD(α, β) as aggressive on average as Reno's AIMD(1, 0.5).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
	// cubicBetaNum/Den is β as a fraction, for the integer window reduction.
	cubicBetaNum = 7
	cubicBetaDen = 10
)

// cubic is the CUBIC controller of RFC 9438 with HyStart++ (RFC 9406) in the initial slow start.
//
// Windows are kept in bytes; the cubic function is defined in segments, so W_cubic is evaluated in
// segments of MDS bytes and scaled. Per-acknowledgement growth in congestion avoidance is fractional,
// so the fraction of a byte not yet added to the window is carried in cwndFrac.
type cubic struct {
	mds       int
	minWindow int
	cwnd      int
	ssthresh  int
	rec       recovery

	appLimited bool
	lastSent   time.Time
	hasSent    bool

	// The congestion avoidance epoch (RFC 9438 §4.2). It starts at the first acknowledgement in
	// congestion avoidance after a congestion event, slow start or app-limited period.
	inEpoch    bool
	epochStart time.Time
	k          float64 // seconds until W_cubic reaches wMax again
	wMax       float64 // bytes: the window before the last reduction
	haveWMax   bool
	cwndPrior  float64 // bytes: the window when ssthresh was last set (§4.3)
	wEst       float64 // bytes: the Reno-equivalent window (§4.3)
	cwndFrac   float64 // bytes of growth not yet added to cwnd, in [0, 1)

	hs         hystart
	hsDone     bool // HyStart++ only runs in the initial slow start (RFC 9406 §4.3)
	cssCarried int  // acknowledged bytes not yet turned into CSS growth (a quarter of them)
}

var (
	_ Controller       = (*cubic)(nil)
	_ AppLimitedSetter = (*cubic)(nil)
)

// NewCubic returns a CUBIC controller (RFC 9438: C = 0.4, β = 0.7, Reno-friendly region, fast
// convergence) whose initial slow start ends on a delay increase by HyStart++ (RFC 9406), for
// datagrams of at most maxDatagramSize bytes (a non-positive value means 1200). Initial and minimum
// windows are as in RFC 9002 §7.2. InSlowStart includes HyStart++'s Conservative Slow Start. It
// also implements AppLimitedSetter.
func NewCubic(maxDatagramSize int) Controller {
	mds := datagramSize(maxDatagramSize)
	c := &cubic{
		mds:       mds,
		minWindow: MinimumWindow(mds),
		cwnd:      InitialWindow(mds),
		ssthresh:  infiniteSSThresh,
	}
	c.hs.init()
	return c
}

// OnPacketSent remembers the newest send time: HyStart++ rounds are delimited by it.
func (c *cubic) OnPacketSent(now time.Time, _ int) {
	if !c.hasSent || now.After(c.lastSent) {
		c.lastSent = now
		c.hasSent = true
	}
}

// onPacketAcked grows the window: slow start (with HyStart++ while the threshold is still
// infinite), then the cubic function with the Reno-friendly floor (RFC 9438 §4.2–4.5).
func (c *cubic) onPacketAcked(now time.Time, bytes int, sentTime time.Time, rtt *RTT) {
	if bytes <= 0 {
		return
	}
	if c.rec.onAck(sentTime) {
		// RFC 9002 Appendix B.5: no growth for packets sent before the recovery period began.
		return
	}
	if c.cwnd < c.ssthresh {
		c.slowStart(now, bytes, sentTime, rtt)
		return
	}
	c.congestionAvoidanceIfAllowed(now, bytes, rtt)
}

func (c *cubic) slowStart(now time.Time, bytes int, sentTime time.Time, rtt *RTT) {
	useHyStart := !c.hsDone && c.ssthresh == infiniteSSThresh
	if useHyStart {
		lastSent := now // nothing reported as sent: anything sent from now on ends the round
		if c.hasSent {
			lastSent = c.lastSent
		}
		if sentTime.After(lastSent) {
			lastSent = sentTime
		}
		if c.hs.startRoundIfDue(sentTime, lastSent) {
			// RFC 9406 §4.2: CSS_ROUNDS rounds of CSS are over; congestion avoidance from here.
			c.leaveSlowStart()
			c.congestionAvoidanceIfAllowed(now, bytes, rtt)
			return
		}
	}
	if !c.appLimited {
		if useHyStart && c.hs.css {
			// RFC 9406 §4.2: CSS grows by a quarter of the acknowledged bytes.
			c.cssCarried += bytes
			c.cwnd = min(c.cwnd+c.cssCarried/hystartCSSGrowthDivisor, maxWindow)
			c.cssCarried %= hystartCSSGrowthDivisor
		} else {
			c.cwnd = min(c.cwnd+bytes, maxWindow)
		}
	}
	if useHyStart && rtt != nil && rtt.HasSample() {
		c.hs.onRTTSample(rtt.LatestRTT())
	}
}

// leaveSlowStart ends HyStart++ and sets ssthresh to the current window (RFC 9406 §4.2). The
// acknowledgement at hand starts an epoch with W_max = cwnd and K = 0 (RFC 9438 §4.10).
func (c *cubic) leaveSlowStart() {
	c.hsDone = true
	c.ssthresh = c.cwnd
	c.inEpoch = false
}

func (c *cubic) congestionAvoidanceIfAllowed(now time.Time, bytes int, rtt *RTT) {
	if c.appLimited {
		// RFC 9438 §5.8: no growth while app-limited, and the epoch restarts afterwards, since
		// W_cubic assumes the window was in use for all of t.
		c.inEpoch = false
		return
	}
	c.congestionAvoidance(now, bytes, rtt)
}

// wCubic returns W_cubic(t) in bytes (RFC 9438 §4.2, Figure 1): C·(t−K)³ + W_max, t in seconds.
func (c *cubic) wCubic(t float64) float64 {
	d := t - c.k
	// The explicit conversion forbids fusing the multiply and add into one FMA instruction (which
	// Go permits on arm64, ppc64, s390x), so a simulated run gives the same windows on every
	// platform.
	return float64(cubicC*d*d*d*float64(c.mds)) + c.wMax
}

func (c *cubic) startEpoch(now time.Time) {
	cwnd := float64(c.cwnd)
	c.inEpoch = true
	c.epochStart = now
	if !c.haveWMax {
		// RFC 9438 §4.8 and §4.10: after slow start without a congestion event, or after a
		// timeout, W_max is the window at the start of this congestion avoidance stage and K = 0.
		c.wMax = cwnd
		c.cwndPrior = cwnd
		c.haveWMax = true
	}
	// RFC 9438 §4.2, Figure 2: K = ∛((W_max − cwnd_epoch)/C), in segments. When the window is
	// already above W_max (it kept growing after an app-limited restart) K is negative and the
	// curve continues in its convex part.
	c.k = math.Cbrt((c.wMax - cwnd) / float64(c.mds) / cubicC)
	// RFC 9438 §4.3: W_est starts at cwnd_epoch.
	c.wEst = cwnd
	c.cwndFrac = 0
}

func (c *cubic) congestionAvoidance(now time.Time, bytes int, rtt *RTT) {
	if !c.inEpoch {
		c.startEpoch(now)
	}
	cwnd := float64(c.cwnd)
	acked := float64(bytes)

	// RFC 9438 §4.3: the Reno-friendly estimate grows by α_cubic segments per window of
	// acknowledged data, and by 1 once it has reached the window before the last reduction.
	alpha := cubicAlpha
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst += alpha * float64(c.mds) * acked / cwnd

	t := now.Sub(c.epochStart).Seconds()
	next := cwnd + c.cwndFrac
	if c.wCubic(t) < c.wEst {
		// Reno-friendly region (§4.3): cwnd = W_est. The window never shrinks on an
		// acknowledgement, though: it may have run ahead of W_est while the cubic target (evaluated
		// one RTT ahead) was larger.
		next = max(next, c.wEst)
	} else {
		// Concave and convex regions (§4.4, §4.5): move toward W_cubic one RTT ahead, clamped to
		// [cwnd, 1.5·cwnd] (§4.2), by (target − cwnd)/cwnd per acknowledged segment.
		srtt := InitialRTT
		if rtt != nil {
			srtt = rtt.SmoothedRTT()
		}
		target := min(max(c.wCubic(t+srtt.Seconds()), cwnd), 1.5*cwnd)
		next += (target - cwnd) * acked / cwnd
	}
	if next >= maxWindow {
		c.cwnd, c.cwndFrac = maxWindow, 0
		return
	}
	whole := math.Floor(next)
	c.cwnd = int(whole)
	c.cwndFrac = next - whole
}

// onCongestionEvent reduces the window to β·cwnd once per recovery period (RFC 9438 §4.6), with
// fast convergence (§4.7): if the window is below the previous W_max, the flow is losing bandwidth
// to newer flows and releases some by remembering a lower W_max.
func (c *cubic) onCongestionEvent(now time.Time, _ int, sentTime time.Time) {
	if c.rec.covers(sentTime) {
		return
	}
	c.rec.begin(now)
	cwnd := float64(c.cwnd)
	if c.haveWMax && cwnd < c.wMax {
		c.wMax = cwnd * (1 + cubicBeta) / 2
	} else {
		c.wMax = cwnd
	}
	c.haveWMax = true
	c.cwndPrior = cwnd
	// RFC 9438 §4.6 bases ssthresh on flight_size or, as here, on cwnd; an implementation using
	// cwnd must keep the window from growing while unused, which AppLimitedSetter does.
	c.ssthresh = max(c.cwnd*cubicBetaNum/cubicBetaDen, c.minWindow)
	c.cwnd = c.ssthresh
	c.cwndFrac = 0
	c.inEpoch = false
	c.hsDone = true // RFC 9406 §4.2: a loss in slow start or CSS ends HyStart++
}

// onPersistentCongestion collapses the window to the minimum (RFC 9002 §7.6.2). RFC 9438 §4.8: the
// first congestion avoidance stage after such a timeout uses K = 0 and W_max = the window at its
// start; ssthresh keeps the β·cwnd the preceding congestion event set.
func (c *cubic) onPersistentCongestion(time.Time) {
	c.cwnd = c.minWindow
	c.cwndFrac = 0
	c.inEpoch = false
	c.haveWMax = false
	c.rec.reset()
}

func (c *cubic) CongestionWindow() int { return c.cwnd }
func (c *cubic) InRecovery() bool      { return c.rec.active }
func (c *cubic) InSlowStart() bool     { return c.cwnd < c.ssthresh }

// SetAppLimited implements AppLimitedSetter.
func (c *cubic) SetAppLimited(limited bool) { c.appLimited = limited }

// OnAck implements Controller.
func (c *cubic) OnAck(ev *AckEvent) { applyLossBased(c, ev) }

// PacingRate leaves pacing to the session (RFC 9002 §7.7).
func (c *cubic) PacingRate() uint64 { return 0 }
