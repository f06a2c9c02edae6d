package congestion

import "time"

// Controller is a congestion controller: it turns the session's view of sent, acknowledged and lost
// packets into a congestion window (RFC 9002 §7). Implementations are not safe for concurrent use.
//
// The controller does not count bytes in flight; the session does (it owns the sent-packet table)
// and compares them with CongestionWindow. Only ack-eliciting packets that count toward bytes in
// flight are reported (RFC 9002 §7: ACK-only packets are not congestion controlled).
type Controller interface {
	// OnPacketSent records that an in-flight packet of the given size left at now.
	OnPacketSent(now time.Time, bytes int)
	// OnPacketAcked processes one newly acknowledged in-flight packet of the given size, sent at
	// sentTime. rtt is the session's estimator, already updated with this ACK frame's sample.
	OnPacketAcked(now time.Time, bytes int, sentTime time.Time, rtt *RTT)
	// OnCongestionEvent reacts to packet loss. sentTime is the send time of the newest packet
	// declared lost; lostBytes their total size. The window is reduced at most once per recovery
	// period: a loss of a packet sent at or before the start of the current recovery period is
	// part of the same event (RFC 9002 §7.3.2, Appendix B.6). The session may call it once per
	// batch of losses or once per lost packet.
	OnCongestionEvent(now time.Time, lostBytes int, sentTime time.Time)
	// OnPersistentCongestion collapses the window to the minimum (RFC 9002 §7.6.2). The session
	// calls it after OnCongestionEvent for the same losses (as Appendix B.8 does), so that the slow
	// start threshold has been lowered first.
	OnPersistentCongestion(now time.Time)
	// CongestionWindow returns the window in bytes.
	CongestionWindow() int
	// InRecovery reports whether a recovery period is in progress: from a congestion event until a
	// packet sent after it is acknowledged (RFC 9002 §7.3.2).
	InRecovery() bool
	// InSlowStart reports whether the window is below the slow start threshold (RFC 9002 §7.3.1).
	InSlowStart() bool
}

// AppLimitedSetter is implemented by the controllers of this package (NewNewReno, NewCubic).
//
// RFC 9002 §7.8: when bytes in flight stay below the congestion window because the application (or
// flow control) has nothing to send, acknowledgements say nothing about whether the path could carry
// a larger window, and the window SHOULD NOT grow; otherwise an idle or slow sender would build an
// unbounded window and later dump it onto the network in one burst.
//
// The session calls SetAppLimited(true) when it stops sending with bytes in flight below the window
// and nothing (or nothing allowed by flow control) left to send, and SetAppLimited(false) as soon as
// it is window-limited again (it has data but bytes in flight reached the window) — in practice,
// once per PollDatagram round, before the next acknowledgements are processed. Being limited by the
// pacer does not count as app-limited (RFC 9002 §7.8). While app-limited, acknowledgements do not
// grow the window; losses still reduce it. CUBIC also restarts its growth epoch after an
// app-limited period (RFC 9438 §5.8), so the time spent idle does not count as time probing.
type AppLimitedSetter interface {
	SetAppLimited(limited bool)
}

const (
	// defaultDatagramSize is used when a constructor is given a non-positive datagram size; it is the
	// smallest datagram size the session allows (header.MinInitialDatagramSize).
	defaultDatagramSize = 1200

	// maxWindow caps every congestion window. It keeps the arithmetic far from overflow on 32-bit
	// platforms and is far above any bandwidth-delay product we expect (1 GiB is 8 Gbit/s at 1 s).
	maxWindow = 1 << 30

	// infiniteSSThresh is the slow start threshold before the first congestion event
	// (RFC 9002 Appendix B.3: "infinite").
	infiniteSSThresh = int(^uint(0) >> 1)
)

// InitialWindow returns the initial congestion window for a maximum datagram size:
// min(10·MDS, max(14720, 2·MDS)) bytes (RFC 9002 §7.2).
func InitialWindow(maxDatagramSize int) int {
	mds := datagramSize(maxDatagramSize)
	return min(10*mds, max(14720, 2*mds))
}

// MinimumWindow returns the smallest congestion window, 2·MDS bytes (RFC 9002 §7.2).
func MinimumWindow(maxDatagramSize int) int {
	return 2 * datagramSize(maxDatagramSize)
}

func datagramSize(mds int) int {
	if mds <= 0 {
		return defaultDatagramSize
	}
	// A UDP payload never exceeds 65527 bytes; clamping keeps windows far from maxWindow.
	return min(mds, 65527)
}

// recovery tracks the current recovery period (RFC 9002 §7.3.2, Appendix B). A recovery period
// starts at a congestion event; losses of packets sent at or before that moment belong to the same
// event, and the period ends when a packet sent after it is acknowledged.
//
// Validity is an explicit flag rather than a zero time.Time: a virtual clock may well start at the
// zero time.
type recovery struct {
	start  time.Time
	valid  bool // start is meaningful
	active bool // no packet sent after start has been acknowledged yet
}

// covers reports whether a packet sent at sent belongs to the current recovery period
// (Appendix B.4, InCongestionRecovery).
func (r *recovery) covers(sent time.Time) bool {
	return r.valid && !sent.After(r.start)
}

func (r *recovery) begin(now time.Time) {
	r.start = now
	r.valid = true
	r.active = true
}

// onAck ends an active recovery period once a packet sent after its start is acknowledged and
// reports whether the acknowledgement still falls inside the period (and must not grow the window).
func (r *recovery) onAck(sent time.Time) (inRecovery bool) {
	if r.covers(sent) {
		return true
	}
	r.active = false
	return false
}

// reset forgets the recovery period: after persistent congestion any later loss is a new event
// (Appendix B.8 sets congestion_recovery_start_time to 0).
func (r *recovery) reset() {
	*r = recovery{}
}
