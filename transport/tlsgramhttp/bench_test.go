package tlsgramhttp

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/tlsgram/tlsgram/internal/testcert"
	"github.com/tlsgram/tlsgram/transport"
)

// downloadSize is the body of BenchmarkHTTP2Download.
const downloadSize = 50 << 20

// serveBlob answers every request with downloadSize bytes.
func serveBlob() http.Handler {
	chunk := make([]byte, 64<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for left := downloadSize; left > 0; left -= len(chunk) {
			if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
				return
			}
		}
	})
}

// BenchmarkHTTP2Download fetches a 50 MB body over HTTP/2 on loopback: over tlsgram (Serve and
// Transport, default Config: 1200-byte datagrams) and, as the baseline in the same run, over
// crypto/tls on TCP with net/http's own HTTP/2. Compare the MB/s of the two sub-benchmarks:
//
//	go test ./transport/tlsgramhttp -run '^$' -bench HTTP2Download -benchtime 3x -count 3
func BenchmarkHTTP2Download(b *testing.B) {
	serverTLS, clientTLS := testcert.Configs()
	b.Run("tlsgram", func(b *testing.B) {
		ln, err := transport.Listen("udp4", "127.0.0.1:0", ServerTLSConfig(serverTLS), nil)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: serveBlob()}
		go func() { _ = Serve(ln, srv) }()
		defer srv.Close()
		tr := &Transport{TLSClientConfig: clientTLS}
		defer tr.CloseIdleConnections()
		download(b, &http.Client{Transport: tr}, "https://"+ln.Addr().String())
	})
	b.Run("tls-tcp", func(b *testing.B) {
		tcp, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: serveBlob()}
		go func() { _ = srv.Serve(tls.NewListener(tcp, ServerTLSConfig(serverTLS))) }()
		defer srv.Close()
		tr := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		download(b, &http.Client{Transport: tr}, "https://"+tcp.Addr().String())
	})
}

func download(b *testing.B, c *http.Client, url string) {
	b.SetBytes(downloadSize)
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != downloadSize || resp.Proto != "HTTP/2.0" {
			b.Fatalf("got %d bytes over %s: %v", n, resp.Proto, err)
		}
	}
}
