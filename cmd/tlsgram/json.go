package main

import (
	"crypto/tls"
	"time"

	"github.com/tlsgram/tlsgram/transport"
)

// The -json output (iperf3 -J style): one object per summary. Field names are snake_case;
// sizes are bytes, times milliseconds or seconds as the name says. The README's "JSON output"
// lists these fields; TestJSONFieldsDocumented checks that it does.

// sessionJSON is one session: connect prints one at the end (on stderr: stdout carries the
// data), serve one line per session.
type sessionJSON struct {
	Remote        string     `json:"remote"`                 // the peer's address
	Local         string     `json:"local,omitempty"`        // our address
	Cipher        string     `json:"cipher,omitempty"`       // TLS cipher suite
	ALPN          string     `json:"alpn,omitempty"`         // negotiated application protocol
	ClientCert    string     `json:"client_cert,omitempty"`  // server: the client certificate's subject (mutual TLS)
	HandshakeMS   float64    `json:"handshake_ms,omitempty"` // client: dial to handshake complete
	BytesSent     int64      `json:"bytes_sent"`             // application bytes written to the session
	BytesReceived int64      `json:"bytes_received"`         // application bytes read from it
	Seconds       float64    `json:"seconds"`                // session duration
	Error         string     `json:"error,omitempty"`        // why it failed; absent on success
	Stats         *statsJSON `json:"stats,omitempty"`        // with -stats
}

// statsJSON is transport.Stats (-stats).
type statsJSON struct {
	SmoothedRTTMS            float64 `json:"smoothed_rtt_ms"`
	MinRTTMS                 float64 `json:"min_rtt_ms"`
	LatestRTTMS              float64 `json:"latest_rtt_ms"`
	RTTVarMS                 float64 `json:"rtt_var_ms"`
	DatagramsSent            uint64  `json:"datagrams_sent"`
	DatagramsReceived        uint64  `json:"datagrams_received"`
	BytesSent                uint64  `json:"udp_bytes_sent"`     // UDP payload bytes, headers and retransmissions included
	BytesReceived            uint64  `json:"udp_bytes_received"` // UDP payload bytes
	StreamBytesSent          uint64  `json:"stream_bytes_sent"`
	StreamBytesReceived      uint64  `json:"stream_bytes_received"`
	StreamBytesRetransmitted uint64  `json:"stream_bytes_retransmitted"`
	PacketsLost              uint64  `json:"packets_lost"`
	SpuriousLosses           uint64  `json:"spurious_losses"`
	PTOs                     uint64  `json:"probe_timeouts"`
	CongestionEvents         uint64  `json:"congestion_events"`
	CongestionWindow         int     `json:"congestion_window"`
	BytesInFlight            int     `json:"bytes_in_flight"`
	PacingRate               int64   `json:"pacing_rate"` // bytes per second; 0: pacing off
	SendWindow               uint64  `json:"send_window"`
	ReceiveWindow            uint64  `json:"receive_window"`
	DroppedDatagrams         uint64  `json:"dropped_datagrams"` // received datagrams dropped, all reasons
	DroppedQueueFull         uint64  `json:"dropped_queue_full"`
	SendErrors               uint64  `json:"send_errors"`
}

// demoJSON is the demo's summary (on stdout).
type demoJSON struct {
	Bytes       int64                `json:"bytes"` // sent by the client, received and verified by the server
	SHA256      string               `json:"sha256"`
	HandshakeMS float64              `json:"handshake_ms"`
	Seconds     float64              `json:"seconds"` // first byte sent to last byte received
	MBps        float64              `json:"mb_per_s"`
	Path        string               `json:"path"`     // "loopback", or the relay's impairment
	Settings    map[string]string    `json:"settings"` // flag name (without the dash) to value
	Client      *statsJSON           `json:"client,omitempty"`
	Server      *statsJSON           `json:"server,omitempty"`
	Relay       map[string]relayJSON `json:"relay,omitempty"` // "up" (client to server) and "down"
}

// relayJSON is one direction of the demo's relay.
type relayJSON struct {
	Datagrams  uint64 `json:"datagrams"`
	Dropped    uint64 `json:"dropped"`
	Reordered  uint64 `json:"reordered"`
	Duplicated uint64 `json:"duplicated"`
	Corrupted  uint64 `json:"corrupted"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func statsToJSON(st transport.Stats) *statsJSON {
	var dropped uint64
	for _, x := range dropReasons(st) {
		dropped += x.n
	}
	return &statsJSON{
		SmoothedRTTMS: ms(st.SmoothedRTT), MinRTTMS: ms(st.MinRTT), LatestRTTMS: ms(st.LatestRTT), RTTVarMS: ms(st.RTTVar),
		DatagramsSent: st.DatagramsSent, DatagramsReceived: st.DatagramsReceived,
		BytesSent: st.BytesSent, BytesReceived: st.BytesReceived,
		StreamBytesSent: st.StreamBytesSent, StreamBytesReceived: st.StreamBytesReceived,
		StreamBytesRetransmitted: st.StreamBytesRetransmitted,
		PacketsLost:              st.PacketsLost, SpuriousLosses: st.SpuriousLosses, PTOs: st.PTOs,
		CongestionEvents: st.CongestionEvents, CongestionWindow: st.CongestionWindow, BytesInFlight: st.BytesInFlight,
		PacingRate: st.PacingRate, SendWindow: st.SendWindow, ReceiveWindow: st.ReceiveWindow,
		DroppedDatagrams: dropped,
		DroppedQueueFull: st.DroppedQueueFull, SendErrors: st.SendErrors,
	}
}

// sessionToJSON describes session s; stats adds its statistics.
func sessionToJSON(s session, sent, received int64, elapsed time.Duration, err error, stats bool) sessionJSON {
	j := sessionJSON{Remote: s.RemoteAddr().String(), BytesSent: sent, BytesReceived: received, Seconds: elapsed.Seconds()}
	if a := s.LocalAddr(); a != nil {
		j.Local = a.String()
	}
	cs := s.ConnectionState()
	if cs.HandshakeComplete {
		j.Cipher = tls.CipherSuiteName(cs.CipherSuite)
		j.ALPN = cs.NegotiatedProtocol
	}
	if err != nil {
		j.Error = oneLine(explain(err))
	}
	if st, ok := statsOf(s); ok && stats {
		j.Stats = statsToJSON(st)
	}
	return j
}
