package congestion

import "time"

// oneAcked and oneEvent are reused so that the allocation tests measure the controllers, not the
// helpers. Tests of this package do not run in parallel.
var (
	oneAcked [1]AckedPacket
	oneEvent AckEvent
)

// ackOne hands c an AckEvent that acknowledges one packet, as the per-packet hook of RFC 9002
// Appendix B.5 would.
func ackOne(c Controller, now time.Time, bytes int, sent time.Time, rtt *RTT) {
	oneAcked[0] = AckedPacket{Size: bytes, SentTime: sent}
	oneEvent = AckEvent{Now: now, Acked: oneAcked[:], AckedBytes: bytes, RTT: rtt}
	c.OnAck(&oneEvent)
}

// lossOne hands c an AckEvent that declares lostBytes lost, the newest sent at sent.
func lossOne(c Controller, now time.Time, lostBytes int, sent time.Time) {
	c.OnAck(&AckEvent{Now: now, LostBytes: lostBytes, LostSentTime: sent})
}

// persistentOne hands c an AckEvent that establishes persistent congestion.
func persistentOne(c Controller, now time.Time) {
	c.OnAck(&AckEvent{Now: now, PersistentCongestion: true})
}
