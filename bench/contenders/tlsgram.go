package contenders

import (
	"context"
	"fmt"
	"net"

	"github.com/tlsgram/tlsgram/bench"
	"github.com/tlsgram/tlsgram/transport"
)

// tlsgram is this project: crypto/tls 1.3 over our own reliable,
// congestion-controlled datagram stream. It runs with its defaults and in
// the modes worth comparing; each mode is one registered contender.
type tlsgram struct {
	name     string
	conf     transport.Config
	settings string
	rtts     float64
	optional bool
}

func init() {
	bench.Register(10, tlsgram{
		name:     "tlsgram",
		settings: "defaults: 1200-B datagrams probing up to 1452 (RFC 8899 path MTU discovery), BBR, pacing, packet authentication, 1 MiB→16 MiB receive window, send buffer 4 cwnd (256 KiB–4 MiB)",
		rtts:     1,
	})
	bench.Register(11, tlsgram{
		name:     "tlsgram-1452",
		conf:     transport.Config{MaxDatagramSize: 1452, DisablePathMTUDiscovery: true},
		settings: "1452-B datagrams from the start (the Internet-sized maximum the other UDP contenders use; no path MTU discovery), otherwise defaults",
		rtts:     1,
	})
	bench.Register(12, tlsgram{
		name:     "tlsgram-newreno",
		conf:     transport.Config{MaxDatagramSize: 1452, Congestion: transport.NewReno},
		settings: "MaxDatagramSize 1452, NewReno (RFC 9002 §7)",
		rtts:     1,
		optional: true,
	})
	bench.Register(14, tlsgram{
		name:     "tlsgram-cubic",
		conf:     transport.Config{Congestion: transport.Cubic},
		settings: "Congestion Cubic (RFC 9438 with HyStart++), otherwise defaults",
		rtts:     1,
		optional: true,
	})
	bench.Register(15, tlsgram{
		name:     "tlsgram-bbr",
		conf:     transport.Config{Congestion: transport.BBR},
		settings: "Congestion BBR (model-based, after BBRv3), otherwise defaults",
		rtts:     1,
		optional: true,
	})
	bench.Register(13, tlsgram{
		name:     "tlsgram-retry",
		conf:     transport.Config{RequireAddressValidation: true},
		settings: "RequireAddressValidation: stateless Retry before any TLS work (+1 RTT)",
		rtts:     2,
		optional: true,
	})
}

func (t tlsgram) Name() string  { return t.name }
func (tlsgram) Reliable() bool  { return true }
func (tlsgram) Network() string { return "udp" }
func (tlsgram) MaxMessage() int { return 0 }
func (t tlsgram) Info() bench.Info {
	size := t.conf.MaxDatagramSize
	if size == 0 {
		size = transport.DefaultMaxDatagramSize
	}
	return bench.Info{
		Label:         "tlsgram: crypto/tls 1.3 over tlsgram datagrams",
		HandshakeRTTs: t.rtts,
		MaxDatagram:   size,
		Settings:      t.settings,
		Optional:      t.optional,
	}
}

func (t tlsgram) Listen(addr string) (bench.Listener, error) {
	conf, err := bench.ServerTLS()
	if err != nil {
		return nil, err
	}
	c := t.conf
	ln, err := transport.Listen("udp", addr, conf, &c)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return tlsgramListener{ln}, nil
}

// tlsgramListener exposes the listener's counters to the bench.
type tlsgramListener struct{ *transport.Listener }

func (l tlsgramListener) ListenerStats() any { return l.Stats() }

func (t tlsgram) Dial(ctx context.Context, addr string) (net.Conn, error) {
	conf, err := bench.ClientTLS()
	if err != nil {
		return nil, err
	}
	c := t.conf
	conn, err := transport.Dial(ctx, "udp", addr, conf, &c)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// ConnStats exposes the connection's counters (retransmissions, losses,
// congestion window...) for the JSON output.
func (tlsgram) ConnStats(c net.Conn) any {
	if tc, ok := c.(*transport.Conn); ok {
		return tc.Stats()
	}
	return fmt.Sprintf("not a *transport.Conn: %T", c)
}
