package transport

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// tapConn is a client socket for tests of the close sequence. It keeps a copy of every datagram
// sent. With sendTime set, each send takes that long (virtual time in a synctest bubble), the
// way a real sendmmsg takes some time; once killed, sends are lost, as when the process exits.
type tapConn struct {
	*transporttest.PacketConn
	sendTime time.Duration
	killed   atomic.Bool

	mu   sync.Mutex
	sent [][]byte
}

func (c *tapConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.sendTime > 0 {
		time.Sleep(c.sendTime) // models the duration of the system call, not synchronisation
	}
	if c.killed.Load() {
		return len(b), nil
	}
	c.mu.Lock()
	c.sent = append(c.sent, append([]byte(nil), b...))
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

// streamFrames returns the STREAM frames of every datagram sent so far, in order.
func (c *tapConn) streamFrames(t *testing.T) []header.Frame {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []header.Frame
	for _, dg := range c.sent {
		_, payload, err := header.Open(dg)
		require.NoError(t, err)
		for len(payload) > 0 {
			var f header.Frame
			n, err := header.ParseFrame(payload, &f)
			require.NoError(t, err)
			payload = payload[n:]
			if f.Type == header.FrameStream {
				out = append(out, f)
			}
		}
	}
	return out
}

// tapPair is memPair with the client on a tapConn.
func tapPair(t *testing.T, nw *transporttest.Network, conf *Config, tap *tapConn) (client, server *Conn, ln *Listener) {
	t.Helper()
	tap.PacketConn = nw.Listen("client")
	return memPairOn(t, nw, conf, tap)
}

// TestSynctestCloseSendsBeforeReturning: a process may exit as soon as Close returns, so by then
// the final datagrams — the ACK of the peer's last data and our CLOSE, which repeats it — must
// have been handed to the socket. Otherwise the peer's own Close waits in vain for that ACK and
// fails with ErrNotAcknowledged.
func TestSynctestCloseSendsBeforeReturning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		tap := &tapConn{sendTime: time.Millisecond}
		client, server, ln := tapPair(t, nw, &Config{CloseTimeout: 2 * time.Second}, tap)

		serverClosed := make(chan error, 1)
		go func() {
			req, err := io.ReadAll(server)
			if err == nil && string(req) != "request" {
				err = errors.New("server read " + string(req))
			}
			if err == nil {
				_, err = server.Write([]byte("response"))
			}
			if cerr := server.Close(); err == nil {
				err = cerr
			}
			serverClosed <- err
		}()

		_, err := client.Write([]byte("request"))
		require.NoError(t, err)
		require.NoError(t, client.CloseWrite())
		resp, err := io.ReadAll(client)
		require.NoError(t, err)
		require.Equal(t, "response", string(resp))
		require.NoError(t, client.Close())
		tap.killed.Store(true) // the process exits

		require.NoError(t, <-serverClosed, "the server's data was not acknowledged")
		require.NoError(t, ln.Close())
	})
}

// TestSynctestCloseNotifyCarriesFIN: close_notify and the end of the stream leave in one packet.
// A peer that closes as soon as its Read returns io.EOF (on close_notify) would otherwise never
// acknowledge a FIN sent separately, and our Close would fail with ErrNotAcknowledged. The hook
// lets the driver run at the worst moment: right after TLS wrote close_notify.
func TestSynctestCloseNotifyCarriesFIN(t *testing.T) {
	for _, how := range []string{"Close", "CloseWrite"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := &transporttest.Network{Latency: time.Millisecond}
				tap := &tapConn{}
				client, server, ln := tapPair(t, nw, nil, tap)

				hooked := false
				testHookCloseNotifySent = func(c *Conn) {
					if c == client {
						hooked = true
						synctest.Wait() // the driver sends whatever it can now
					}
				}
				t.Cleanup(func() { testHookCloseNotifySent = nil })

				read := make(chan error, 1)
				go func() {
					_, err := io.ReadAll(server)
					read <- err
				}()
				_, err := client.Write([]byte("data"))
				require.NoError(t, err)
				if how == "Close" {
					require.NoError(t, client.Close())
				} else {
					require.NoError(t, client.CloseWrite())
				}
				require.NoError(t, <-read)
				require.True(t, hooked)

				fins := 0
				for _, f := range tap.streamFrames(t) {
					if f.Fin {
						fins++
						require.NotEmpty(t, f.Data, "FIN sent without the close_notify record, at offset %d", f.Offset)
					}
				}
				require.Equal(t, 1, fins)
				require.NoError(t, server.Close())
				require.NoError(t, ln.Close())
			})
		})
	}
}

// TestSynctestCloseStartsNoWorker: Close sends what it queues (close_notify with the end of the
// stream, then the CLOSE frame) from its own goroutine. It started a worker goroutine for each,
// two per Close, four per connection that both ends close (issue 8: goroutines per handshake).
func TestSynctestCloseStartsNoWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{Latency: time.Millisecond}
		client, server, ln := memPair(t, nw, nil)
		go func() { _, _ = io.Copy(io.Discard, server); _ = server.Close() }()
		synctest.Wait()
		before := client.workers.Load()
		require.NoError(t, client.Close())
		require.Zero(t, client.workers.Load()-before, "worker goroutines started by Close")
		shutdown(client, server, ln)
	})
}
