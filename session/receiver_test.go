package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/session/congestion"
)

const testMaxAckDelay = 25 * time.Millisecond

func TestReceiverAcksEverySecondPacket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	r.onPacket(t0, 0, true, true, testMaxAckDelay)
	require.False(t, r.ackDue(t0), "one packet waits for a second or the delay")
	require.Equal(t, t0.Add(testMaxAckDelay), r.ackTimer())
	require.True(t, r.ackDue(t0.Add(testMaxAckDelay)))
	r.onPacket(t0, 1, true, true, testMaxAckDelay)
	require.True(t, r.ackDue(t0))
	require.True(t, r.ackTimer().IsZero(), "a due ACK needs no timer")

	b, largest, _ := r.appendAck(nil, t0.Add(time.Millisecond), 100)
	require.Equal(t, uint64(1), largest)
	var f header.Frame
	_, err := header.ParseFrame(b, &f)
	require.NoError(t, err)
	require.Equal(t, header.FrameAck, f.Type)
	require.Equal(t, uint64(1000), f.Ack.Delay, "the delay since the largest arrived, in µs")
	require.False(t, r.ackPending)
	require.True(t, r.hasAckToRepeat(), "ranges stay until the peer acknowledges our ACK")
}

// TestReceiverRepeatsAckWhileNeeded: an ACK is repeated on every data packet only until the peer
// has acknowledged one that reported its latest ack-eliciting packet; what only acknowledges is
// reported once, by the next packet we send.
func TestReceiverRepeatsAckWhileNeeded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	require.False(t, r.hasAckToRepeat(), "nothing received")
	r.onPacket(t0, 0, false, true, testMaxAckDelay) // the peer's ACK-only packet
	require.True(t, r.hasAckToRepeat(), "new: report it")
	_, largest, _ := r.appendAck(nil, t0, 100)
	require.Equal(t, uint64(0), largest)
	require.False(t, r.hasAckToRepeat(), "reported once; nobody waits for it")

	r.onPacket(t0, 1, true, true, testMaxAckDelay) // the peer's data
	_, largest, _ = r.appendAck(nil, t0, 100)
	require.Equal(t, uint64(1), largest)
	require.True(t, r.hasAckToRepeat(), "the peer waits for this ACK: repeat it until it is confirmed")
	r.onPacket(t0, 2, false, true, testMaxAckDelay)
	_, largest, _ = r.appendAck(nil, t0, 100)
	r.onAckAcked(0)
	require.True(t, r.hasAckToRepeat(), "an older ACK confirmed")
	r.onAckAcked(largest)
	require.False(t, r.hasAckToRepeat(), "the ACK of packet 1 is confirmed")
	r.onPacket(t0, 3, false, true, testMaxAckDelay)
	require.True(t, r.hasAckToRepeat())
}

func TestReceiverAckNowOnGapAndNotForAckOnly(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	r.onPacket(t0, 0, false, true, testMaxAckDelay)
	require.False(t, r.ackPending, "an ACK-only packet is never acknowledged by itself")
	r.onPacket(t0, 2, true, true, testMaxAckDelay)
	require.True(t, r.ackDue(t0), "a gap opened")
	r.appendAck(nil, t0, 100)
	r.onPacket(t0, 1, true, true, testMaxAckDelay)
	require.True(t, r.ackDue(t0), "a gap was filled")
}

func TestReceiverAcksAtOnceDuringHandshake(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	r.onPacket(t0, 0, true, false, testMaxAckDelay)
	require.True(t, r.ackDue(t0))
}

func TestReceiverAppendAckThatDoesNotFit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	r.onPacket(t0, 0, true, false, testMaxAckDelay)
	b, largest, _ := r.appendAck(make([]byte, 10), t0, 12)
	require.Len(t, b, 10)
	require.Equal(t, header.NoPacket, largest)
	require.True(t, r.ackDue(t0), "still due")
}

