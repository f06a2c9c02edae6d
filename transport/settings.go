package transport

import (
	"fmt"
	"strings"

	"github.com/tlsgram/tlsgram/session"
)

// Setting describes one Config field: the single place its default, its meaning and the tlsgram
// command's flag for it are written down. The README's defaults table, the Defaults section of
// the package documentation and the tlsgram command's flags (their defaults and help text) are
// derived from Settings; TestSettings fails when any of them, or a Config field comment,
// disagrees with it.
type Setting struct {
	// Field is the name of the Config field.
	Field string
	// Default is the value a zero field stands for, of the field's type (nil: the field has no
	// fixed default, see Doc).
	Default any
	// Doc is the default as the field's comment says it, after "Default ": "1200", "25ms",
	// "1 MiB", "Cubic", "false".
	Doc string
	// Meaning says in one line what the setting does (README, CLI help).
	Meaning string
	// Flag is the tlsgram command's flag for the field without the dash, or "" for none.
	Flag string
}

// settings is the table. To add a Config field: add its row here, say "Default <Doc>" in its
// comment, and run "go test ./transport -run TestSettings -update" to rewrite the README's table
// and this package's Defaults section; a Flag makes the tlsgram command offer it.
var settings = []Setting{
	{"MaxDatagramSize", DefaultMaxDatagramSize, "1452",
		"largest UDP payload sent, in bytes: connections start at 1200, which every Internet path carries, and probe up to it (RFC 8899); up to 65507 on loopback", "max-datagram"},
	{"MaxAckDelay", session.DefaultMaxAckDelay, "25ms",
		"how long a receiver may delay an ACK (RFC 9000 §13.2.1); the tail of a flight is acknowledged at once", ""},
	{"IdleTimeout", session.DefaultIdleTimeout, "30s",
		"close a connection after this long without hearing from the peer", "idle"},
	{"KeepAlive", session.DefaultKeepAlive, "10s",
		"send a PING after this long without hearing from the peer (negative: never)", "keepalive"},
	{"InitialWindow", uint64(session.DefaultInitialWindow), "1 MiB",
		"receive flow-control window, auto-tuned up to MaxWindow (minimum 64 KiB)", ""},
	{"MaxWindow", uint64(session.DefaultMaxWindow), "16 MiB",
		"cap of receive-window auto-tuning", ""},
	{"SendBuffer", session.DefaultSendBuffer, "4 MiB",
		"written, unacknowledged bytes a connection holds before Write blocks", ""},
	{"Congestion", BBR, "BBR",
		"congestion controller: " + strings.Join(CongestionNames(), ", ") + " (BBR: model-based, after BBRv3, keeps its rate under random loss; CUBIC: RFC 9438 with HyStart++, RFC 9406; NewReno: RFC 9002 §7)", "cc"},
	{"DisablePacing", false, "false",
		"send whole congestion windows at once instead of pacing them (RFC 9002 §7.7)", ""},
	{"DisablePathMTUDiscovery", false, "false",
		"send MaxDatagramSize datagrams from the start instead of probing up from 1200 (RFC 8899)", ""},
	{"HandshakeTimeout", DefaultHandshakeTimeout, "10s",
		"give up a TLS handshake that has not completed after this long", "handshake-timeout"},
	{"MaxHalfOpen", DefaultMaxHalfOpen, "1024",
		"sessions per listener not yet accepted: in the handshake, waiting for the accept queue, or failed and not yet released (about 20 KiB each)", ""},
	{"MaxHalfOpenPerPrefix", DefaultMaxHalfOpen / 8, "MaxHalfOpen/8",
		"of those, clients a Retry token validated, per /24 (IPv4) or /48 (IPv6) source prefix", ""},
	{"AcceptQueueLen", DefaultAcceptQueueLen, "128",
		"established connections waiting for Accept (at the handshake's 64 KiB window until accepted)", ""},
	{"RequireAddressValidation", false, "false",
		"answer every new client with a stateless Retry (RFC 9000 §8.1.2)", ""},
	{"RetryThreshold", DefaultMaxHalfOpen / 2, "MaxHalfOpen/2",
		"send Retry while at least this many sessions are half-open (negative: never)", ""},
	{"RetryRate", DefaultRetryRate, "256",
		"send Retry beyond this many new unvalidated clients a second whose handshakes do not complete (negative: never)", ""},
	{"StatelessResetKey", nil, "nil",
		"secret for stateless reset tokens (RFC 9000 §10.3); share it across restarts of a server; nil: random per Listener", ""},
	{"CloseTimeout", DefaultCloseTimeout, "5s",
		"how long Close waits for the peer to acknowledge what was written", ""},
	{"SocketBuffer", DefaultSocketBuffer, "4 MiB",
		"SO_RCVBUF and SO_SNDBUF requested for sockets Listen and Dial open (negative: system default)", ""},
	{"DisableGSO", false, "false",
		"do not coalesce sends with UDP segmentation offload (Linux; TLSGRAM_DISABLE_GSO=1 for the whole process)", ""},
	{"DisableGRO", false, "false",
		"do not coalesce reads with UDP receive offload (Linux; TLSGRAM_DISABLE_GRO=1 for the whole process)", ""},
	{"InboundQueueLen", DefaultInboundQueueLen, "1024",
		"datagrams queued for one connection's driver; beyond it the socket reader waits (drops, counted, during the handshake)", ""},
	{"Tracer", nil, "nil",
		"per-connection event hook (SlogTracer, QlogTracer); TLSGRAM_QLOGDIR=dir turns on qlog files when nil", ""},
}

// Settings returns the table of Config fields with their defaults, meanings and the tlsgram
// command's flags, in the order of Config's fields.
func Settings() []Setting {
	return append([]Setting(nil), settings...)
}

func (c Congestion) valid() bool { return c >= 0 && int(c) < len(congestionNames) }

// MarshalText returns the controller's name.
func (c Congestion) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("tlsgram: unknown congestion controller %d", int(c))
	}
	return []byte(congestionNames[c]), nil
}

// UnmarshalText sets c from a controller's name (case-insensitive); the error lists the names.
func (c *Congestion) UnmarshalText(text []byte) error {
	for i, name := range congestionNames {
		if strings.EqualFold(string(text), name) {
			*c = Congestion(i)
			return nil
		}
	}
	return fmt.Errorf("unknown congestion controller %q (want %s)", text, strings.Join(congestionNames[:], ", "))
}
