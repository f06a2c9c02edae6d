package transport

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tlsgram/tlsgram/session"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// Defaults for the transport's own Config fields. The session fields default to the values of the
// session package (session.Default*), repeated in Config's field comments.
const (
	DefaultHandshakeTimeout = session.DefaultHandshakeTimeout
	DefaultMaxHalfOpen      = 1024
	DefaultAcceptQueueLen   = 128
	DefaultCloseTimeout     = 5 * time.Second
	DefaultSocketBuffer     = 4 << 20
	DefaultInboundQueueLen  = 1024
	DefaultRetryRate        = 256
	// DefaultMaxDatagramSize is the largest datagram path MTU discovery probes for: a 1500-byte
	// Ethernet MTU less the IPv6 and UDP headers. Connections start at 1200 bytes, which every
	// Internet path carries (RFC 9000 §14), and send larger datagrams only once a probe of that
	// size was acknowledged (RFC 8899).
	DefaultMaxDatagramSize = session.DefaultMaxDatagramSize
)

// Congestion selects a congestion controller.
type Congestion int

const (
	// BBR, the default, is a model-based controller after BBRv3 (draft-ietf-ccwg-bbr): it paces
	// at its estimate of the path's bandwidth and does not read random loss as congestion, so it
	// keeps its rate on lossy paths where loss-based controllers collapse (see congestion.NewBBR).
	// In the bench suite (20 ms RTT, medians of 3) it beat CUBIC 1.4× on a clean path, 66× at 1%
	// random loss and 84× at 5%, and matched it behind a 50 Mbit/s bottleneck.
	BBR Congestion = iota
	// Cubic is RFC 9438 CUBIC with HyStart++ (RFC 9406), as quic-go and Linux TCP default to.
	Cubic
	// NewReno is RFC 9002 §7's controller.
	NewReno
)

// congestionNames maps each Congestion to its name in package congestion (congestion.Names).
var congestionNames = [...]string{Cubic: congestion.NameCubic, NewReno: congestion.NameNewReno, BBR: congestion.NameBBR}

// String returns the controller's name, as ParseCongestion accepts it.
func (c Congestion) String() string {
	if !c.valid() {
		return "Congestion(" + strconv.Itoa(int(c)) + ")"
	}
	return congestionNames[c]
}

// CongestionNames returns the names ParseCongestion accepts (for a flag's help text).
func CongestionNames() []string { return congestion.Names() }

// ParseCongestion returns the controller called name ("bbr", "cubic", "newreno"); the error
// lists the names there are.
func ParseCongestion(name string) (Congestion, error) {
	if _, err := congestion.ByName(name); err != nil {
		return 0, err
	}
	for i, n := range congestionNames {
		if n == name {
			return Congestion(i), nil
		}
	}
	return 0, &congestion.UnknownError{Name: name}
}

