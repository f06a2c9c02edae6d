package congestion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBBRLossRule works the loss rule (bbrLossThresh) through by hand: a model of 10 MB/s and
// 20 ms min_rtt (BDP 200 kB), in ProbeBW cruise pacing at 10 MB/s, judging one sample.
func TestBBRLossRule(t *testing.T) {
	b := NewBBR(mds).(*bbr)
	b.minRTT.update(epoch, 20*ms)
	b.maxBw.update(10_000_000)
	b.pacing = 10_000_000
	b.mode = bbrProbeBWCruise
	pkts := func(n int) int { return n * mds }
	for _, tc := range []struct {
		name      string
		r         bbrRound
		congested bool
	}{
		{"5% random loss, RTT and rate steady", bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 20 * ms, rttN: 1, maxRate: 9_500_000}, false},
		{"10% random loss, RTT and rate steady", bbrRound{lost: pkts(16), delivered: pkts(150), rttSum: 21 * ms, rttN: 1, maxRate: 9_000_000}, false},
		{"5% loss with a queue: RTT 27 ms > 20·1.25+1", bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 27 * ms, rttN: 1, maxRate: 9_500_000}, true},
		{"5% loss, RTT 25.5 ms: within the margin", bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 51 * ms, rttN: 2, maxRate: 9_500_000}, false},
		{"5% loss, delivery rate 70% of the pacing rate, no queue: not a signal", bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 20 * ms, rttN: 1, maxRate: 7_000_000}, false},
		{"1% loss with a queue: under 2%", bbrRound{lost: pkts(3), delivered: pkts(300), rttSum: 30 * ms, rttN: 1, maxRate: 9_500_000}, false},
		{"25% loss (a policer), RTT and rate steady", bbrRound{lost: pkts(40), delivered: pkts(120), rttSum: 20 * ms, rttN: 1, maxRate: 9_500_000}, true},
		{"two losses only, with a queue", bbrRound{lost: pkts(2), delivered: pkts(20), rttSum: 40 * ms, rttN: 1, maxRate: 9_500_000}, false},
	} {
		require.Equal(t, tc.congested, b.congested(&tc.r), tc.name)
	}
	// The RTT margin scales with min_rtt: a quarter of it plus 1 ms.
	b.minRTT = minFilter{window: bbrMinRTTWindow}
	b.minRTT.update(epoch, 100*ms)
	require.False(t, b.congested(&bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 126 * ms, rttN: 1}))
	require.True(t, b.congested(&bbrRound{lost: pkts(8), delivered: pkts(160), rttSum: 127 * ms, rttN: 1}))
}

// TestBBRPacesAtTheEstimate: the pacing rate follows the bandwidth filter times the phase's
// gain, 1% under; before a sample it leaves pacing to the session.
func TestBBRPacesAtTheEstimate(t *testing.T) {
	b := NewBBR(mds).(*bbr)
	require.Zero(t, b.PacingRate())
	require.True(t, b.InSlowStart())
	b.minRTT.update(epoch, 20*ms)
	b.maxBw.update(1_000_000)
	b.setPacingRate(&AckEvent{Now: epoch})
	require.Equal(t, uint64(1_000_000*277/100*99/100), b.PacingRate())
	b.filledPipe = true
	b.mode = bbrProbeBWDown
	b.setPacingRate(&AckEvent{Now: epoch})
	require.Equal(t, uint64(1_000_000*90/100*99/100), b.PacingRate())
	// The window between probes: 1.5 times the 20 kB BDP plus the pacer's bursts, reached by
	// growing; in Up 2.25 times.
	b.cwnd = 10_000
	b.setCwnd(&AckEvent{Now: epoch, AckedBytes: 1_000_000})
	require.Equal(t, 20_000*3/2+2*PacingBurstDatagrams*mds, b.CongestionWindow())
	b.mode = bbrProbeBWUp
	b.setCwnd(&AckEvent{Now: epoch, AckedBytes: 1_000_000})
	require.Equal(t, 20_000*9/4+2*PacingBurstDatagrams*mds, b.CongestionWindow())
	b.mode = bbrProbeRTT
	b.setCwnd(&AckEvent{Now: epoch})
	require.Equal(t, max(10_000, bbrMinCwndPackets*mds), b.CongestionWindow())
}

