package tlsgramhttp

//lint:file-ignore SA1019 x/net deprecates its HTTP/2 client for net/http's, which speaks HTTP/2 only over a *tls.Conn (Go 1.26); a *transport.Conn needs x/net's, which takes any net.Conn.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"

	"github.com/tlsgram/tlsgram/transport"
	"golang.org/x/net/http2"
)

// Transport is an http.RoundTripper that carries "https" requests over tlsgram: HTTP/2 to
// servers that negotiate "h2" with ALPN, HTTP/1.1 to the others (it offers both, and remembers a
// server's answer). Response.TLS is set either way. The zero value is ready to use, with the
// system's roots and transport's default Config; fields must not change after the first
// request. A Transport caches connections and is safe for concurrent use.
type Transport struct {
	// TLSClientConfig is the TLS configuration of the connections; its NextProtos are replaced.
	// ServerName defaults to the request's host.
	TLSClientConfig *tls.Config
	// Config tunes the tlsgram connections; nil means transport's defaults.
	Config *transport.Config
	// DisableHTTP2 offers only HTTP/1.1.
	DisableHTTP2 bool

	once sync.Once
	h1   *http.Transport
	h2   *http2.Transport
	pool h2Pool

	mu     sync.Mutex                   // guards the fields below
	http1  map[string]bool              // servers ("host:port") that chose HTTP/1.1
	spares map[string][]*transport.Conn // connections dialled for HTTP/2 that got HTTP/1.1
}

// errHTTP1 tells RoundTrip that the server chose HTTP/1.1 while the HTTP/2 pool dialled: the
// request goes to the HTTP/1.1 transport, which takes the connection from spares.
var errHTTP1 = errors.New("tlsgramhttp: server chose HTTP/1.1")

func (t *Transport) init() {
	t.once.Do(func() {
		t.http1 = make(map[string]bool)
		t.spares = make(map[string][]*transport.Conn)
		t.pool = h2Pool{t: t, conns: make(map[string][]*http2.ClientConn), dialing: make(map[string]*dialCall)}
		t.h2 = &http2.Transport{ConnPool: &t.pool}
		t.h1 = &http.Transport{
			DialTLSContext:    t.dialHTTP1,
			ForceAttemptHTTP2: false,
			// net/http's HTTP/2 cannot use these connections (they are not *tls.Conn).
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		}
	})
}

// RoundTrip sends req, which must be an "https" request, and returns the response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	if req.URL.Scheme != "https" {
		closeBody(req)
		return nil, fmt.Errorf("tlsgramhttp: unsupported scheme %q (tlsgram always runs TLS: use https)", req.URL.Scheme)
	}
	addr := authority(req)
	if !t.DisableHTTP2 && !t.prefersHTTP1(addr) {
		resp, err := t.h2.RoundTrip(req)
		if !errors.Is(err, errHTTP1) {
			return resp, err
		}
		// The pool failed before it touched the request, so its body is unread: send it again.
	}
	return t.roundTripHTTP1(req)
}

// roundTripHTTP1 sends req with net/http's HTTP/1.1 client and sets Response.TLS from the
// connection it used, which net/http does only for a *tls.Conn.
func (t *Transport) roundTripHTTP1(req *http.Request) (*http.Response, error) {
	var mu sync.Mutex
	var conn net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		mu.Lock()
		conn = info.Conn
		mu.Unlock()
	}}
	resp, err := t.h1.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		return nil, err
	}
	mu.Lock()
	c, ok := conn.(*transport.Conn)
	mu.Unlock()
	if resp.TLS == nil && ok {
		state := c.ConnectionState()
		resp.TLS = &state
	}
	return resp, nil
}

