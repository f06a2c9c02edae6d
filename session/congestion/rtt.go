package congestion

import "time"

// InitialRTT is the RTT assumed before the first sample (RFC 9002 §6.2.2, kInitialRtt).
const InitialRTT = 333 * time.Millisecond

// TimerGranularity is the system timer granularity the loss-recovery timers assume
// (RFC 9002 §6.1.2, kGranularity): the floor of the PTO's variance term and of the time threshold.
const TimerGranularity = time.Millisecond

// maxAckDelayLimit is the largest max_ack_delay a peer may announce (RFC 9000 §18.2: values of
// 2^14 ms or more are invalid); PTO clamps to it so a hostile value cannot overflow the sum.
const maxAckDelayLimit = (1<<14 - 1) * time.Millisecond

// maxRTTSample bounds a sample so the fixed-point updates below cannot overflow time.Duration.
// No real path has an RTT of an hour; a sample that large is a clock fault.
const maxRTTSample = time.Hour

// RTT estimates a path's round-trip time as RFC 9002 §5 describes: the latest sample, the minimum
// over the connection (min_rtt), an exponentially weighted mean (smoothed_rtt) and mean deviation
// (rttvar).
//
// The zero value is ready to use: before the first sample it reports InitialRTT as the smoothed RTT
// and InitialRTT/2 as its variation (RFC 9002 §6.2.2), and zero as minimum and latest. An RTT is not
// safe for concurrent use.
type RTT struct {
	latest    time.Duration
	smoothed  time.Duration
	rttvar    time.Duration
	min       time.Duration
	hasSample bool
}

// Update adds one RTT sample (RFC 9002 §5.1: the time from sending the largest newly acknowledged
// packet to receiving its ACK) with the ack delay the peer reported in that ACK frame.
//
// As RFC 9002 §5.3 requires, min_rtt is tracked on raw samples; the ack delay is capped by
// maxAckDelay once the handshake is confirmed (before that the peer may not yet have applied its
// max_ack_delay) and is subtracted only when that leaves the sample at least min_rtt, so a peer
// cannot shrink the estimate below what was observed. The first sample ignores the ack delay
// entirely (RFC 9002 §5.3). Callers ignoring ack delay (Initial-phase packets) pass 0.
// Negative samples (a clock fault) are ignored.
func (r *RTT) Update(sample, ackDelay, maxAckDelay time.Duration, handshakeConfirmed bool) {
	if sample < 0 {
		return
	}
	sample = min(sample, maxRTTSample)
	r.latest = sample
	if !r.hasSample {
		// RFC 9002 §5.3: the first sample initialises the estimator.
		r.hasSample = true
		r.min = sample
		r.smoothed = sample
		r.rttvar = sample / 2
		return
	}
	// RFC 9002 §5.2: min_rtt ignores ack delay.
	r.min = min(r.min, sample)

	ackDelay = max(ackDelay, 0)
	if handshakeConfirmed {
		ackDelay = min(ackDelay, max(maxAckDelay, 0))
	}
	adjusted := sample
	// Written as a difference: ackDelay comes from the peer and may be huge, so min+ackDelay could
	// overflow. sample >= r.min holds here.
	if sample-r.min >= ackDelay {
		adjusted = sample - ackDelay
	}
	// RFC 9002 Appendix A.7 (and RFC 6298 §2.3): rttvar is updated with the smoothed RTT from
	// before this sample, then the smoothed RTT moves 1/8 of the way to the sample.
	r.rttvar = (3*r.rttvar + absDuration(r.smoothed-adjusted)) / 4
	r.smoothed = (7*r.smoothed + adjusted) / 8
}

// ResetMinRTT sets min_rtt to the latest sample. RFC 9002 §5.2: an endpoint SHOULD do this once
// persistent congestion is established, because the path may have changed and an old, too small
// min_rtt would let the peer's ack delay be subtracted from every later sample.
func (r *RTT) ResetMinRTT() {
	if r.hasSample {
		r.min = r.latest
	}
}

// HasSample reports whether at least one sample has been taken.
func (r *RTT) HasSample() bool { return r.hasSample }

// SmoothedRTT returns smoothed_rtt, or InitialRTT before the first sample.
func (r *RTT) SmoothedRTT() time.Duration {
	if !r.hasSample {
		return InitialRTT
	}
	return r.smoothed
}

// RTTVar returns rttvar, or InitialRTT/2 before the first sample.
func (r *RTT) RTTVar() time.Duration {
	if !r.hasSample {
		return InitialRTT / 2
	}
	return r.rttvar
}

// MinRTT returns min_rtt, or 0 before the first sample.
func (r *RTT) MinRTT() time.Duration { return r.min }

// LatestRTT returns the latest raw sample (without ack-delay adjustment), or 0 before the first.
func (r *RTT) LatestRTT() time.Duration { return r.latest }

// PTO returns the probe timeout before backoff (RFC 9002 §6.2.1):
// smoothed_rtt + max(4·rttvar, kGranularity) + max_ack_delay.
//
// Pass the peer's max_ack_delay for packets of the application-data phase and 0 for the handshake
// phase, where the peer acknowledges immediately (RFC 9002 §6.2.1). The caller doubles the result
// for each consecutive PTO.
func (r *RTT) PTO(maxAckDelay time.Duration) time.Duration {
	return r.SmoothedRTT() + max(4*r.RTTVar(), TimerGranularity) + min(max(maxAckDelay, 0), maxAckDelayLimit)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
