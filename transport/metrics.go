package transport

import (
	"sync"
	"sync/atomic"

	"github.com/tlsgram/tlsgram/session"
)

// Metrics is a process-wide snapshot of tlsgram's counters: every connection and listener this
// process created, live ones read at the moment of the snapshot and finished ones folded into
// running totals. Counters (the uint64 fields) only grow, so a Prometheus collector can export
// them as counters and the int fields as gauges; ReadMetrics is cheap enough to call on every
// scrape (it locks each live connection briefly), and nothing is counted on the hot path for it.
// Package tlsgramexpvar publishes it through expvar (kept out of this package, since expvar
// imports net/http).
type Metrics struct {
	ConnectionsOpened uint64 // connections created: dialled, or admitted by a listener
	ConnectionsActive int    // connections not yet finished (handshaking, open or closing)

	DatagramsSent, DatagramsReceived uint64
	BytesSent, BytesReceived         uint64 // UDP payload bytes
	StreamBytesSent                  uint64 // first transmissions of application and TLS bytes
	StreamBytesReceived              uint64
	StreamBytesRetransmitted         uint64
	PacketsLost                      uint64
	PTOs                             uint64
	CongestionEvents                 uint64
	DroppedDatagrams                 uint64 // received datagrams a connection dropped (session.Drops, full queue)

	ListenersOpen     int    // listeners not yet closed
	Accepted          uint64 // connections handed to Accept
	HandshakeFailures uint64
	RetriesSent       uint64
	ListenerDrops     uint64 // datagrams listeners dropped before any connection saw them
}

// registry holds what ReadMetrics reads. Connections and listeners join it when created and
// leave it, their counters folded into totals, when they finish.
var registry = struct {
	mu        sync.Mutex // guards the fields below; may be taken before a Conn's mu, never after
	conns     map[*Conn]struct{}
	listeners map[*Listener]struct{}
	totals    Metrics // of finished connections and closed listeners
	opened    atomic.Uint64
}{conns: map[*Conn]struct{}{}, listeners: map[*Listener]struct{}{}}

// ReadMetrics returns the current process-wide counters.
func ReadMetrics() Metrics {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m := registry.totals
	for c := range registry.conns {
		m.addConn(c.Stats())
	}
	for l := range registry.listeners {
		m.addListener(l.Stats())
	}
	m.ConnectionsOpened = registry.opened.Load()
	m.ConnectionsActive = len(registry.conns)
	m.ListenersOpen = len(registry.listeners)
	return m
}

func (m *Metrics) addConn(s Stats) {
	m.DatagramsSent += s.DatagramsSent
	m.DatagramsReceived += s.DatagramsReceived
	m.BytesSent += s.BytesSent
	m.BytesReceived += s.BytesReceived
	m.StreamBytesSent += s.StreamBytesSent
	m.StreamBytesReceived += s.StreamBytesReceived
	m.StreamBytesRetransmitted += s.StreamBytesRetransmitted
	m.PacketsLost += s.PacketsLost
	m.PTOs += s.PTOs
	m.CongestionEvents += s.CongestionEvents
	m.DroppedDatagrams += s.Drops.Total() + s.DroppedQueueFull
}

func (m *Metrics) addListener(s ListenerStats) {
	m.Accepted += s.Accepted
	m.HandshakeFailures += s.HandshakeFailures
	m.RetriesSent += s.RetriesSent
	m.ListenerDrops += s.DroppedHalfOpen + s.DroppedShortInitial + s.DroppedInvalid +
		s.DroppedInvalidToken + s.DroppedUnknownConnID + s.DroppedMalformed + s.DroppedTruncated +
		s.DroppedClosed + s.DroppedVersion
}

// registerConn counts a new connection. Called before its driver runs.
func registerConn(c *Conn) {
	registry.opened.Add(1)
	registry.mu.Lock()
	registry.conns[c] = struct{}{}
	registry.mu.Unlock()
}

// unregisterConn folds a finished connection's counters into the totals. The caller must not
// hold c.mu (ReadMetrics takes it under registry.mu).
func unregisterConn(c *Conn) {
	s := c.Stats()
	registry.mu.Lock()
	if _, ok := registry.conns[c]; ok {
		delete(registry.conns, c)
		registry.totals.addConn(s)
	}
	registry.mu.Unlock()
}

func registerListener(l *Listener) {
	registry.mu.Lock()
	registry.listeners[l] = struct{}{}
	registry.mu.Unlock()
}

// unregisterListener folds a closed listener's counters into the totals. Its connections still
// count as connections.
func unregisterListener(l *Listener) {
	registry.mu.Lock()
	if _, ok := registry.listeners[l]; ok {
		delete(registry.listeners, l)
		registry.totals.addListener(l.Stats())
	}
	registry.mu.Unlock()
}

// finishObserving reports the end of a finished connection to its tracer and folds it into
// the metrics. Called once by the driver when it returns, without c.mu.
func (c *Conn) finishObserving() {
	c.mu.Lock()
	c.traceLocked(session.TraceFinished, nil)
	c.mu.Unlock()
	unregisterConn(c)
}