func TestReceiverHoldsImmediateAckForReply(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	require.NoError(t, r.buf.Insert(0, []byte("request"), false))
	r.onImmediateAck(t0, testMaxAckDelay)
	r.onPacket(t0, 0, true, true, testMaxAckDelay)
	require.False(t, r.ackDue(t0), "held for the reply")
	require.Equal(t, t0.Add(ackHold), r.ackTimer())
	require.True(t, r.releaseHeldAck(), "the reader found nothing more: no reply is coming")
	require.True(t, r.ackDue(t0))
	require.False(t, r.releaseHeldAck(), "reported once")

	// Nothing to read: the ACK goes at once.
	r2 := newReceiver(DefaultInitialWindow, t0)
	r2.onImmediateAck(t0, testMaxAckDelay)
	r2.onPacket(t0, 0, true, true, testMaxAckDelay)
	require.True(t, r2.ackDue(t0))
	require.False(t, r2.releaseHeldAck())
}

func TestReceiverWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const window = 256 << 10
	r := newReceiver(window, t0)
	var rtt congestion.RTT
	require.Equal(t, uint64(InitialMaxData), r.buf.Limit(), "the handshake's window")
	require.False(t, r.windowUpdateDue(true))

	r.open(t0) // the handshake completed
	require.True(t, r.windowUpdateDue(false))
	r.updateWindow(t0, false, &rtt, 1<<20)
	require.True(t, r.maxDataSend)
	require.Equal(t, uint64(window), r.buf.Limit())
	r.maxDataSend = false

	// Half the window read: due, and without an RTT sample the window stays.
	fill := func(from, n int) {
		require.NoError(t, r.buf.Insert(uint64(from), make([]byte, n), false))
		_, err := r.buf.Read(make([]byte, n))
		require.NoError(t, err)
	}
	fill(0, window/2-1)
	require.False(t, r.windowUpdateDue(false))
	fill(window/2-1, 1)
	require.True(t, r.windowUpdateDue(false))
	r.updateWindow(t0.Add(time.Second), false, &rtt, 1<<20)
	require.True(t, r.maxDataSend)
	require.Equal(t, uint64(window/2+window), r.buf.Limit())
	require.Equal(t, uint64(window), r.window)

	// Half read again within two RTTs: the window doubles.
	rtt.Update(time.Second, 0, testMaxAckDelay, true)
	fill(window/2, window/2)
	r.updateWindow(t0.Add(1500*time.Millisecond), false, &rtt, 1<<20)
	require.Equal(t, uint64(2*window), r.window)
	require.Equal(t, uint64(window+2*window), r.buf.Limit())
}

// TestReceiverHoldsHandshakeAckWhileFlightOpen: during the handshake, a reader that finds nothing
// more releases the held ACK only once the newest packet asked for an immediate ACK, that is,
// ended the sender's flight (releaseHeldAck); before, TLS is in the middle of a record.
func TestReceiverHoldsHandshakeAckWhileFlightOpen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newReceiver(DefaultInitialWindow, t0)
	require.NoError(t, r.buf.Insert(0, []byte("client hello, first half"), false))
	r.onPacket(t0, 0, true, false, testMaxAckDelay)
	require.False(t, r.ackDue(t0), "held for TLS's answer")
	require.False(t, r.releaseHeldAck(), "TLS blocked mid-record; the rest of the flight is coming")
	require.False(t, r.ackDue(t0))
	require.Equal(t, t0.Add(ackHold), r.ackTimer(), "still bounded")

	t1 := t0.Add(ackHold / 2)
	require.NoError(t, r.buf.Insert(24, []byte(", second half"), false))
	r.onImmediateAck(t1, testMaxAckDelay)
	r.onPacket(t1, 1, true, false, testMaxAckDelay)
	require.False(t, r.ackDue(t1), "held for TLS's answer")
	require.Equal(t, t0.Add(ackHold), r.ackTimer(), "the bound counts from the first packet")
	require.True(t, r.releaseHeldAck(), "the flight came whole and TLS found nothing more")
	require.True(t, r.ackDue(t1))
}