// TestBBRProbeRTTComesAfterTheMinimumStoppedFalling: samples that only match min_rtt do not
// postpone ProbeRTT, which is due 5 s after the minimum last changed. (On a jitter-free path every
// drained queue matches it exactly; when a route change then raises the RTT, postponing ProbeRTT
// to 5 s after the last match kept the old, smaller BDP that long.)
func TestBBRProbeRTTComesAfterTheMinimumStoppedFalling(t *testing.T) {
	b := NewBBR(mds).(*bbr)
	ack := func(at time.Duration, rtt time.Duration) {
		b.OnAck(&AckEvent{Now: epoch.Add(at), AckedBytes: mds, Acked: []AckedPacket{{Size: mds}},
			BytesInFlight: 100 * mds, Sample: RateSample{RTT: rtt, Rate: 1_000_000, TotalDelivered: 1}})
	}
	ack(0, 20*ms)
	b.filledPipe, b.mode = true, bbrProbeBWCruise
	for at := 100 * ms; at <= 5*time.Second; at += 100 * ms {
		ack(at, 20*ms) // equal to the minimum: no new information
	}
	require.NotEqual(t, bbrProbeRTT, b.mode)
	ack(5*time.Second+ms, 20*ms)
	require.Equal(t, bbrProbeRTT, b.mode, "ProbeRTT postponed by samples equal to min_rtt")

	// A lower sample does postpone it.
	b = NewBBR(mds).(*bbr)
	ack(0, 20*ms)
	b.filledPipe, b.mode = true, bbrProbeBWCruise
	ack(3*time.Second, 19*ms)
	ack(5*time.Second+ms, 19*ms)
	require.NotEqual(t, bbrProbeRTT, b.mode)
	ack(8*time.Second+ms, 19*ms)
	require.Equal(t, bbrProbeRTT, b.mode)
}

// The per-ACK call must not allocate either.
func TestBBRDoesNotAllocate(t *testing.T) {
	c := NewBBR(mds)
	r := fixedRTT(20 * ms)
	var s Sampler
	now := epoch
	acked := make([]AckedPacket, 1)
	ev := AckEvent{Acked: acked, RTT: r}
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		p := s.OnSent(now, 0, mds)
		c.OnPacketSent(now, mds)
		now = now.Add(time.Millisecond)
		s.OnAcked(now, &p, mds)
		acked[0] = AckedPacket{Size: mds, SentTime: p.SentTime}
		ev.Now, ev.AckedBytes, ev.Sample = now, mds, s.Sample(r.MinRTT())
		c.OnAck(&ev)
	}))
}

// TestNamesAndByName: every name Names lists builds its controller, BBR (the default) first, and
// an unknown name is an error that lists the names.
func TestNamesAndByName(t *testing.T) {
	names := Names()
	require.Equal(t, []string{NameBBR, NameCubic, NameNewReno}, names)
	for _, n := range names {
		newCC, err := ByName(n)
		require.NoError(t, err)
		c := newCC(mds)
		require.Equal(t, InitialWindow(mds), c.CongestionWindow(), n)
	}
	_, isBBR := func() (Controller, bool) { c, _ := ByName(NameBBR); b, ok := c(mds).(*bbr); return b, ok }()
	require.True(t, isBBR)
	_, err := ByName("vegas")
	var ue *UnknownError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "vegas", ue.Name)
	require.ErrorContains(t, err, "bbr, cubic, newreno")
}

// TestBBRProbeRTTSoon works probeRTTSoon and noteRTTStep through by hand, with min_rtt 20 ms: a
// round minimum 12 ms above the last (a route change) is a step, 8 ms (a queue building) is not;
// a failed drain after a step brings ProbeRTT forward even though the recent rounds still hold
// min_rtt (rttStillMin), once per bbrProbeRTTAfter; and without a step it does not.
func TestBBRProbeRTTSoon(t *testing.T) {
	fresh := func() *bbr {
		b := NewBBR(mds).(*bbr)
		b.minRTT.update(epoch, 20*ms)
		b.maxBw.update(6_000_000)
		b.recentMinRTT.add(20*ms, false)
		b.mode, b.filledPipe, b.roundCount = bbrProbeBWCruise, true, 100
		b.lastProbeRTT = epoch
		return b
	}
	b := fresh()
	b.lastRoundMinRTT = 22 * ms
	b.noteRTTStep(30 * ms)
	require.Zero(t, b.rttStepRound, "8 ms more in a round: a queue building, no step")
	b.noteRTTStep(34 * ms)
	require.EqualValues(t, 100, b.rttStepRound, "12 ms more in a round (over half of min_rtt): a step")

	now := epoch.Add(time.Second)
	b.lastRoundMinRTT = 60 * ms
	b.probeRTTSoon(now)
	require.True(t, b.probeRTTForced)
	require.EqualValues(t, 6_000_000, b.riseBw, "the estimate from before the rise is kept for ProbeRTT's end")
	b.updateMode(&AckEvent{Now: now, BytesInFlight: 100_000}, false)
	require.Equal(t, bbrProbeRTT, b.mode, "ProbeRTT although rttStillMin holds")

	b.probeRTTForced = false
	b.probeRTTSoon(now.Add(time.Second))
	require.False(t, b.probeRTTForced, "at most once per bbrProbeRTTAfter")

	b = fresh()
	b.lastRoundMinRTT = 60 * ms
	b.probeRTTSoon(now)
	require.False(t, b.probeRTTForced, "no step: another flow's queue, no early ProbeRTT")
	b.updateMode(&AckEvent{Now: now, BytesInFlight: 100_000}, false)
	require.Equal(t, bbrProbeBWCruise, b.mode)
}
