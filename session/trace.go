package session

import "time"

// TraceKind says what a TraceEvent reports.
type TraceKind uint8

// The events of a connection. The core reports the packet and congestion events; the transport
// adds the handshake and lifetime events, so one enumeration covers what a tracer sees.
const (
	TraceHandshakeStarted TraceKind = iota + 1 // the connection was created and TLS began
	TraceHandshakeDone                         // TLS finished: the packet key is installed
	TracePacketSent                            // a datagram was built for sending
	TracePacketReceived                        // a datagram passed its checks and was processed
	TracePacketLost                            // a sent packet was declared lost (RFC 9002 §6.1)
	TraceCongestionState                       // the congestion controller changed state
	TraceClosed                                // the connection ended: Err says why
	TraceFinished                              // the transport forgot the connection: no more events
)

var traceKindNames = [...]string{
	TraceHandshakeStarted: "handshake_started",
	TraceHandshakeDone:    "handshake_done",
	TracePacketSent:       "packet_sent",
	TracePacketReceived:   "packet_received",
	TracePacketLost:       "packet_lost",
	TraceCongestionState:  "congestion_state_updated",
	TraceClosed:           "connection_closed",
	TraceFinished:         "connection_finished",
}

// TraceKinds lists every kind, in order.
var TraceKinds = []TraceKind{TraceHandshakeStarted, TraceHandshakeDone, TracePacketSent,
	TracePacketReceived, TracePacketLost, TraceCongestionState, TraceClosed, TraceFinished}

func (k TraceKind) String() string {
	if int(k) < len(traceKindNames) && traceKindNames[k] != "" {
		return traceKindNames[k]
	}
	return "unknown"
}

// CongestionState is the congestion controller's phase (RFC 9002 §7.3).
type CongestionState uint8

const (
	SlowStart CongestionState = iota + 1
	CongestionAvoidance
	Recovery
)

func (s CongestionState) String() string {
	switch s {
	case SlowStart:
		return "slow_start"
	case CongestionAvoidance:
		return "congestion_avoidance"
	case Recovery:
		return "recovery"
	}
	return "unknown"
}

// TraceEvent is one event of a connection. Which fields are set depends on Kind: the packet
// events set PacketNumber, Size and (sent) AckEliciting; the packet and congestion events set
// CongestionWindow and BytesInFlight after the event; TraceCongestionState sets State;
// TraceClosed sets Err.
type TraceEvent struct {
	Kind             TraceKind
	Time             time.Time
	PacketNumber     uint64
	Size             int
	AckEliciting     bool
	State            CongestionState
	CongestionWindow int
	BytesInFlight    int
	Err              error
}

// Tracer receives a connection's events. The core calls it synchronously from its entry points
// (so the calls of one connection never overlap, and the event's Time is the now passed in);
// it must be quick and must not call back into the connection. A Conn without a tracer (the
// default) spends one nil check per event on it.
type Tracer interface {
	TraceEvent(ev TraceEvent)
}

// SetTracer installs t (nil removes it). Call it before the first datagram.
func (c *Conn) SetTracer(t Tracer) { c.tracer = t }

// tracePacket reports a packet event. It is small enough to be inlined, so that without a
// tracer an event costs a nil check and no call; emitPacket does the work.
func (c *Conn) tracePacket(kind TraceKind, now time.Time, pn uint64, size int, ackEliciting bool) {
	if c.tracer != nil {
		c.emitPacket(kind, now, pn, size, ackEliciting)
	}
}

func (c *Conn) emitPacket(kind TraceKind, now time.Time, pn uint64, size int, ackEliciting bool) {
	c.tracer.TraceEvent(TraceEvent{
		Kind: kind, Time: now, PacketNumber: pn, Size: size, AckEliciting: ackEliciting,
		CongestionWindow: c.rec.cc.CongestionWindow(), BytesInFlight: c.rec.bytesInFlight,
	})
}

// traceCongestion reports the controller's state when it differs from the last one reported.
// It runs after the entry points that feed the controller ACKs and losses; inlined, like
// tracePacket.
func (c *Conn) traceCongestion(now time.Time) {
	if c.tracer != nil {
		c.emitCongestion(now)
	}
}

func (c *Conn) emitCongestion(now time.Time) {
	state := CongestionAvoidance
	switch {
	case c.rec.cc.InRecovery():
		state = Recovery
	case c.rec.cc.InSlowStart():
		state = SlowStart
	}
	if state == c.tracedState {
		return
	}
	c.tracedState = state
	c.tracer.TraceEvent(TraceEvent{
		Kind: TraceCongestionState, Time: now, State: state,
		CongestionWindow: c.rec.cc.CongestionWindow(), BytesInFlight: c.rec.bytesInFlight,
	})
}
