package congestion

import "time"

// lossReductionFactor is kLossReductionFactor (RFC 9002 §7.3.2), as numerator/denominator.
const (
	renoReductionNum = 1
	renoReductionDen = 2
)

// newReno is the controller of RFC 9002 §7, written after its Appendix B pseudocode.
type newReno struct {
	mds       int
	minWindow int
	cwnd      int
	ssthresh  int
	// avoidanceAcked counts bytes acknowledged in congestion avoidance since the window last grew.
	// Appendix B.5 adds MDS·acked/cwnd per acknowledgement; in integers that rounds to zero once
	// cwnd > MDS² / acked, so the same growth — one MDS per window of acknowledged bytes — is
	// counted exactly instead (byte counting as in RFC 3465).
	avoidanceAcked int
	rec            recovery
	appLimited     bool
}

var (
	_ Controller       = (*newReno)(nil)
	_ AppLimitedSetter = (*newReno)(nil)
)

// NewNewReno returns a NewReno controller (RFC 9002 §7, Appendix B) for datagrams of at most
// maxDatagramSize bytes (a non-positive value means 1200): initial window min(10·MDS,
// max(14720, 2·MDS)), minimum window 2·MDS, window halved once per recovery period. It also
// implements AppLimitedSetter.
func NewNewReno(maxDatagramSize int) Controller {
	mds := datagramSize(maxDatagramSize)
	return &newReno{
		mds:       mds,
		minWindow: MinimumWindow(mds),
		cwnd:      InitialWindow(mds),
		ssthresh:  infiniteSSThresh,
	}
}

// OnPacketSent needs no state: the session counts bytes in flight, and recovery periods are
// delimited by send times.
func (c *newReno) OnPacketSent(time.Time, int) {}

// onPacketAcked grows the window (RFC 9002 §7.3.1, Appendix B.5): by the acknowledged bytes in slow
// start, by one MDS per window of acknowledged bytes in congestion avoidance; not at all for packets
// sent before the current recovery period started, nor while app-limited (§7.8).
func (c *newReno) onPacketAcked(_ time.Time, bytes int, sentTime time.Time, _ *RTT) {
	if bytes <= 0 {
		return
	}
	if c.rec.onAck(sentTime) || c.appLimited {
		return
	}
	if c.cwnd < c.ssthresh {
		c.cwnd = min(c.cwnd+bytes, maxWindow)
		return
	}
	c.avoidanceAcked += bytes
	if c.avoidanceAcked >= c.cwnd {
		c.avoidanceAcked -= c.cwnd
		c.cwnd = min(c.cwnd+c.mds, maxWindow)
	}
}

// onCongestionEvent halves the window once per recovery period (RFC 9002 §7.3.2, Appendix B.6).
func (c *newReno) onCongestionEvent(now time.Time, _ int, sentTime time.Time) {
	if c.rec.covers(sentTime) {
		return
	}
	c.rec.begin(now)
	c.ssthresh = c.cwnd * renoReductionNum / renoReductionDen
	c.cwnd = max(c.ssthresh, c.minWindow)
	c.avoidanceAcked = 0
}

// onPersistentCongestion collapses the window to the minimum and ends the recovery period
// (RFC 9002 §7.6.2, Appendix B.8). The slow start threshold keeps the value the congestion event
// gave it, so the sender slow-starts back to half the old window.
func (c *newReno) onPersistentCongestion(time.Time) {
	c.cwnd = c.minWindow
	c.avoidanceAcked = 0
	c.rec.reset()
}

func (c *newReno) CongestionWindow() int { return c.cwnd }
func (c *newReno) InRecovery() bool      { return c.rec.active }
func (c *newReno) InSlowStart() bool     { return c.cwnd < c.ssthresh }

// SetAppLimited implements AppLimitedSetter.
func (c *newReno) SetAppLimited(limited bool) { c.appLimited = limited }

// OnAck implements Controller.
func (c *newReno) OnAck(ev *AckEvent) { applyLossBased(c, ev) }

// PacingRate leaves pacing to the session (RFC 9002 §7.7).
func (c *newReno) PacingRate() uint64 { return 0 }
