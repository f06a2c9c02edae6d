package congestion

import (
	"strconv"
	"strings"
	"time"
)

// Controller is a congestion controller: it turns the session's view of sent, acknowledged and lost
// packets into a congestion window (RFC 9002 §7) and, optionally, a pacing rate. Implementations
// are not safe for concurrent use.
//
// The controller does not count bytes in flight; the session does (it owns the sent-packet table)
// and compares them with CongestionWindow. Only ack-eliciting packets that count toward bytes in
// flight are reported (RFC 9002 §7: ACK-only packets are not congestion controlled).
type Controller interface {
	// OnPacketSent records that an in-flight packet of the given size left at now.
	OnPacketSent(now time.Time, bytes int)
	// OnAck processes one loss-recovery event: the packets one ACK frame newly acknowledged, the
	// packets declared lost while processing it (or when the loss timer fired, with no packet
	// acknowledged), and the delivery-rate sample the frame produced. See AckEvent for the order
	// in which a controller must apply them. ev and the slices it holds are only valid during
	// the call.
	OnAck(ev *AckEvent)
	// CongestionWindow returns the window in bytes.
	CongestionWindow() int
	// PacingRate returns the rate, in bytes per second, at which the controller wants packets
	// paced, or 0 to leave pacing to the session (1.25·cwnd/srtt, RFC 9002 §7.7). A model-based
	// controller such as BBR paces at its bandwidth estimate times a gain.
	PacingRate() uint64
	// InRecovery reports whether a recovery period is in progress: from a congestion event until a
	// packet sent after it is acknowledged (RFC 9002 §7.3.2).
	InRecovery() bool
	// InSlowStart reports whether the controller is in its initial exponential growth: below the
	// slow start threshold (RFC 9002 §7.3.1), or BBR's Startup.
	InSlowStart() bool
}

// AckedPacket is one newly acknowledged in-flight packet of an AckEvent.
type AckedPacket struct {
	Size     int       // bytes, as counted in bytes in flight
	SentTime time.Time // when it was sent
}

// AckEvent is everything one ACK frame (or one firing of the loss timer) tells a controller. The
// session fills it once per frame, after updating its RTT estimator with the frame's sample and
// after declaring losses (RFC 9002 §6.1 runs loss detection on every ACK), and hands it over in
// one call. A controller applies it in this order: the acknowledged packets (in packet-number
// order), then the losses, then persistent congestion.
type AckEvent struct {
	Now time.Time
	// Acked lists the in-flight packets this frame newly acknowledged; empty when the loss timer
	// declared packets lost.
	Acked []AckedPacket
	// AckedBytes is the sum of Acked's sizes.
	AckedBytes int
	// LostBytes is the size of the packets declared lost now; LostSentTime is the send time of
	// the newest of them. Losses end in a congestion event at most once per recovery period for
	// the loss-based controllers (RFC 9002 §7.3.2, Appendix B.6); a model-based one decides
	// itself what a loss means.
	LostBytes    int
	LostSentTime time.Time
	// PersistentCongestion is set when the lost packets establish persistent congestion
	// (RFC 9002 §7.6): the window collapses to the minimum.
	PersistentCongestion bool
	// PriorInFlight is the session's bytes in flight before this event, BytesInFlight after it
	// (acknowledged and lost packets removed).
	PriorInFlight, BytesInFlight int
	// RTT is the session's estimator, already updated with this frame's sample. Nil only in
	// tests that do not need it: controllers then assume InitialRTT.
	RTT *RTT
	// Sample is the delivery-rate sample of this frame (see Sampler); its Rate is zero when the
	// frame produced none.
	Sample RateSample
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

// lossBased is a window-based controller driven per packet, as RFC 9002 Appendix B describes:
// NewReno and CUBIC.
type lossBased interface {
	onPacketAcked(now time.Time, bytes int, sentTime time.Time, rtt *RTT)
	// onCongestionEvent reduces the window at most once per recovery period: a loss of a packet
	// sent at or before the start of the current period is part of the same event.
	onCongestionEvent(now time.Time, lostBytes int, sentTime time.Time)
	// onPersistentCongestion runs after onCongestionEvent for the same losses (as Appendix B.8
	// does), so that the slow start threshold has been lowered first.
	onPersistentCongestion(now time.Time)
}

// applyLossBased feeds an AckEvent to a loss-based controller in RFC 9002 Appendix B's order: each
// acknowledged packet, then one congestion event for the losses, then persistent congestion.
func applyLossBased(c lossBased, ev *AckEvent) {
	for i := range ev.Acked {
		c.onPacketAcked(ev.Now, ev.Acked[i].Size, ev.Acked[i].SentTime, ev.RTT)
	}
	if ev.LostBytes > 0 {
		c.onCongestionEvent(ev.Now, ev.LostBytes, ev.LostSentTime)
	}
	if ev.PersistentCongestion {
		c.onPersistentCongestion(ev.Now)
	}
}

// The controllers' names, as Names lists them and ByName accepts them.
const (
	NameBBR     = "bbr"
	NameCubic   = "cubic"
	NameNewReno = "newreno"
)

var constructors = []struct {
	name string
	new  func(maxDatagramSize int) Controller
}{
	{NameBBR, NewBBR},
	{NameCubic, NewCubic},
	{NameNewReno, NewNewReno},
}

// Names returns the names of the controllers this package provides, default first.
func Names() []string {
	names := make([]string, len(constructors))
	for i, c := range constructors {
		names[i] = c.name
	}
	return names
}

// UnknownError is ByName's error for a name no controller has.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return "congestion: unknown controller " + strconv.Quote(e.Name) + " (have " + strings.Join(Names(), ", ") + ")"
}

// ByName returns the constructor of the controller called name (see Names).
func ByName(name string) (func(maxDatagramSize int) Controller, error) {
	for _, c := range constructors {
		if c.name == name {
			return c.new, nil
		}
	}
	return nil, &UnknownError{Name: name}
}
