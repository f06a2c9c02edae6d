package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/tlsgram/tlsgram/transport"
)

// sessionListener is a *transport.Listener whose Accept returns the
// session interface.
type sessionListener interface {
	Accept() (session, error)
	Addr() net.Addr
	Close() error
}

type listener struct{ *transport.Listener }

func (l listener) Accept() (session, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return c.(*transport.Conn), nil
}

func listenSessions(addr string, conf *tls.Config, c *transport.Config) (sessionListener, error) {
	ln, err := transport.Listen("udp", addr, conf, c)
	if err != nil {
		return nil, err
	}
	return listener{ln}, nil
}

func dialSession(ctx context.Context, addr string, conf *tls.Config, tc *transport.Config) (session, error) {
	c, err := transport.Dial(ctx, "udp", addr, conf, tc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// statsOf returns the session's statistics if it is a tlsgram session.
func statsOf(s session) (transport.Stats, bool) {
	c, ok := s.(*transport.Conn)
	if !ok {
		return transport.Stats{}, false
	}
	return c.Stats(), true
}

func cipherName(id uint16) string { return tls.CipherSuiteName(id) }

// statsText is the -stats block of one session.
func statsText(title string, s session) string {
	st, ok := statsOf(s)
	if !ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "statistics of %s:\n", title)
	writeStats(&b, st)
	return b.String()
}

func writeStats(b *strings.Builder, st transport.Stats) {
	row := func(name, format string, args ...any) {
		fmt.Fprintf(b, "  %-14s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("rtt", "smoothed %s, min %s, latest %s, variation %s",
		formatDuration(st.SmoothedRTT), formatDuration(st.MinRTT), formatDuration(st.LatestRTT), formatDuration(st.RTTVar))
	row("datagrams", "sent %d (%s), received %d (%s)",
		st.DatagramsSent, formatBytes(int64(st.BytesSent)), st.DatagramsReceived, formatBytes(int64(st.BytesReceived)))
	retx := ""
	if st.StreamBytesSent > 0 {
		retx = fmt.Sprintf(" (%.2f%% of sent)", 100*float64(st.StreamBytesRetransmitted)/float64(st.StreamBytesSent))
	}
	row("stream", "sent %s, received %s, retransmitted %s%s",
		formatBytes(int64(st.StreamBytesSent)), formatBytes(int64(st.StreamBytesReceived)),
		formatBytes(int64(st.StreamBytesRetransmitted)), retx)
	row("loss recovery", "%d packets declared lost (%d spuriously), %d probe timeouts, %d congestion events",
		st.PacketsLost, st.SpuriousLosses, st.PTOs, st.CongestionEvents)
	pacing := "off"
	if st.PacingRate > 0 {
		pacing = formatBytes(st.PacingRate) + "/s"
	}
	row("congestion", "window %s, in flight %s, pacing %s",
		formatBytes(int64(st.CongestionWindow)), formatBytes(int64(st.BytesInFlight)), pacing)
	row("flow control", "peer's limit for us at %s, our receive window %s",
		formatBytes(int64(st.SendWindow)), formatBytes(int64(st.ReceiveWindow)))
	d := st.Drops
	var parts []string
	var total uint64
	for _, x := range dropReasons(st) {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", x.name, x.n))
			total += x.n
		}
	}
	if total == 0 {
		row("dropped", "none")
	} else {
		row("dropped", "%d received datagrams (%s)", total, strings.Join(parts, ", "))
	}
	if d.Amplification > 0 {
		row("withheld", "%d datagrams held back by the 3x anti-amplification limit", d.Amplification)
	}
	if st.SendErrors > 0 {
		row("send errors", "%d failed socket writes", st.SendErrors)
	}
	if st.SocketReceiveBuffer > 0 || st.SocketSendBuffer > 0 {
		row("socket", "receive buffer %s, send buffer %s (as the kernel reports them)",
			formatBytes(int64(st.SocketReceiveBuffer)), formatBytes(int64(st.SocketSendBuffer)))
	}
}

// dropCount is how many received datagrams were dropped for one reason.
type dropCount struct {
	n    uint64
	name string
}

// dropReasons lists the received datagrams a session dropped, by reason.
func dropReasons(st transport.Stats) []dropCount {
	d := st.Drops
	return []dropCount{
		{d.Integrity, "corrupted"}, {d.Malformed, "malformed"}, {d.WrongConnID, "wrong connection ID"},
		{d.WrongType, "wrong type"}, {d.Duplicate, "duplicate"}, {d.FlowControl, "beyond flow control"},
		{d.TooManyGaps, "too many gaps"}, {d.AfterClose, "after close"}, {st.DroppedQueueFull, "queue full"},
	}
}
