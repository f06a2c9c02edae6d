package contenders_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/bench"
	_ "github.com/tlsgram/tlsgram/bench/contenders"
)

// TestEveryContenderEchoes dials each registered contender, optional ones
// included, over loopback and checks one message makes the round trip and
// that its description is complete.
func TestEveryContenderEchoes(t *testing.T) {
	all := bench.Contenders()
	require.GreaterOrEqual(t, len(all), 6)
	for _, c := range all {
		t.Run(c.Name(), func(t *testing.T) {
			info := c.Info()
			require.NotEmpty(t, info.Label)
			require.NotEmpty(t, info.Settings)
			require.Contains(t, []string{"udp", "tcp"}, c.Network())
			if c.Network() == "udp" {
				require.LessOrEqual(t, info.MaxDatagram, 1452, "headline figures use Internet-sized datagrams")
			}
			if !c.Reliable() {
				require.Greater(t, c.MaxMessage(), 1000)
			}

			ln, err := c.Listen("127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				buf := make([]byte, 2048)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := c.Dial(ctx, ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			msg := []byte("hello, contender")
			got := make([]byte, 2048)
			for {
				_, err = conn.Write(msg)
				require.NoError(t, err)
				if c.Reliable() {
					_, err = io.ReadFull(conn, got[:len(msg)])
					require.NoError(t, err)
					break
				}
				// An unreliable contender may lose a datagram even on
				// loopback: retry until the deadline.
				require.NoError(t, conn.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
				n, err := conn.Read(got)
				if err == nil {
					require.Equal(t, len(msg), n)
					break
				}
				require.NoError(t, ctx.Err())
			}
			require.Equal(t, msg, got[:len(msg)])
		})
	}
}