// CloseIdleConnections closes the connections that carry no request.
func (t *Transport) CloseIdleConnections() {
	t.init()
	t.h1.CloseIdleConnections()
	t.pool.closeIdle()
	t.mu.Lock()
	spares := t.spares
	t.spares = make(map[string][]*transport.Conn)
	t.mu.Unlock()
	for _, cs := range spares {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}

func (t *Transport) prefersHTTP1(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.http1[addr]
}

// dial opens a tlsgram connection to addr offering protos. The network net/http asks for is
// "tcp"; the connection is UDP, of the family addr resolves to.
func (t *Transport) dial(ctx context.Context, addr string, protos ...string) (*transport.Conn, error) {
	var tc *tls.Config
	if t.TLSClientConfig != nil {
		tc = t.TLSClientConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	tc.NextProtos = protos
	return transport.Dial(ctx, "udp", addr, tc, t.Config)
}

// dialHTTP1 is the HTTP/1.1 transport's dialer: it takes a connection the HTTP/2 pool dialled
// to addr and that negotiated HTTP/1.1, if there is one, and dials otherwise.
func (t *Transport) dialHTTP1(ctx context.Context, _, addr string) (net.Conn, error) {
	t.mu.Lock()
	if cs := t.spares[addr]; len(cs) > 0 {
		c := cs[len(cs)-1]
		t.spares[addr] = cs[:len(cs)-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, addr, ProtoHTTP11)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// closeBody closes a request body RoundTrip will not send, as http.RoundTripper requires.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// authority is req's "host:port", with the https port by default.
func authority(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(host, port)
}

// h2Pool is the HTTP/2 client's connection pool: it reuses a connection to a server while it
// takes new streams, and dials one at a time per server otherwise. A dial that negotiates
// HTTP/1.1 marks the server as such and leaves the connection for the HTTP/1.1 transport.
type h2Pool struct {
	t *Transport

	mu      sync.Mutex // guards the fields below
	conns   map[string][]*http2.ClientConn
	dialing map[string]*dialCall
}

// dialCall is a dial in progress; done is closed when it ended.
type dialCall struct {
	done chan struct{}
	err  error
}

func (p *h2Pool) GetClientConn(req *http.Request, addr string) (*http2.ClientConn, error) {
	for {
		p.mu.Lock()
		for _, cc := range p.conns[addr] {
			if cc.ReserveNewRequest() {
				p.mu.Unlock()
				return cc, nil
			}
		}
		call := p.dialing[addr]
		if call == nil {
			call = &dialCall{done: make(chan struct{})}
			p.dialing[addr] = call
			p.mu.Unlock()
			call.err = p.dial(req.Context(), addr)
			p.mu.Lock()
			delete(p.dialing, addr)
			close(call.done)
		}
		p.mu.Unlock()
		select {
		case <-call.done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		if call.err != nil {
			return nil, call.err
		}
	}
}

// dial adds a new HTTP/2 connection to addr to the pool, or reports errHTTP1.
func (p *h2Pool) dial(ctx context.Context, addr string) error {
	c, err := p.t.dial(ctx, addr, ProtoHTTP2, ProtoHTTP11)
	if err != nil {
		return err
	}
	if c.ConnectionState().NegotiatedProtocol != ProtoHTTP2 {
		p.t.mu.Lock()
		p.t.http1[addr] = true
		p.t.spares[addr] = append(p.t.spares[addr], c)
		p.t.mu.Unlock()
		return errHTTP1
	}
	cc, err := p.t.h2.NewClientConn(c)
	if err != nil {
		_ = c.Close()
		return err
	}
	p.mu.Lock()
	p.conns[addr] = append(p.conns[addr], cc)
	p.mu.Unlock()
	return nil
}

func (p *h2Pool) MarkDead(cc *http2.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, ccs := range p.conns {
		for i, c := range ccs {
			if c == cc {
				p.conns[addr] = append(ccs[:i:i], ccs[i+1:]...)
				return
			}
		}
	}
}

// closeIdle closes the HTTP/2 connections without streams.
func (p *h2Pool) closeIdle() {
	p.mu.Lock()
	var all []*http2.ClientConn
	for _, ccs := range p.conns {
		all = append(all, ccs...)
	}
	p.mu.Unlock()
	for _, cc := range all {
		if st := cc.State(); st.StreamsActive == 0 && st.StreamsReserved == 0 && st.StreamsPending == 0 {
			_ = cc.Shutdown(context.Background())
			p.MarkDead(cc)
		}
	}
}
