package bench

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
)

// Contender is one transport under test. Implementations live in
// bench/contenders, one file each, and register themselves with [Register].
//
// A reliable contender's conns are ordered byte streams. An unreliable
// contender's conns carry messages: each Write of at most MaxMessage bytes
// is one datagram on the wire, each Read returns exactly one message (the
// buffer must hold MaxMessage bytes), and messages may be lost, duplicated
// or reordered.
type Contender interface {
	// Name is short, stable and used on the command line and in reports.
	Name() string
	// Reliable reports whether conns are reliable byte streams.
	Reliable() bool
	// Network is "udp" or "tcp": it selects the relay used on impaired
	// links and which impairments can apply.
	Network() string
	// MaxMessage is the largest Write an unreliable contender maps to one
	// datagram of at most MaxDatagram bytes. Reliable contenders return 0.
	MaxMessage() int
	// Listen starts a server on addr (always "127.0.0.1:0" here).
	Listen(addr string) (Listener, error)
	// Dial connects to addr. ctx bounds connection establishment; the
	// returned conn must not depend on ctx afterwards.
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Info documents the contender for the report.
	Info() Info
}

// Listener accepts conns for one Contender. Close must unblock Accept.
type Listener interface {
	Accept() (net.Conn, error)
	Addr() net.Addr
	Close() error
}

// Info is the static description of a contender, printed in the report.
type Info struct {
	// Label is the human-readable name, e.g. "pion/dtls v2.2.12 (DTLS 1.2)".
	Label string
	// HandshakeRTTs is the number of round trips from the first packet
	// until the client can send application data, per the protocol
	// (for example 1 for TLS 1.3 over QUIC, 2 for TCP + TLS 1.3).
	HandshakeRTTs float64
	// MaxDatagram is the largest UDP payload (or TCP segment, for TCP) the
	// contender is configured to put on the wire.
	MaxDatagram int
	// Settings lists the non-default knobs, for reproducibility.
	Settings string
	// Baseline marks contenders that ratios are computed against.
	Baseline bool
	// Optional contenders run only when named with -contenders.
	Optional bool
}

// StatsProvider is implemented by contenders that can report transport
// statistics for a conn (retransmissions, losses...). They are stored in
// the JSON output next to the bulk result, to explain surprising numbers.
type StatsProvider interface {
	ConnStats(c net.Conn) any
}

// ListenerStatsProvider is implemented by listeners that count what they
// did (handshakes dropped, retries sent...); MeasureConcurrent stores the
// counters with its result.
type ListenerStatsProvider interface {
	ListenerStats() any
}

var (
	registryMu sync.Mutex
	registry   = map[string]Contender{}
	order      = map[string]int{}
)

// Register adds a contender. rank orders contenders in reports (lower
// first). Registering the same name twice panics: it is a programming
// error in bench/contenders, caught by any test.
func Register(rank int, c Contender) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[c.Name()]; dup {
		panic(fmt.Sprintf("bench: contender %q registered twice", c.Name()))
	}
	registry[c.Name()] = c
	order[c.Name()] = rank
}

// Contenders returns the registered contenders in report order.
func Contenders() []Contender {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Contender, 0, len(registry))
	for _, c := range registry {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		oi, oj := order[out[i].Name()], order[out[j].Name()]
		if oi != oj {
			return oi < oj
		}
		return out[i].Name() < out[j].Name()
	})
	return out
}

// Lookup returns the registered contender with that name.
func Lookup(name string) (Contender, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	c, ok := registry[name]
	return c, ok
}