// Config tunes a Listener or a dialed Conn. A nil *Config, and the zero value of every field,
// means the documented default. A Config may be reused; Listen, NewListener and Dial copy it.
type Config struct {
	// MaxDatagramSize is the largest UDP payload sent. Default 1452, a 1500-byte Ethernet MTU over
	// IPv6. Connections start at 1200 bytes, which every IPv4 and IPv6 Internet path carries
	// (RFC 9000 §14), and probe up to MaxDatagramSize (path MTU discovery, RFC 8899; see
	// DisablePathMTUDiscovery); 1200 turns probing off. Larger values only make sense on loopback
	// or jumbo-frame networks. Range 1200..65507. Receive
	// buffers are max(MaxDatagramSize, 2048) bytes: a peer configured with a larger size than
	// that is not understood (its datagrams are counted as truncated drops).
	MaxDatagramSize int
	// MaxAckDelay is how long a receiver may delay an ACK (RFC 9000 §13.2.1). Default 25ms.
	MaxAckDelay time.Duration
	// IdleTimeout closes a connection when nothing was received for this long. Default 30s.
	IdleTimeout time.Duration
	// KeepAlive sends a PING when nothing was received for this long, keeping idle connections and
	// NAT bindings alive. Default 10s; negative disables.
	KeepAlive time.Duration
	// InitialWindow is the receive flow-control window: the bytes the peer may send beyond what
	// the application has read. Default 1 MiB, minimum 64 KiB; it grows up to MaxWindow when the
	// application reads fast.
	InitialWindow uint64
	// MaxWindow caps receive-window auto-tuning. Default 16 MiB.
	MaxWindow uint64
	// SendBuffer is how many written but unacknowledged bytes a connection holds before Write
	// blocks. Default 4 MiB.
	SendBuffer int
	// Congestion picks the congestion controller. Default BBR.
	Congestion Congestion
	// DisablePacing sends whole congestion windows at once. Default false: pacing is on
	// (RFC 9002 §7.7).
	DisablePacing bool
	// DisablePathMTUDiscovery sends MaxDatagramSize datagrams from the start instead of starting
	// at 1200 bytes and probing up to it. Default false. Only for paths whose MTU is known, such
	// as loopback.
	DisablePathMTUDiscovery bool

	// HandshakeTimeout bounds the TLS handshake: Dial fails, and a listener drops a handshaking
	// client, when it has not completed in this long. Default 10s. For Dial, the context's
	// deadline applies as well, whichever comes first.
	HandshakeTimeout time.Duration
	// MaxHalfOpen caps the sessions a Listener holds that are not in its accept queue: in the
	// handshake, completed but waiting for room in the accept queue, or failed and not yet
	// released. New clients beyond it are dropped (and counted in ListenerStats) until slots
	// free up; the client retransmits. Default 1024. Measured with spoofed handshakes, one costs
	// about 20 KiB of heap and stacks, up to about 85 KiB if its client fills the handshake's
	// 64 KiB receive window (README, Security).
	MaxHalfOpen int
	// MaxHalfOpenPerPrefix caps the half-open sessions (see MaxHalfOpen) of clients whose
	// address a Retry token proved, per source prefix (/24 for IPv4, /48 for IPv6): one host,
	// or one network, echoing Retry tokens cannot take every slot. Beyond it such clients are
	// dropped and counted. (Clients not validated may be spoofed, so they are not counted per
	// prefix: Retry handles them.) Default MaxHalfOpen/8, at least 1.
	MaxHalfOpenPerPrefix int
	// AcceptQueueLen is how many established connections wait for Accept. A handshake that
	// completes while the queue is full keeps its half-open slot and waits for room until its
	// HandshakeTimeout, then the connection is closed with a CLOSE frame the client sees ("accept
	// queue full"). Until Accept returns a connection, it keeps the 64 KiB window of the
	// handshake. Default 128.
	AcceptQueueLen int
	// RequireAddressValidation makes a Listener answer every new client with a stateless Retry
	// (RFC 9000 §8.1.2): no state is kept and no TLS work is done until the client has echoed a
	// token proving it receives datagrams at its address. Costs one round trip. Default false.
	RequireAddressValidation bool
	// RetryThreshold turns Retry on automatically while at least this many sessions are
	// half-open (see MaxHalfOpen; a sign of a flood from spoofed addresses). Default
	// MaxHalfOpen/2; negative never.
	RetryThreshold int
	// RetryRate turns Retry on automatically for new clients beyond this many a second (with a
	// burst of as many) whose address is not validated: a flood of spoofed handshakes that fail
	// fast costs TLS work without filling the half-open slots. Only handshakes that do not
	// complete count: a completed one proved its client's address (a spoofed client never
	// completes one), so a busy listener's real clients get no Retry. Default 256; negative
	// never.
	RetryRate int
	// StatelessResetKey is the secret from which a Listener derives the stateless reset token of
	// each connection (RFC 9000 §10.3): HMAC-SHA256 of the connection ID under this key. The
	// listener gives each client its token after the handshake; when a datagram arrives for a
	// connection the listener has no state for — the server process restarted — it answers with
	// a stateless reset, and the client's Read and Write fail at once (*session.ResetError)
	// instead of after IdleTimeout. A restarted server can only do that with the key of the
	// process before it: set the same key (at least 16 random bytes, kept secret: whoever has it
	// can reset the listener's connections) in every process that serves the address. Default
	// nil: a random key per Listener, with which only connections made through that Listener
	// are reset (when a datagram comes after it forgot them).
	StatelessResetKey []byte
	// CloseTimeout is how long Conn.Close waits for the peer to acknowledge written data, the TLS
	// close_notify and the end of the stream. Default 5s.
	CloseTimeout time.Duration
	// SocketBuffer is the SO_RCVBUF and SO_SNDBUF size requested for sockets that Listen and Dial
	// open (on Linux with SO_RCVBUFFORCE/SO_SNDBUFFORCE when permitted, so the request may exceed
	// net.core.rmem_max). The granted sizes appear in Stats. Default 4 MiB; negative leaves the
	// system default. NewListener leaves a caller's socket alone.
	SocketBuffer int
	// DisableGSO keeps sends from using UDP generic segmentation offload. By default, on Linux
	// 4.18 and later, a batch of full-size datagrams for one peer is handed to the kernel as one
	// large send that it (or the network card) cuts into datagrams, which makes bulk sending
	// much cheaper; the peer receives ordinary datagrams. Should the kernel refuse that on a
	// socket (some devices and tunnels cannot checksum segments), the transport resends those
	// datagrams one by one and stops using GSO on that socket; Stats.SegmentationOffload shows
	// whether it is in use. Setting the environment variable TLSGRAM_DISABLE_GSO=1 has the same
	// effect for every socket of the process. Ignored where GSO does not exist. Default false.
	DisableGSO bool
	// DisableGRO keeps reads from using UDP generic receive offload. By default, on Linux 5.0
	// and later, the kernel hands a run of a peer's datagrams to the socket as one large read
	// (a GSO send on loopback arrives uncut), which the transport cuts back into datagrams:
	// much cheaper than a system call and a trip through the stack per datagram. It needs
	// 64 KiB read buffers, so a Listener's socket reads this way from the start with 512 KiB of
	// them, and a dialled Conn's socket only once it receives in bulk, with 256 KiB, which it
	// gives back after 1-2 s of quiet on Linux (and takes again when traffic comes); a Conn
	// that never receives in bulk keeps to its small buffers. Stats.ReceiveOffload shows whether it is in use.
	// Setting the environment variable TLSGRAM_DISABLE_GRO=1 has the same effect for every
	// socket of the process. Ignored where GRO does not exist. Default false.
	DisableGRO bool
	// InboundQueueLen bounds the datagrams queued between the socket reader and one
	// connection's driver goroutine. When it is full, the reader waits for the driver to take
	// the queue (within one of its steps), and further datagrams wait in the socket's buffer
	// (SocketBuffer): a peer within the flow-control window loses nothing to it. Only during
	// the handshake are datagrams beyond it dropped and counted (Stats.DroppedQueueFull), so an
	// address that has not proven itself cannot hold up the socket's other connections.
	// Default 1024, a millisecond's worth at a million datagrams a second.
	InboundQueueLen int
	// Tracer, if set, is called for each new connection (dialled or accepted) and returns the
	// Tracer for its events: handshake, packets sent, received and lost, congestion state,
	// close with its reason (nil: none for that connection). SlogTracer logs them, QlogTracer
	// writes qlog files. Default nil: no tracing, which costs a nil check per event; with
	// Tracer nil, the environment variable TLSGRAM_QLOGDIR=dir turns on QlogTracer(dir).
	Tracer func(ConnInfo) Tracer
}

