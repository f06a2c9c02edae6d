package congestion

import (
	"math/bits"
	"time"
)

const (
	// Pacing rate gain N = 1.25 (RFC 9002 §7.7), as a fraction: rate = 5·cwnd / (4·srtt). Pacing a
	// little faster than cwnd/srtt keeps the pacer from leaving the window unused when ACKs bunch up.
	pacingGainNum = 5
	pacingGainDen = 4

	// PacingBurstDatagrams is the burst the pacer allows at its rate: a full window at start (the
	// initial window is at most 10 datagrams, RFC 9002 §7.2) or after an idle period.
	PacingBurstDatagrams = 10

	// PacingGranularity is the smallest burst the pacer allows, as a time at its rate. The driver's
	// timer cannot fire every few microseconds; at high rates a 10-datagram burst would cap
	// throughput at one burst per timer wake-up, so the bucket holds at least this much sending time.
	PacingGranularity = time.Millisecond

	// maxPacedDatagram bounds a size handed to the pacer, so a bogus value cannot overflow.
	maxPacedDatagram = 1 << 20
)

// Pacer spreads a window's worth of datagrams over the round trip (RFC 9002 §7.7) so that a
// bottleneck queue does not see line-rate bursts. It is a token bucket filled at
// 1.25·cwnd/srtt bytes per second, holding at most the larger of PacingBurstDatagrams datagrams
// and PacingGranularity of sending time; it starts full.
//
// The bucket is stored as a time rather than a byte count: tokens = (now − t0)·rate, capped at the
// burst, so sending size bytes moves t0 forward by size/rate. Every per-packet operation is integer
// arithmetic on nanoseconds, with no allocation and no floating point.
//
// Until SetRate is given a positive window and RTT, the pacer does not delay anything. The zero
// value is such a pacer for 1200-byte datagrams. A Pacer is not safe for concurrent use.
type Pacer struct {
	mds int
	// The time to send n bytes at the pacing rate is ceil(n·nsNum/nsDen) nanoseconds, with
	// nsNum = 4·srtt (ns) and nsDen = 5·cwnd (bytes). nsDen == 0: pacing is off.
	nsNum, nsDen uint64
	// burst is how far t0 may lag behind now: the bucket's capacity expressed in sending time.
	burst time.Duration
	t0    time.Time
	hasT0 bool // false: the bucket is full (nothing has been sent yet)
}

// NewPacer returns a pacer for datagrams of at most maxDatagramSize bytes (a non-positive value means
// 1200). It does not delay anything until SetRate is called.
func NewPacer(maxDatagramSize int) *Pacer {
	return &Pacer{mds: datagramSize(maxDatagramSize)}
}

// SetRate sets the pacing rate to 1.25·cwnd/srtt (RFC 9002 §7.7). The session calls it whenever the
// window or the smoothed RTT changes (before the first RTT sample srtt is InitialRTT). A
// non-positive cwnd or srtt turns pacing off. Credit already in the bucket is kept as sending time.
func (p *Pacer) SetRate(cwnd int, srtt time.Duration) {
	if cwnd <= 0 || srtt <= 0 {
		p.nsNum, p.nsDen, p.burst = 0, 0, 0
		return
	}
	p.nsNum = pacingGainDen * uint64(srtt)
	p.nsDen = pacingGainNum * uint64(min(cwnd, maxWindow))
	p.setBurst()
}

// SetBandwidth sets the pacing rate to bytesPerSecond, for a controller that chooses its own rate
// (Controller.PacingRate). Zero turns pacing off. The burst allowance is as for SetRate.
func (p *Pacer) SetBandwidth(bytesPerSecond uint64) {
	if bytesPerSecond == 0 {
		p.nsNum, p.nsDen, p.burst = 0, 0, 0
		return
	}
	p.nsNum = uint64(time.Second)
	p.nsDen = bytesPerSecond
	p.setBurst()
}

// setBurst sizes the bucket for the current rate.
func (p *Pacer) setBurst() {
	mds := p.mds
	if mds == 0 {
		mds = defaultDatagramSize
	}
	p.burst = max(p.duration(PacingBurstDatagrams*mds), PacingGranularity)
}

// duration returns the time to send n bytes at the pacing rate, rounded up so the pacer never sends
// faster than its rate. Saturates instead of overflowing.
func (p *Pacer) duration(n int) time.Duration {
	n = min(max(n, 0), maxPacedDatagram*PacingBurstDatagrams)
	hi, lo := bits.Mul64(uint64(n), p.nsNum)
	if hi >= p.nsDen {
		return time.Duration(1<<63 - 1)
	}
	q, r := bits.Div64(hi, lo, p.nsDen)
	if r != 0 {
		q++
	}
	if q > 1<<63-1 {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(q)
}

// start returns the effective t0 at now: the bucket holds at most burst worth of sending time.
func (p *Pacer) start(now time.Time) time.Time {
	floor := now.Add(-p.burst)
	if !p.hasT0 || p.t0.Before(floor) {
		return floor
	}
	return p.t0
}

// TimeUntilSend returns the earliest time a datagram of size bytes may be sent: now if it may be sent
// now (or pacing is off), otherwise the moment the bucket will hold size bytes. The session arms its
// pacing timer for a later result instead of sending.
func (p *Pacer) TimeUntilSend(now time.Time, size int) time.Time {
	if p.nsDen == 0 {
		return now
	}
	size = min(max(size, 0), maxPacedDatagram)
	// A datagram larger than the whole bucket may go once the bucket is full; otherwise it could
	// never be sent.
	ready := p.start(now).Add(min(p.duration(size), p.burst))
	if ready.After(now) {
		return ready
	}
	return now
}

// OnSent takes size bytes from the bucket for a datagram sent at now. The session calls it for every
// paced (ack-eliciting) datagram; ACK-only datagrams are not paced.
func (p *Pacer) OnSent(now time.Time, size int) {
	if p.nsDen == 0 {
		return
	}
	size = min(max(size, 0), maxPacedDatagram)
	p.t0 = p.start(now).Add(p.duration(size))
	p.hasT0 = true
}
