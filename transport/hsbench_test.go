package transport

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkHandshake measures what the bench suite's handshake metric does, on IPv4 loopback:
// a Dial on its own socket, the TLS handshake, one byte echoed by the server; the Close runs in
// the background, as the bench's does.
//
//	go test -run '^$' -bench Handshake -benchmem ./transport/
func BenchmarkHandshake(b *testing.B) {
	ln, err := Listen("udp4", "127.0.0.1:0", serverTLS(b), nil)
	require.NoError(b, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	tc := clientTLS(b)
	done := make(chan struct{}, b.N)
	b.ResetTimer()
	for range b.N {
		c, err := Dial(b.Context(), "udp4", ln.Addr().String(), tc, nil)
		require.NoError(b, err)
		_, err = c.Write([]byte{'x'})
		require.NoError(b, err)
		var one [1]byte
		_, err = io.ReadFull(c, one[:])
		require.NoError(b, err)
		go func() { _ = c.Close(); done <- struct{}{} }()
	}
	b.StopTimer()
	for range b.N {
		<-done
	}
}
