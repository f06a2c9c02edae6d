package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Endpoint is one UDP socket that both accepts connections and dials them: a peer-to-peer
// application can use one port for both directions (and keep one NAT binding), as with
// quic-go's Transport. All connections share the socket and are told apart by connection ID,
// as a Listener's are. An Endpoint is safe for concurrent use.
//
// Close closes the Listener, if any, and stops new dials; connections already established keep
// working, and the socket is closed when the last of them is closed.
type Endpoint struct {
	ep      *endpoint
	conf    *Config
	network string

	mu     sync.Mutex // guards ln and closed
	ln     *Listener
	closed bool
}

// NewEndpoint opens a UDP socket on address (network "udp", "udp4" or "udp6") for Listen and
// Dial. conf applies to every connection of the socket; nil means the defaults.
func NewEndpoint(network, address string, conf *Config) (*Endpoint, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	cfg := conf.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return newSharedEndpoint(pc, network, &cfg, true), nil
}

// NewEndpointPacketConn is NewEndpoint on a socket the caller opened (or any net.PacketConn).
// The Endpoint takes ownership of pc. Socket buffer sizes are left as they are.
func NewEndpointPacketConn(pc net.PacketConn, conf *Config) (*Endpoint, error) {
	cfg := conf.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &net.OpError{Op: "listen", Net: pc.LocalAddr().Network(), Addr: pc.LocalAddr(), Err: err}
	}
	return newSharedEndpoint(pc, pc.LocalAddr().Network(), &cfg, false), nil
}

func newSharedEndpoint(pc net.PacketConn, network string, cfg *Config, setBuffers bool) *Endpoint {
	// Read like a listener's socket (large batches, GRO from the start): it serves many
	// connections, and accepts.
	ep := newEndpoint(pc, cfg, setBuffers, false, 0)
	ep.start()
	return &Endpoint{ep: ep, conf: cfg, network: network}
}

// Addr returns the socket's local address.
func (e *Endpoint) Addr() net.Addr { return e.ep.sock.pc.LocalAddr() }

// errListening is Listen's error when the Endpoint already has a Listener that is open.
var errListening = errors.New("tlsgram: the endpoint already has a listener")

// Listen returns a Listener accepting connections on the socket, as transport.Listen does. An
// Endpoint has one Listener at a time; closing it leaves the socket and the dialled
// connections alone, and Listen may be called again.
func (e *Endpoint) Listen(tlsConf *tls.Config) (*Listener, error) {
	if tlsConf == nil {
		return nil, e.opError("listen", nil, errors.New("tlsgram: nil *tls.Config"))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, e.opError("listen", nil, net.ErrClosed)
	}
	if e.ln != nil && !e.ln.isClosed() {
		return nil, e.opError("listen", nil, errListening)
	}
	e.ln = newListenerOn(e.ep, e.network, tlsConf, e.conf)
	e.ln.shared = true
	return e.ln, nil
}

// Dial opens a connection to address from the socket, as transport.Dial does (the same
// handshake, timeouts and errors), and returns it once the TLS handshake has completed. The
// address must be of the socket's family; tlsConf's ServerName defaults to its host. Closing
// the Conn leaves the socket open.
func (e *Endpoint) Dial(ctx context.Context, address string, tlsConf *tls.Config) (*Conn, error) {
	if tlsConf == nil {
		return nil, e.opError("dial", nil, errors.New("tlsgram: nil *tls.Config"))
	}
	if e.ep.sock.udp == nil {
		return nil, e.opError("dial", nil, fmt.Errorf("tlsgram: %T is not a UDP socket: use DialAddr", e.ep.sock.pc))
	}
	host, ap, err := resolve(ctx, e.network, address)
	if err != nil {
		return nil, e.opError("dial", nil, err)
	}
	tc := tlsConf.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return e.DialAddr(ctx, net.UDPAddrFromAddrPort(ap), tc)
}

// DialAddr is Dial to raddr, which must be of the socket's kind: a *net.UDPAddr for a UDP
// socket, or what the caller's net.PacketConn takes (NewEndpointPacketConn).
func (e *Endpoint) DialAddr(ctx context.Context, raddr net.Addr, tlsConf *tls.Config) (*Conn, error) {
	if tlsConf == nil {
		return nil, e.opError("dial", raddr, errors.New("tlsgram: nil *tls.Config"))
	}
	peer := message{addr: raddr}
	if e.ep.sock.udp != nil {
		ua, ok := raddr.(*net.UDPAddr)
		if !ok {
			return nil, e.opError("dial", raddr, fmt.Errorf("tlsgram: %T is not a *net.UDPAddr", raddr))
		}
		peer = message{ap: ua.AddrPort()}
	}
	if e.isClosed() {
		return nil, e.opError("dial", raddr, net.ErrClosed)
	}
	return dialOn(ctx, e.ep, e.network, peer, raddr, tls13(tlsConf), e.conf, nil)
}

// Close closes the Listener, if any, and makes later Listen and Dial calls fail. Established
// connections keep working; the socket is closed with the last of them. A second Close returns
// an error matching net.ErrClosed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.opError("close", nil, net.ErrClosed)
	}
	e.closed = true
	ln := e.ln
	e.mu.Unlock()
	if ln != nil {
		_ = ln.Close() // an error means it was closed before
	}
	e.ep.shutdown()
	return nil
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *Endpoint) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: e.network, Source: e.Addr(), Addr: addr, Err: err}
}

// detach forgets l, an Endpoint's closed Listener: new clients are no longer admitted, and the
// socket stays open for the Endpoint's other connections.
func (ep *endpoint) detach(l *Listener) {
	ep.mu.Lock()
	if ep.ln == l {
		ep.ln = nil
	}
	ep.mu.Unlock()
}
