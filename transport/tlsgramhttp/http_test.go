package tlsgramhttp

//lint:file-ignore SA1019 the test checks that x/net's HTTP/2 client, which users of Go 1.26 have, works with Serve.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/testcert"
	"github.com/tlsgram/tlsgram/transport"
	"golang.org/x/net/http2"
)

// whoami answers with what the server saw of the request: protocol, TLS state and body.
func whoami(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.TLS == nil {
		http.Error(w, "no Request.TLS", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s %s alpn=%q body=%q", r.Proto, tls.VersionName(r.TLS.Version), r.TLS.NegotiatedProtocol, body)
}

// startServer serves whoami over tlsgram on loopback with the given ALPN list and returns the
// base URL and the listener. The server is shut down when the test ends, and Serve must then
// have returned http.ErrServerClosed.
func startServer(t *testing.T, protos ...string) (string, *transport.Listener) {
	t.Helper()
	serverTLS, _ := testcert.Configs()
	serverTLS.NextProtos = protos
	ln, err := transport.Listen("udp4", "127.0.0.1:0", ServerTLSConfig(serverTLS), nil)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(whoami)}
	served := make(chan error, 1)
	go func() { served <- Serve(ln, srv) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown(context.Background()))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://localhost:" + port, ln
}

func newClient(t *testing.T, disableHTTP2 bool) *http.Client {
	_, clientTLS := testcert.Configs()
	tr := &Transport{TLSClientConfig: clientTLS, DisableHTTP2: disableHTTP2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// get fetches url with a POST of body and returns the response body and the response.
func post(t *testing.T, c *http.Client, url, body string) (string, *http.Response) {
	t.Helper()
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b), resp
}

// TestHTTP2 runs requests over HTTP/2 from net/http's client with Transport to net/http's
// server with Serve: both sides see the TLS state, and concurrent requests share one connection.
func TestHTTP2(t *testing.T) {
	url, ln := startServer(t)
	c := newClient(t, false)
	body, resp := post(t, c, url, "hello")
	require.Equal(t, `HTTP/2.0 TLS 1.3 alpn="h2" body="hello"`, body)
	require.Equal(t, "HTTP/2.0", resp.Proto)
	require.NotNil(t, resp.TLS)
	require.Equal(t, "h2", resp.TLS.NegotiatedProtocol)
	require.NotEmpty(t, resp.TLS.PeerCertificates)

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			resp, err := c.Post(url, "text/plain", strings.NewReader(fmt.Sprint(i)))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf(`HTTP/2.0 TLS 1.3 alpn="h2" body="%d"`, i); string(b) != want {
				errs <- fmt.Errorf("got %q, want %q", b, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), ln.Stats().Accepted, "HTTP/2 requests share one connection")
}

// TestHTTP1 covers HTTP/1.1 both ways: a server that offers only http/1.1 (the client learns it
// and reuses the connection it dialled for HTTP/2), and a client with HTTP/2 disabled.
func TestHTTP1(t *testing.T) {
	url, ln := startServer(t, ProtoHTTP11)
	c := newClient(t, false)
	for range 3 {
		body, resp := post(t, c, url, "one")
		require.Equal(t, `HTTP/1.1 TLS 1.3 alpn="http/1.1" body="one"`, body)
		require.Equal(t, "HTTP/1.1", resp.Proto)
		require.NotNil(t, resp.TLS, "Response.TLS over HTTP/1.1")
		require.Equal(t, "http/1.1", resp.TLS.NegotiatedProtocol)
	}
	require.Equal(t, uint64(1), ln.Stats().Accepted, "the connection dialled for HTTP/2 served HTTP/1.1")

	url2, _ := startServer(t)
	body, resp := post(t, newClient(t, true), url2, "two")
	require.Equal(t, `HTTP/1.1 TLS 1.3 alpn="http/1.1" body="two"`, body)
	require.NotNil(t, resp.TLS)
}

// TestXNetHTTP2Client: x/net's HTTP/2 client, given a dialer that returns tlsgram connections,
// talks to Serve with no other glue.
func TestXNetHTTP2Client(t *testing.T) {
	url, _ := startServer(t)
	_, clientTLS := testcert.Configs()
	tr := &http2.Transport{
		TLSClientConfig: clientTLS,
		DialTLSContext: func(ctx context.Context, _, addr string, cfg *tls.Config) (net.Conn, error) {
			return transport.Dial(ctx, "udp", addr, cfg, nil)
		},
	}
	defer tr.CloseIdleConnections()
	body, resp := post(t, &http.Client{Transport: tr}, url, "x/net")
	require.Equal(t, `HTTP/2.0 TLS 1.3 alpn="h2" body="x/net"`, body)
	require.NotNil(t, resp.TLS)
}

// TestLargeBodies moves a few MiB each way over HTTP/2, checking the bytes.
func TestLargeBodies(t *testing.T) {
	serverTLS, _ := testcert.Configs()
	ln, err := transport.Listen("udp4", "127.0.0.1:0", ServerTLSConfig(serverTLS), nil)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body) // echo
	})}
	go func() { _ = Serve(ln, srv) }()
	defer srv.Close()

	payload := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	resp, err := newClient(t, false).Post("https://localhost:"+port, "application/octet-stream", bytes.NewReader(payload))
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "HTTP/2.0", resp.Proto)
	require.True(t, bytes.Equal(payload, got), "echoed body differs")
}

// TestServeReturnsListenerError: Serve returns once its listener is closed by someone else.
func TestServeReturnsListenerError(t *testing.T) {
	serverTLS, _ := testcert.Configs()
	ln, err := transport.Listen("udp4", "127.0.0.1:0", ServerTLSConfig(serverTLS), nil)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- Serve(ln, &http.Server{}) }()
	require.NoError(t, ln.Close())
	err = <-served
	require.True(t, errors.Is(err, net.ErrClosed), "%v", err)
}

// TestPlainHTTPScheme: an http:// URL is refused with a clear error, not sent in the clear.
func TestPlainHTTPScheme(t *testing.T) {
	_, err := newClient(t, false).Get("http://localhost:1/")
	require.ErrorContains(t, err, "use https")
}

// TestListenAndServe: ListenAndServe takes srv.TLSConfig when given no config, returns
// http.ErrServerClosed after Shutdown, and refuses to run without a certificate config.
func TestListenAndServe(t *testing.T) {
	serverTLS, _ := testcert.Configs()
	srv := &http.Server{TLSConfig: serverTLS}
	served := make(chan error, 1)
	go func() { served <- ListenAndServe("udp4", "127.0.0.1:0", srv, nil, nil) }()
	require.NoError(t, srv.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, http.ErrServerClosed)

	err := ListenAndServe("udp4", "127.0.0.1:0", &http.Server{}, nil, nil)
	require.ErrorContains(t, err, "nil *tls.Config")
}
