package congestion

import (
	"math/bits"
	"time"
)

// PacketState is what a Sampler records about a packet when it is sent (the per-packet state of
// draft-cheng-iccrg-delivery-rate-estimation §3.2). The session keeps it in its sent-packet table
// and hands it back when the packet is acknowledged.
type PacketState struct {
	Delivered     uint64    // bytes delivered on the connection when the packet was sent (P.delivered)
	DeliveredTime time.Time // when Delivered was last updated (P.delivered_time)
	FirstSentTime time.Time // send time of the first packet of the current flight (P.first_sent_time)
	SentTime      time.Time // when the packet was sent (P.send_time)
	TxInFlight    int       // bytes in flight once it was sent, itself included (BBRv3's tx_in_flight)
	AppLimited    bool      // sent while the connection was app-limited (P.is_app_limited)
}

// RateSample is the delivery-rate sample of one ACK frame (the rs of
// draft-cheng-iccrg-delivery-rate-estimation §3.3), taken from the newest packet the frame
// acknowledged: the bytes delivered between that packet's send and its acknowledgement, over the
// longer of the send and the ACK interval.
type RateSample struct {
	// Rate is Delivered/Interval in bytes per second; 0 when the frame gives no valid sample (no
	// packet acknowledged, or an interval shorter than the minimum RTT, which would overestimate).
	Rate           uint64
	Delivered      uint64        // bytes delivered over Interval
	Interval       time.Duration // max(send_elapsed, ack_elapsed)
	PriorDelivered uint64        // the connection's delivered count when the newest acked packet was sent
	TotalDelivered uint64        // the connection's delivered count after this frame
	AppLimited     bool          // the newest acked packet was sent while app-limited
	RTT            time.Duration // now minus the newest acked packet's send time (raw, with ACK delay)
	TxInFlight     int           // the newest acked packet's TxInFlight
}

// Sampler estimates the delivery rate of a connection as
// draft-cheng-iccrg-delivery-rate-estimation describes. The session calls OnSent for every packet
// counted in bytes in flight, OnAcked for every one an ACK frame newly acknowledges, then Sample
// once per frame; OnAppLimited when it runs out of data to send with room left in the window.
//
// The zero value is ready to use. A Sampler is not safe for concurrent use, and does not allocate.
type Sampler struct {
	delivered     uint64    // C.delivered
	deliveredTime time.Time // C.delivered_time
	firstSentTime time.Time // C.first_sent_time
	// appLimitedUntil is C.app_limited: 0 when not app-limited, otherwise the delivered count
	// (at least 1) beyond which samples are no longer app-limited — once every packet sent in
	// the app-limited period has been acknowledged.
	appLimitedUntil uint64

	// The frame being processed: the newest acknowledged packet's state, if any.
	has   bool
	newer PacketState
	now   time.Time
}

// OnSent returns the state to record for a packet of size bytes sent at now, with priorInFlight
// bytes already in flight. Draft §3.2: when nothing is in flight the flight restarts, so the send
// and ACK intervals of the next sample start now (an idle period is not counted as sending time).
func (s *Sampler) OnSent(now time.Time, priorInFlight, size int) PacketState {
	if priorInFlight <= 0 {
		s.firstSentTime = now
		s.deliveredTime = now
	}
	return PacketState{
		Delivered:     s.delivered,
		DeliveredTime: s.deliveredTime,
		FirstSentTime: s.firstSentTime,
		SentTime:      now,
		TxInFlight:    max(priorInFlight, 0) + max(size, 0),
		AppLimited:    s.appLimitedUntil != 0,
	}
}

// OnAppLimited marks the connection app-limited (draft §3.4): the sender has nothing to send and
// bytesInFlight below its window, so what is delivered until the packets now in flight are
// acknowledged says how fast the application was, not the path.
func (s *Sampler) OnAppLimited(bytesInFlight int) {
	s.appLimitedUntil = max(s.delivered+uint64(max(bytesInFlight, 0)), 1)
}

// OnAcked counts a newly acknowledged packet of size bytes with recorded state p (draft §3.3,
// UpdateRateSample). The newest packet of the frame — the one sent last — defines the sample.
func (s *Sampler) OnAcked(now time.Time, p *PacketState, size int) {
	s.delivered += uint64(max(size, 0))
	s.deliveredTime = now
	s.now = now
	if !s.has || !p.SentTime.Before(s.newer.SentTime) {
		s.has = true
		s.newer = *p
		// The next sample's send interval starts at this packet's send time.
		s.firstSentTime = p.SentTime
	}
}

// Sample ends the ACK frame and returns its rate sample (draft §3.3, GenerateRateSample). minRTT is
// the path's minimum RTT, 0 if unknown: a sample over a shorter interval is discarded, as ACK
// compression would make it overestimate the rate.
func (s *Sampler) Sample(minRTT time.Duration) RateSample {
	if s.appLimitedUntil != 0 && s.delivered > s.appLimitedUntil {
		s.appLimitedUntil = 0
	}
	if !s.has {
		return RateSample{TotalDelivered: s.delivered}
	}
	p := s.newer
	s.has = false
	rs := RateSample{
		PriorDelivered: p.Delivered,
		TotalDelivered: s.delivered,
		Delivered:      s.delivered - p.Delivered,
		AppLimited:     p.AppLimited,
		RTT:            max(s.now.Sub(p.SentTime), 0),
		TxInFlight:     p.TxInFlight,
	}
	sendElapsed := p.SentTime.Sub(p.FirstSentTime)
	ackElapsed := s.deliveredTime.Sub(p.DeliveredTime)
	rs.Interval = max(sendElapsed, ackElapsed)
	if rs.Interval <= 0 || rs.Interval < minRTT {
		return rs
	}
	rs.Rate = bytesPerSecond(rs.Delivered, rs.Interval)
	return rs
}

// Delivered returns the bytes acknowledged so far (C.delivered).
func (s *Sampler) Delivered() uint64 { return s.delivered }

// bytesPerSecond returns n bytes over d as a rate, saturating instead of overflowing.
func bytesPerSecond(n uint64, d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(n, uint64(time.Second))
	if hi >= uint64(d) {
		return 1<<64 - 1
	}
	q, _ := bits.Div64(hi, lo, uint64(d))
	return q
}

// bytesIn returns the bytes a rate carries in d, saturating at maxWindow.
func bytesIn(rate uint64, d time.Duration) int {
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(rate, uint64(d))
	if hi >= uint64(time.Second) {
		return maxWindow
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return int(min(q, maxWindow))
}
