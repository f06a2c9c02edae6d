// Command http2 serves HTTP/2 over tlsgram and fetches a page from itself: the server is
// net/http's http.Server behind tlsgramhttp.Serve, the client net/http's http.Client with a
// tlsgramhttp.Transport. Run it with
//
//	go run ./examples/http2
//
// It prints what both sides saw of the connection and exits. -addr picks the UDP address to
// listen on (default a free port on loopback).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tlsgram/tlsgram/internal/testcert"
	"github.com/tlsgram/tlsgram/transport"
	"github.com/tlsgram/tlsgram/transport/tlsgramhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "UDP address to serve on")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr string, out io.Writer) error {
	serverTLS, clientTLS := testcert.Configs() // a self-signed certificate for localhost

	// Server: a tlsgram listener offering h2 and http/1.1, and a plain http.Server.
	ln, err := transport.Listen("udp", addr, tlsgramhttp.ServerTLSConfig(serverTLS), nil)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s, ALPN %q\n", r.Proto, r.TLS.NegotiatedProtocol)
	})
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- tlsgramhttp.Serve(ln, srv) }()

	// Client: an http.Client whose Transport dials tlsgram.
	tr := &tlsgramhttp.Transport{TLSClientConfig: clientTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	req, err := http.NewRequestWithContext(ctx, "GET", "https://localhost:"+port+"/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "server said: %s", body)
	fmt.Fprintf(out, "client saw: %s, %s, ALPN %q\n", resp.Proto, tls.VersionName(resp.TLS.Version), resp.TLS.NegotiatedProtocol)

	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; err != http.ErrServerClosed {
		return err
	}
	return nil
}
