package transport

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/transport/transporttest"
)

// gatedConn is a socket whose sends can be held up: while gate is non-nil, WriteTo waits until
// it is closed. A driver blocked there is busy the way one in a long sendmmsg is.
type gatedConn struct {
	*transporttest.PacketConn
	gate atomic.Pointer[chan struct{}] // while set, WriteTo waits until the channel is closed
	held chan struct{}                 // 1 slot: a WriteTo is waiting at the gate
}

func (c *gatedConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if g := c.gate.Load(); g != nil {
		select {
		case c.held <- struct{}{}:
		default:
		}
		<-*g
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestSynctestBurstOneStep: datagrams that queue up while the driver is busy are all handled in
// its next step, under one acquisition of the session lock and followed by one round of polling,
// rather than a fixed number at a time. The per-datagram cost of the driver is what decides
// whether it keeps up with the socket reader on a fast path (DroppedQueueFull).
func TestSynctestBurstOneStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &transporttest.Network{} // no latency: a datagram sent is queued at once
		spc := &gatedConn{PacketConn: nw.Listen("server"), held: make(chan struct{}, 1)}
		ln, err := NewListener(spc, serverTLS(t), nil)
		require.NoError(t, err)
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		client, err := DialPacketConn(t.Context(), nw.Listen("client"), ln.Addr(), clientTLS(t), nil)
		require.NoError(t, err)
		server := (<-accepted).(*Conn)
		t.Cleanup(func() { shutdown(client, server, ln) })
		synctest.Wait() // the handshake's last datagrams are through
		server.ep.mu.Lock()
		cid := server.ids[0]
		server.ep.mu.Unlock()

		// Hold the server's socket in a write: a small Write is sent inline (inline.go), by the
		// writing goroutine, which then holds the send lock; the driver, woken by the first
		// datagram of the burst, waits for that lock in its step, busy as if it were in a long
		// sendmmsg itself, while the rest of the burst queues.
		gate := make(chan struct{})
		spc.gate.Store(&gate)
		wrote := make(chan error, 1)
		go func() {
			_, err := server.Write([]byte("x"))
			wrote <- err
		}()
		<-spc.held
		before := server.steps.Load()

		// Datagrams for the server's connection ID that fail the integrity check: the socket
		// reader queues them for the driver, and the core counts and drops them.
		const burst = 300
		junk := make([]byte, 100)
		junk[0] = 0x40 // short header, fixed bit
		binary.BigEndian.PutUint64(junk[1:], cid)
		src := nw.Listen("junk")
		defer src.Close()
		for range burst {
			_, err := src.WriteTo(junk, ln.Addr())
			require.NoError(t, err)
		}
		synctest.Wait() // all of them wait in the server's inbound queue
		// Nothing else may arrive meanwhile: the client's ACK of "x" would take another step.
		nw.SetDrop(func(from, to net.Addr, b []byte) bool { return to != ln.Addr() || from != src.LocalAddr() })
		spc.gate.Store(nil)
		close(gate)
		synctest.Wait()
		nw.SetDrop(nil)
		require.NoError(t, <-wrote)

		require.Equal(t, uint64(1), server.steps.Load()-before, "driver steps for one burst")
		st := server.Stats()
		require.Zero(t, st.DroppedQueueFull)
		require.Equal(t, uint64(burst), st.Drops.Integrity)
	})
}
