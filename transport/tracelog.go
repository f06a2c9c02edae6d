package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tlsgram/tlsgram/session"
)

// SlogTracer returns a Config.Tracer that logs every connection's events to l: handshake and
// close at Info, packet and congestion events at Debug. It asks l whether a level is enabled
// before it builds a record, so a logger at Info costs no formatting per packet.
func SlogTracer(l *slog.Logger) func(ConnInfo) Tracer {
	return func(info ConnInfo) Tracer {
		return &slogTracer{l: l.With(
			slog.String("conn", fmt.Sprintf("%016x", info.LocalConnID)),
			slog.Bool("client", info.IsClient),
			slog.String("remote", addrString(info.RemoteAddr)),
		)}
	}
}

type slogTracer struct{ l *slog.Logger }

func (t *slogTracer) TraceEvent(ev TraceEvent) {
	level := slog.LevelDebug
	switch ev.Kind {
	case session.TraceHandshakeStarted, session.TraceHandshakeDone, session.TraceClosed, session.TraceFinished:
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !t.l.Enabled(ctx, level) {
		return
	}
	var attrs []slog.Attr
	switch ev.Kind {
	case session.TracePacketSent, session.TracePacketReceived, session.TracePacketLost:
		attrs = append(attrs, slog.Uint64("pn", ev.PacketNumber), slog.Int("size", ev.Size),
			slog.Int("cwnd", ev.CongestionWindow), slog.Int("in_flight", ev.BytesInFlight))
	case session.TraceCongestionState:
		attrs = append(attrs, slog.String("state", ev.State.String()), slog.Int("cwnd", ev.CongestionWindow))
	case session.TraceClosed:
		attrs = append(attrs, slog.String("reason", ev.Err.Error()))
	}
	t.l.LogAttrs(ctx, level, "tlsgram "+ev.Kind.String(), attrs...)
}

// QlogTracer returns a Config.Tracer that writes each connection's events to a file of its own
// in dir (created if missing), named <start>_<client|server>_<connection ID>.qlog.ndjson. The
// format is NDJSON: one JSON object per line, with no JSON-SEQ record separators. The first line
// is a qlog header (qlog_format "NDJSON", the vantage point, the reference time in Unix
// milliseconds); every other line is one event {"time": ms since the reference, "name":
// "category:event", "data": {...}}, with the event names of the qlog QUIC schema where one
// fits (transport:packet_sent, transport:packet_received, recovery:packet_lost,
// recovery:congestion_state_updated, connectivity:connection_closed) and tlsgram:… for the
// rest. A file is complete (flushed and closed) once its connection_finished line is written;
// a connection whose file cannot be created is not traced.
func QlogTracer(dir string) func(ConnInfo) Tracer {
	return func(info ConnInfo) Tracer {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil
		}
		role := "server"
		if info.IsClient {
			role = "client"
		}
		name := fmt.Sprintf("%s_%s_%016x.qlog.ndjson", info.Start.UTC().Format("20060102T150405.000000"), role, info.LocalConnID)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil
		}
		q := &qlogWriter{f: f, w: bufio.NewWriterSize(f, 32<<10), start: info.Start}
		q.header(role, info)
		return q
	}
}

// qlogWriter writes one connection's qlog file. Its calls never overlap (see Tracer).
type qlogWriter struct {
	f     *os.File
	w     *bufio.Writer
	start time.Time
	buf   []byte // the line being built, reused
	done  bool
}

func (q *qlogWriter) header(role string, info ConnInfo) {
	h := map[string]any{
		"qlog_version": "0.3",
		"qlog_format":  "NDJSON",
		"title":        "tlsgram connection " + fmt.Sprintf("%016x", info.LocalConnID),
		"trace": map[string]any{
			"vantage_point": map[string]string{"type": role},
			"common_fields": map[string]any{
				"reference_time": info.Start.UnixMilli(),
				"time_format":    "relative",
				"local_cid":      fmt.Sprintf("%016x", info.LocalConnID),
				"local_address":  addrString(info.LocalAddr),
				"remote_address": addrString(info.RemoteAddr),
			},
		},
	}
	b, _ := json.Marshal(h) // maps of strings and numbers always marshal
	_, _ = q.w.Write(append(b, '\n'))
}

