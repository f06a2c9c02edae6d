package main

import (
	"log/slog"
	"os"
	"sync/atomic"

	tgsession "github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/transport"
)

// handshakeLogger returns a Config.Tracer that logs, at Info, every connection that ended
// before its handshake completed, with the reason (the TLS error, a timeout, a refusal): what a
// server operator running with -v wants to see when a client cannot get in. Other events are
// passed on to the qlog writer when TLSGRAM_QLOGDIR asks for one (a Config.Tracer replaces that
// switch, so it is honoured here).
func handshakeLogger(log *slog.Logger) func(transport.ConnInfo) transport.Tracer {
	qlogDir := os.Getenv(transport.QlogDirEnv)
	return func(info transport.ConnInfo) transport.Tracer {
		t := &hsTracer{log: log, remote: info.RemoteAddr.String()}
		if qlogDir != "" {
			t.next = transport.QlogTracer(qlogDir)(info)
		}
		return t
	}
}

type hsTracer struct {
	log    *slog.Logger
	remote string
	done   atomic.Bool // the handshake completed
	next   transport.Tracer
}

func (t *hsTracer) TraceEvent(ev transport.TraceEvent) {
	switch ev.Kind {
	case tgsession.TraceHandshakeDone:
		t.done.Store(true)
	case tgsession.TraceClosed:
		if !t.done.Load() {
			t.log.Info("handshake failed", "remote", t.remote, "reason", ev.Err)
		}
	}
	if t.next != nil {
		t.next.TraceEvent(ev)
	}
}
