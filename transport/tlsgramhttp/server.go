// Package tlsgramhttp serves and fetches HTTP over tlsgram: HTTP/2 when both ends negotiate "h2"
// with ALPN, HTTP/1.1 otherwise, with the standard library's http.Server, http.Handler,
// http.Client and http.Request, and with Request.TLS and Response.TLS set.
//
// It exists because net/http hands a connection to HTTP/2 only when it is a *tls.Conn (and only
// then sets Response.TLS in its client): a *transport.Conn, which runs crypto/tls inside, would
// negotiate "h2" and then be spoken to in HTTP/1.1. Serve and Transport put
// golang.org/x/net/http2's server and client on the connections that negotiated "h2", and
// net/http's own on the others.
//
// A server:
//
//	ln, err := transport.Listen("udp", ":443", tlsgramhttp.ServerTLSConfig(tlsConf), nil)
//	...
//	err = tlsgramhttp.Serve(ln, &http.Server{Handler: mux})
//
// A client:
//
//	client := &http.Client{Transport: &tlsgramhttp.Transport{TLSClientConfig: tlsConf}}
//	resp, err := client.Get("https://example.com:443/")
package tlsgramhttp

//lint:file-ignore SA1019 x/net deprecates its HTTP/2 server for net/http's, which serves HTTP/2 only on a *tls.Conn (Go 1.26); a *transport.Conn needs x/net's ServeConn.

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/tlsgram/tlsgram/transport"
	"golang.org/x/net/http2"
)

// ALPN protocol IDs (RFC 7301): HTTP/2 over TLS (RFC 9113 §3.2) and HTTP/1.1.
const (
	ProtoHTTP2  = "h2"
	ProtoHTTP11 = "http/1.1"
)

// ServerTLSConfig returns a clone of c that offers HTTP/2 and HTTP/1.1 with ALPN, in that order
// of preference, if c offers no protocols of its own (nil stays nil). Pass it to
// transport.Listen for Serve.
func ServerTLSConfig(c *tls.Config) *tls.Config {
	c = c.Clone()
	if c != nil && len(c.NextProtos) == 0 {
		c.NextProtos = []string{ProtoHTTP2, ProtoHTTP11}
	}
	return c
}

// ListenAndServe listens on the UDP address addr ("host:port"; network "udp", "udp4" or "udp6")
// and serves srv's handler there, as Serve does. tlsConf holds the certificate; nil means
// srv.TLSConfig. It returns when the listener fails or srv is shut down (http.ErrServerClosed).
func ListenAndServe(network, addr string, srv *http.Server, tlsConf *tls.Config, conf *transport.Config) error {
	if tlsConf == nil {
		tlsConf = srv.TLSConfig
	}
	ln, err := transport.Listen(network, addr, ServerTLSConfig(tlsConf), conf)
	if err != nil {
		return err
	}
	return Serve(ln, srv)
}

// Serve accepts connections on ln and serves srv's handler on them: HTTP/2 on those that
// negotiated "h2" (with x/net/http2's server, configured from srv by http2.ConfigureServer), and
// HTTP/1.1 on the others (with srv itself). Handlers see Request.TLS, with the negotiated
// protocol and the peer's certificates. The listener's TLS config must offer "h2" for HTTP/2:
// see ServerTLSConfig.
//
// Like http.Server.Serve it returns a non-nil error: http.ErrServerClosed after srv.Shutdown
// or srv.Close, which close ln; otherwise the error that ended ln. srv.Shutdown sends HTTP/2
// connections a GOAWAY but, as for net/http's own HTTP/2, does not wait for their requests.
func Serve(ln *transport.Listener, srv *http.Server) error {
	h2 := &http2.Server{}
	if err := http2.ConfigureServer(srv, h2); err != nil {
		return err
	}
	l1 := &h1Listener{
		ln:     ln,
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
		ended:  make(chan struct{}),
	}
	go l1.acceptLoop(srv, h2)
	return srv.Serve(l1)
}

// h1Listener is the net.Listener srv.Serve sees: it yields the connections that did not
// negotiate "h2", which acceptLoop takes from the tlsgram listener.
type h1Listener struct {
	ln        *transport.Listener
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	ended     chan struct{} // closed when acceptLoop returns, after err is set
	err       error         // why ln.Accept failed
}

func (l *h1Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ended:
		return nil, l.err
	}
}

// Close closes the tlsgram listener, which ends acceptLoop.
func (l *h1Listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

func (l *h1Listener) Addr() net.Addr { return l.ln.Addr() }

// acceptLoop hands every accepted connection to HTTP/2 or to srv.Serve by its ALPN protocol.
func (l *h1Listener) acceptLoop(srv *http.Server, h2 *http2.Server) {
	defer close(l.ended)
	base := context.Background()
	if srv.BaseContext != nil {
		base = srv.BaseContext(l)
	}
	for {
		c, err := l.ln.AcceptContext(base)
		if err != nil {
			l.err = err
			return
		}
		if c.ConnectionState().NegotiatedProtocol == ProtoHTTP2 {
			go serveHTTP2(srv, h2, base, c)
			continue
		}
		select {
		case l.conns <- c:
		case <-l.closed:
			_ = c.Close()
		}
	}
}

// serveHTTP2 runs one HTTP/2 connection. ServeConn sets Request.TLS from the connection's
// ConnectionState method, which *transport.Conn has.
func serveHTTP2(srv *http.Server, h2 *http2.Server, ctx context.Context, c *transport.Conn) {
	if srv.ConnContext != nil {
		ctx = srv.ConnContext(ctx, c)
	}
	h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: srv, Handler: srv.Handler})
	_ = c.Close()
}