// withDefaults returns a copy of c with every zero field set to its default.
func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.MaxDatagramSize == 0 {
		d.MaxDatagramSize = DefaultMaxDatagramSize
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if d.MaxHalfOpen == 0 {
		d.MaxHalfOpen = DefaultMaxHalfOpen
	}
	if d.AcceptQueueLen == 0 {
		d.AcceptQueueLen = DefaultAcceptQueueLen
	}
	if d.RetryThreshold == 0 {
		d.RetryThreshold = max(d.MaxHalfOpen/2, 1)
	}
	if d.MaxHalfOpenPerPrefix == 0 {
		d.MaxHalfOpenPerPrefix = max(d.MaxHalfOpen/8, 1)
	}
	if d.RetryRate == 0 {
		d.RetryRate = DefaultRetryRate
	}
	if d.CloseTimeout == 0 {
		d.CloseTimeout = DefaultCloseTimeout
	}
	if d.SocketBuffer == 0 {
		d.SocketBuffer = DefaultSocketBuffer
	}
	if d.InboundQueueLen == 0 {
		d.InboundQueueLen = DefaultInboundQueueLen
	}
	return d
}

// validate reports the first field out of range.
func (c *Config) validate() error {
	if err := c.sessionConfig().Validate(); err != nil {
		return err
	}
	switch {
	case !c.Congestion.valid():
		return fmt.Errorf("tlsgram: Config.Congestion %d unknown", c.Congestion)
	case c.HandshakeTimeout < 0:
		return fmt.Errorf("tlsgram: Config.HandshakeTimeout is negative")
	case c.MaxHalfOpen < 0:
		return fmt.Errorf("tlsgram: Config.MaxHalfOpen is negative")
	case c.MaxHalfOpenPerPrefix < 0:
		return fmt.Errorf("tlsgram: Config.MaxHalfOpenPerPrefix is negative")
	case c.AcceptQueueLen < 0:
		return fmt.Errorf("tlsgram: Config.AcceptQueueLen is negative")
	case c.CloseTimeout < 0:
		return fmt.Errorf("tlsgram: Config.CloseTimeout is negative")
	case c.InboundQueueLen < 0:
		return fmt.Errorf("tlsgram: Config.InboundQueueLen is negative")
	case c.StatelessResetKey != nil && len(c.StatelessResetKey) < 16:
		return fmt.Errorf("tlsgram: Config.StatelessResetKey is %d bytes, want at least 16", len(c.StatelessResetKey))
	}
	return nil
}

// sessionConfig is the core's share of c.
func (c *Config) sessionConfig() *session.Config {
	sc := &session.Config{
		MaxDatagramSize:  c.MaxDatagramSize,
		MaxAckDelay:      c.MaxAckDelay,
		IdleTimeout:      c.IdleTimeout,
		HandshakeTimeout: c.HandshakeTimeout,
		KeepAlive:        c.KeepAlive,
		InitialWindow:    c.InitialWindow,
		MaxWindow:        c.MaxWindow,
		SendBuffer:       c.SendBuffer,
		DisablePacing:    c.DisablePacing,

		DisablePathMTUDiscovery: c.DisablePathMTUDiscovery,
	}
	if int(c.Congestion) >= 0 && int(c.Congestion) < len(congestionNames) {
		sc.Congestion, _ = congestion.ByName(congestionNames[c.Congestion])
	}
	return sc
}

// recvBufSize is the size of the pooled receive buffers (see Config.MaxDatagramSize).
func (c *Config) recvBufSize() int {
	return max(c.MaxDatagramSize, 2048)
}