// qlogNames are the qlog event names of the kinds.
var qlogNames = map[TraceKind]string{
	session.TraceHandshakeStarted: "tlsgram:handshake_started",
	session.TraceHandshakeDone:    "tlsgram:handshake_done",
	session.TracePacketSent:       "transport:packet_sent",
	session.TracePacketReceived:   "transport:packet_received",
	session.TracePacketLost:       "recovery:packet_lost",
	session.TraceCongestionState:  "recovery:congestion_state_updated",
	session.TraceClosed:           "connectivity:connection_closed",
	session.TraceFinished:         "tlsgram:connection_finished",
}

func (q *qlogWriter) TraceEvent(ev TraceEvent) {
	if q.done {
		return
	}
	b := append(q.buf[:0], `{"time":`...)
	b = strconv.AppendFloat(b, float64(ev.Time.Sub(q.start))/float64(time.Millisecond), 'f', 3, 64)
	b = append(b, `,"name":`...)
	b = strconv.AppendQuote(b, qlogNames[ev.Kind]) // ASCII names: Go and JSON quoting agree
	b = append(b, `,"data":{`...)
	switch ev.Kind {
	case session.TracePacketSent, session.TracePacketReceived, session.TracePacketLost:
		b = append(b, `"header":{"packet_number":`...)
		b = strconv.AppendUint(b, ev.PacketNumber, 10)
		b = append(b, `},"raw":{"length":`...)
		b = strconv.AppendInt(b, int64(ev.Size), 10)
		b = append(b, '}')
		if ev.Kind == session.TracePacketSent {
			b = append(b, `,"ack_eliciting":`...)
			b = strconv.AppendBool(b, ev.AckEliciting)
		}
		b = q.appendWindow(b, ev)
	case session.TraceCongestionState:
		b = append(b, `"new":`...)
		b = strconv.AppendQuote(b, ev.State.String())
		b = q.appendWindow(b, ev)
	case session.TraceClosed:
		b = appendCloseData(b, ev.Err)
	}
	b = append(b, "}}\n"...)
	q.buf = b
	_, _ = q.w.Write(b)
	if ev.Kind == session.TraceFinished {
		q.done = true
		_ = q.w.Flush()
		_ = q.f.Close()
	}
}

func (q *qlogWriter) appendWindow(b []byte, ev TraceEvent) []byte {
	b = append(b, `,"congestion_window":`...)
	b = strconv.AppendInt(b, int64(ev.CongestionWindow), 10)
	b = append(b, `,"bytes_in_flight":`...)
	b = strconv.AppendInt(b, int64(ev.BytesInFlight), 10)
	return b
}

// appendCloseData describes why a connection ended, as qlog's connection_closed does: who
// closed it, the code (an application's or the session's) and the reason.
func appendCloseData(b []byte, err error) []byte {
	owner, reason := "local", err.Error()
	var code []byte
	var ae *ApplicationError
	var ce *session.CloseError
	var te *session.TimeoutError
	switch {
	case errors.As(err, &ae):
		owner, reason = remoteOwner(ae.Remote), ae.Reason
		code = strconv.AppendUint(append(code, `"application_code":`...), ae.Code, 10)
	case errors.As(err, &ce):
		owner, reason = remoteOwner(ce.Remote), ce.Reason
		code = strconv.AppendUint(append(code, `"connection_code":`...), ce.Code, 10)
	case errors.As(err, &te):
		code = append(code, `"trigger":"idle_timeout"`...)
		if te.Handshake {
			code = append(code[:0], `"trigger":"handshake_timeout"`...)
		}
	}
	b = append(b, `"owner":`...)
	b = strconv.AppendQuote(b, owner)
	if len(code) > 0 {
		b = append(append(b, ','), code...)
	}
	b = append(b, `,"reason":`...)
	r, _ := json.Marshal(reason) // JSON string escaping, unlike strconv.Quote's
	return append(b, r...)
}

func remoteOwner(remote bool) string {
	if remote {
		return "remote"
	}
	return "local"
}

// addrString is a.String(), or "" for a nil address.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
