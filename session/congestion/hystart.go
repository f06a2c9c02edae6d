package congestion

import (
	"math"
	"time"
)

// HyStart++ constants (RFC 9406 §4.3).
const (
	hystartMinRTTThresh  = 4 * time.Millisecond
	hystartMaxRTTThresh  = 16 * time.Millisecond
	hystartMinRTTDivisor = 8
	hystartNRTTSample    = 8
	// hystartCSSGrowthDivisor slows growth in Conservative Slow Start to a quarter.
	hystartCSSGrowthDivisor = 4
	hystartCSSRounds        = 5
)

const infiniteDuration = time.Duration(math.MaxInt64)

// hystart is HyStart++ (RFC 9406): it watches the minimum RTT of each round during the initial slow
// start and, when it rises by more than a threshold (the bottleneck queue is building), leaves
// standard slow start for Conservative Slow Start (CSS), which grows at a quarter of the rate for up
// to CSS_ROUNDS rounds before handing over to congestion avoidance — unless the RTT falls back, in
// which case the rise was noise and slow start resumes.
//
// RFC 9406 delimits rounds by sequence numbers (windowEnd = SND.NXT). Our acknowledgements carry
// send times, so a round ends when a packet sent after the round began is acknowledged: windowEnd is
// the send time of the newest packet when the round starts. Since acknowledgements are reported per
// packet, each acknowledged packet counts as one RTT sample (the session's latest_rtt).
//
// The limit L on growth per acknowledgement (§4.3) is infinite: the session paces.
type hystart struct {
	windowEnd    time.Time
	roundStarted bool

	lastRoundMinRTT    time.Duration
	currentRoundMinRTT time.Duration
	rttSampleCount     int

	css               bool
	cssBaselineMinRTT time.Duration
	cssRounds         int
}

func (h *hystart) init() {
	h.lastRoundMinRTT = infiniteDuration
	h.currentRoundMinRTT = infiniteDuration
	h.cssBaselineMinRTT = infiniteDuration
}

// startRoundIfDue begins a new round when the acknowledged packet was sent after the current round
// began (RFC 9406 §4.2). lastSent is the send time of the newest packet sent. It reports whether CSS
// has now lasted CSS_ROUNDS rounds, so slow start must end.
func (h *hystart) startRoundIfDue(sentTime, lastSent time.Time) (leaveSlowStart bool) {
	if h.roundStarted && !sentTime.After(h.windowEnd) {
		return false
	}
	h.roundStarted = true
	h.windowEnd = lastSent
	h.lastRoundMinRTT = h.currentRoundMinRTT
	h.currentRoundMinRTT = infiniteDuration
	h.rttSampleCount = 0
	if h.css {
		h.cssRounds++
		return h.cssRounds >= hystartCSSRounds
	}
	return false
}

// onRTTSample records one RTT sample of the current round and switches between standard slow start
// and CSS (RFC 9406 §4.2).
func (h *hystart) onRTTSample(rtt time.Duration) {
	h.currentRoundMinRTT = min(h.currentRoundMinRTT, rtt)
	h.rttSampleCount++
	if h.rttSampleCount < hystartNRTTSample {
		return
	}
	if !h.css {
		if h.currentRoundMinRTT == infiniteDuration || h.lastRoundMinRTT == infiniteDuration {
			return
		}
		thresh := max(hystartMinRTTThresh, min(h.lastRoundMinRTT/hystartMinRTTDivisor, hystartMaxRTTThresh))
		if h.currentRoundMinRTT >= h.lastRoundMinRTT+thresh {
			h.css = true
			h.cssBaselineMinRTT = h.currentRoundMinRTT
			h.cssRounds = 0
		}
		return
	}
	if h.currentRoundMinRTT < h.cssBaselineMinRTT {
		// The RTT rise was spurious: resume standard slow start.
		h.css = false
		h.cssBaselineMinRTT = infiniteDuration
	}
}
