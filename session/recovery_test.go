package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

func testRecovery(t *testing.T) (*recovery, int) {
	t.Helper()
	cf := (&Config{}).withDefaults()
	r := newRecovery(&cf)
	return &r, cf.MaxDatagramSize
}

// sendN records n ack-eliciting packets of size bytes sent at now.
func sendN(r *recovery, now time.Time, n, size int, pacing bool) {
	for range n {
		sp := sentPacket{pn: r.nextNumber(), time: now, ackLargest: header.NoPacket}
		r.commitNumber(sp.pn)
		r.onSent(now, &sp, size, false, r.probes > 0, pacing)
	}
}

func TestRecoverySendModeGate(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	canSend, probe := r.sendMode(t0, size, false)
	require.True(t, canSend)
	require.False(t, probe)

	cwnd := r.cc.CongestionWindow()
	sendN(r, t0, cwnd/size, size, false)
	require.Equal(t, cwnd/size*size, r.bytesInFlight)
	require.Equal(t, cwnd/size, r.ackElicitingFlight)
	canSend, _ = r.sendMode(t0, size, false)
	require.False(t, canSend, "the congestion window is full")

	r.probes = 1
	canSend, probe = r.sendMode(t0, size, true)
	require.True(t, canSend, "a PTO probe ignores the window")
	require.True(t, probe)
	sendN(r, t0, 1, size, true)
	require.Zero(t, r.probes)
	canSend, _ = r.sendMode(t0, size, false)
	require.False(t, canSend)
}

func TestRecoveryPacing(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	r.rtt.Update(10*time.Millisecond, 0, peerMaxAckDelay, true)
	// Spend the pacer's burst allowance, then take the packets out of flight: the window has
	// room, and only the pacer holds the next packet back.
	for range r.cc.CongestionWindow() / size {
		if canSend, _ := r.sendMode(t0, size, true); !canSend {
			break
		}
		sendN(r, t0, 1, size, true)
	}
	r.forgetInFlight()
	canSend, _ := r.sendMode(t0, size, true)
	require.False(t, canSend, "the burst allowance is spent")
	next := r.pacingWait(size)
	require.True(t, next.After(t0), "the pacer, not the window, is the blocker: %v", next)
	canSend, _ = r.sendMode(next, size, true)
	require.True(t, canSend, "the pacer allows the next packet at pacingWait")
	canSend, _ = r.sendMode(t0, size, false)
	require.True(t, canSend, "without pacing only the window counts")
}

func TestRecoveryAckedLeavesFlight(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	sendN(r, t0, 3, size, false)
	r.beginAckEvent(t0.Add(10 * time.Millisecond))
	for i := range r.sent.pkts[:2] {
		r.onPacketAcked(t0.Add(10*time.Millisecond), &r.sent.pkts[i])
		r.sent.remove(&r.sent.pkts[i])
	}
	require.Equal(t, 2*size, r.ackEv.AckedBytes)
	require.Len(t, r.ackEv.Acked, 2)
	r.endAckEvent()
	require.Equal(t, size, r.bytesInFlight)
	require.Equal(t, 1, r.ackElicitingFlight)
	r.forgetInFlight()
	require.Zero(t, r.bytesInFlight)
	require.Zero(t, r.sent.len())
}

func TestRecoveryThresholdsGrowOnSpuriousLoss(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	r.rtt.Update(80*time.Millisecond, 0, peerMaxAckDelay, true)
	require.Equal(t, 90*time.Millisecond, r.lossDelay(), "9/8 of the RTT")
	sendN(r, t0, 5, size, false)
	p := &r.sent.pkts[0]
	r.largestAcked = p.pn + 2
	require.False(t, r.isLost(p, t0.Add(-time.Millisecond)))
	r.largestAcked = p.pn + 3
	require.True(t, r.isLost(p, t0.Add(-time.Millisecond)), "packet threshold 3")
	require.True(t, r.isLost(&r.sent.pkts[1], t0), "sent at or before the time threshold")

	r.onSpuriousLoss(t0, p)
	require.Equal(t, 5, r.reorderPackets)
	require.Equal(t, 110*time.Millisecond, r.lossDelay(), "11/8 of the RTT")
	require.False(t, r.isLost(p, t0.Add(-time.Millisecond)))
	for range 20 {
		r.onSpuriousLoss(t0, p)
	}
	require.Equal(t, maxReorderPackets, r.reorderPackets)
	require.Equal(t, maxReorderEighths, r.reorderEighths)
}

func TestRecoveryPTOBacksOff(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	r.rtt.Update(100*time.Millisecond, 0, peerMaxAckDelay, true)
	pto := r.rtt.PTO(peerMaxAckDelay)
	require.Equal(t, t0.Add(pto), r.ptoDeadline(peerMaxAckDelay, t0), "from the start before anything was sent")
	sendN(r, t0.Add(time.Second), 1, size, false)
	require.Equal(t, t0.Add(time.Second+pto), r.ptoDeadline(peerMaxAckDelay, t0))
	r.ptoCount = 2
	require.Equal(t, t0.Add(time.Second+4*pto), r.ptoDeadline(peerMaxAckDelay, t0))
	r.ptoCount = 40
	require.Equal(t, t0.Add(time.Second+time.Minute), r.ptoDeadline(peerMaxAckDelay, t0), "capped")
}

func TestRecoveryAckPlausible(t *testing.T) {
	r, size := testRecovery(t)
	t0 := time.Unix(1000, 0)
	skipped := uint64(0)
	for skipped == 0 {
		pn := r.nextNumber()
		if pn != r.nextPN {
			skipped = r.nextPN
		}
		sendN(r, t0, 1, size, false)
	}
	ack := func(smallest, largest uint64) *header.AckFrame {
		a := &header.AckFrame{NumRanges: 1}
		a.Ranges[0] = header.AckRange{Smallest: smallest, Largest: largest}
		return a
	}
	require.True(t, r.ackPlausible(ack(0, skipped-1)))
	require.True(t, r.ackPlausible(ack(skipped+1, r.nextPN-1)))
	require.False(t, r.ackPlausible(ack(0, r.nextPN-1)), "covers the skipped number")
	require.False(t, r.ackPlausible(ack(skipped+1, r.nextPN)), "above the largest sent")
}
