package transport

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

// pathTransfer uploads size bytes from a client to a listener, through r if it is not nil, and
// calls move once the server has read half. It checks that every byte arrived, and returns both
// ends' stats and the longest pause in the server's reads after move (what the move cost the
// transfer).
func pathTransfer(t *testing.T, ln *Listener, conns <-chan *Conn, addr string, size int, move func(c *Conn)) (client, server Stats, pause time.Duration) {
	t.Helper()
	type result struct {
		sum   [32]byte
		stats Stats
		pause time.Duration
		err   error
	}
	var moved atomic.Int64 // when move returned, in UnixNano; 0 before
	half := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		c := <-conns
		if c == nil {
			done <- result{err: io.ErrUnexpectedEOF}
			return
		}
		h := sha256.New()
		buf := make([]byte, 32<<10)
		var r result
		read, last, signalled := 0, time.Time{}, false
		for {
			n, err := c.Read(buf)
			now := time.Now()
			if m := moved.Load(); m != 0 && !last.IsZero() {
				from := last
				if mt := time.Unix(0, m); mt.After(from) {
					from = mt
				}
				r.pause = max(r.pause, now.Sub(from))
			}
			last = now
			h.Write(buf[:n])
			read += n
			if read >= size/2 && !signalled {
				signalled = true
				close(half)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				break
			}
		}
		r.stats = c.Stats()
		_ = c.Close()
		r.sum = [32]byte(h.Sum(nil))
		done <- r
	}()
	c, err := Dial(t.Context(), "udp4", addr, clientTLS(t), nil)
	require.NoError(t, err)
	go func() {
		<-half
		move(c)
		moved.Store(time.Now().UnixNano())
	}()
	h := sha256.New()
	_, err = io.Copy(c, io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{9}), int64(size)), h))
	require.NoError(t, err)
	require.NoError(t, c.Close(), "client stats %+v", c.Stats())
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, [32]byte(h.Sum(nil)), r.sum, "the server read something else")
	return c.Stats(), r.stats, r.pause
}

// TestNATRebindingThroughRelay: in the middle of an upload the relay between client and server
// forgets its mapping and forwards the client's datagrams from a new port, as a NAT does after a
// rebinding. The server follows the client to the new port, validates it, and nothing is lost.
func TestNATRebindingThroughRelay(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	r, err := relay.NewRelay("127.0.0.1:0", ln.Addr().String(), impair.Config{}, impair.Config{})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer r.Close()
	_, ss, pause := pathTransfer(t, ln, conns, r.Addr().String(), 16<<20, func(*Conn) { r.Rebind() })
	require.Equal(t, uint64(1), ss.PathChanges, "the server did not follow the client")
	require.Equal(t, uint64(1), ss.PathValidations)
	require.Equal(t, uint64(2), r.Stats().ClientsTotal, "the relay did not rebind")
	t.Logf("a rebinding paused the server's reads for at most %v (server RTT %v, %d packets lost)", pause, ss.SmoothedRTT, ss.PacketsLost)
}

// TestMigrateMidTransfer: a client moves to a new socket in the middle of an upload; the server
// follows, and nothing is lost.
func TestMigrateMidTransfer(t *testing.T) {
	defer checkLeaks(t)()
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	var before, after string
	cs, ss, pause := pathTransfer(t, ln, conns, ln.Addr().String(), 16<<20, func(c *Conn) {
		before = c.LocalAddr().String()
		if err := c.Migrate(); err != nil {
			t.Errorf("Migrate: %v", err)
		}
		after = c.LocalAddr().String()
	})
	require.NotEqual(t, before, after, "the client's address did not change")
	require.Equal(t, uint64(1), cs.PathChanges)
	require.Equal(t, uint64(1), ss.PathChanges, "the server did not follow the client")
	require.Equal(t, uint64(1), ss.PathValidations)
	t.Logf("migration paused the server's reads for at most %v (client RTT %v)", pause, cs.SmoothedRTT)
}

// TestMigrateRefused: before the handshake, or on a socket the caller provided, there is nothing
// Migrate may do.
func TestMigrateRefused(t *testing.T) {
	ln, conns := listenLoopback(t, "udp4", nil)
	defer ln.Close()
	e, err := NewEndpoint("udp4", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer e.Close()
	c, err := e.Dial(t.Context(), ln.Addr().String(), clientTLS(t))
	require.NoError(t, err)
	<-conns
	require.ErrorIs(t, c.Migrate(), ErrCannotMigrate)
	require.NoError(t, c.Close())
}
