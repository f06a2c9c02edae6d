package transport

import (
	"net"
	"os"
	"time"

	"github.com/tlsgram/tlsgram/session"
)

// Tracer receives one connection's events (see session.TraceEvent for what each carries). Its
// calls for one connection never overlap and come in order; they run on the connection's hot
// path, under its lock, so they must be quick and must not call the Conn. SlogTracer and
// QlogTracer are two; Config.Tracer installs one.
type Tracer = session.Tracer

// TraceEvent is one event of a connection; TraceKind says which.
type (
	TraceEvent = session.TraceEvent
	TraceKind  = session.TraceKind
)

// ConnInfo identifies a new connection to Config.Tracer.
type ConnInfo struct {
	IsClient    bool
	LocalConnID uint64 // the connection ID this side chose (what the peer addresses)
	LocalAddr   net.Addr
	RemoteAddr  net.Addr
	Start       time.Time
}

// QlogDirEnv names the environment variable that turns on qlog tracing for every connection
// whose Config.Tracer is nil: TLSGRAM_QLOGDIR=dir writes one file per connection into dir
// (see QlogTracer).
const QlogDirEnv = "TLSGRAM_QLOGDIR"

// newTracer returns the tracer conf asks for, or the qlog writer QlogDirEnv asks for, or nil.
func newTracer(conf *Config, info ConnInfo) Tracer {
	if conf.Tracer != nil {
		return conf.Tracer(info)
	}
	if dir := os.Getenv(QlogDirEnv); dir != "" {
		return QlogTracer(dir)(info)
	}
	return nil
}

// observe registers a new connection for ReadMetrics, installs its tracer in its core, if
// there is one, and reports the start of the handshake. Dial and the listener call it once the
// connection is registered and before its first step, so a connection that never runs (its
// registration failed) leaves nothing behind; finishObserving, called by Conn.finish last,
// undoes it. The core handles no datagram and sends none before: the first of either may come
// from another goroutine than the worker (a handshake flight sent by TLS's goroutine, an inline
// send, a step on the socket reader).
func (c *Conn) observe() {
	registerConn(c)
	now := time.Now()
	info := ConnInfo{
		IsClient:    c.core.IsClient(),
		LocalConnID: c.core.LocalConnID(),
		LocalAddr:   c.LocalAddr(),
		RemoteAddr:  c.remote,
		Start:       now,
	}
	t := newTracer(c.conf, info)
	if t == nil {
		return
	}
	c.mu.Lock() // the handshake may already be writing to the core
	c.tracer = t
	c.core.SetTracer(t)
	t.TraceEvent(TraceEvent{Kind: session.TraceHandshakeStarted, Time: now})
	c.mu.Unlock()
}

// traceLocked reports a transport event. The caller holds c.mu, which orders it with the
// core's events.
func (c *Conn) traceLocked(kind TraceKind, err error) {
	if c.tracer == nil {
		return
	}
	c.tracer.TraceEvent(TraceEvent{Kind: kind, Time: time.Now(), Err: err})
}
