//go:build linux

package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// groReceiver opens a loopback UDP socket with a reader in the given GRO mode and a receive
// buffer large enough for every test batch. With groNow it skips the test if the kernel has no
// UDP_GRO.
func groReceiver(t *testing.T, network string, mode groMode) (*mmsgReader, netip.AddrPort) {
	t.Helper()
	u, addr := gsoReceiver(t, network)
	// A lost datagram would leave a read waiting: make it fail instead.
	require.NoError(t, u.SetReadDeadline(time.Now().Add(10*time.Second)))
	io, ok := newMmsgIO(u, false, false, mode, 0)
	require.True(t, ok)
	r := io.reader.(*mmsgReader)
	t.Cleanup(r.release)
	if mode == groNow && !r.on {
		t.Skip("the kernel has no UDP_GRO")
	}
	require.Equal(t, r.on, io.gro.Load())
	return r, addr
}

// groMessages returns n messages with receive buffers of size bytes.
func groMessages(n, size int) []message {
	pool := newBufPool(size)
	ms := make([]message, n)
	for i := range ms {
		ms[i].buf = pool.get()
	}
	return ms
}

// send writes the datagrams first, first+1, ... of sizes through the GSO writer in one
// writeBatch, and returns what the receiver must see.
func send(t *testing.T, w *mmsgWriter, to netip.AddrPort, first int, sizes []gsoSend) [][]byte {
	t.Helper()
	ms := make([]message, len(sizes))
	want := make([][]byte, len(sizes))
	for i, s := range sizes {
		want[i] = gsoDatagram(first+i, s.size)
		ms[i] = message{buf: &packetBuf{b: want[i], n: s.size}, ap: to}
	}
	require.NoError(t, w.writeBatch(ms))
	return want
}

// receive reads with batches of len(ms) until it has len(want) datagrams, and checks that they
// are want, in order, byte for byte, each in a buffer of its own, from the sender.
func receive(t *testing.T, r *mmsgReader, ms []message, from netip.AddrPort, want [][]byte) {
	t.Helper()
	got := 0
	for got < len(want) {
		// Everything was sent before we read, so the socket never runs dry before the end:
		// a lost datagram shows as a read timing out (groReceiver's deadline), a spurious
		// one as a mismatch.
		k, err := r.readBatch(ms)
		require.NoError(t, err)
		require.Positive(t, k)
		require.LessOrEqual(t, k, len(ms))
		for i := range k {
			m := &ms[i]
			require.Less(t, got, len(want), "more datagrams than sent")
			require.False(t, m.trunc, "datagram %d truncated", got)
			require.Equal(t, from, unmapAddrPort(m.ap), "datagram %d", got)
			require.Equal(t, want[got], m.buf.bytes(), "datagram %d (batch of %d, message %d)", got, k, i)
			got++
		}
	}
}

// groCases are batches for the GSO writer: runs of equal-size datagrams, runs ending in a
// shorter one, mixed sizes, and more than one read takes.
var groCases = []struct {
	name  string
	sends []gsoSend
}{
	{"one", repeat(1, 1200, 0)},
	{"run", repeat(40, 1200, 0)},
	{"runEndsShort", concat(repeat(20, 1200, 0), repeat(1, 333, 0))},
	{"over64KiB", repeat(100, 1452, 0)},
	{"mixed", concat(
		repeat(3, 1200, 0), repeat(1, 700, 0),
		repeat(2, 1200, 0), repeat(5, 1452, 0),
		repeat(1, 100, 0), repeat(1, 100, 0), repeat(70, 1200, 0), repeat(1, 1199, 0),
		repeat(1, 1452, 0), repeat(9, 5, 0),
	)},
	{"many", concat(repeat(300, 1200, 0), repeat(1, 17, 0), repeat(200, 1452, 0))},
}

// TestGROReaderDelivers sends batches through the GSO writer to a socket read with UDP GRO,
// with read batches from 1 (every coalesced read is handed out one piece per call) to 64,
// and checks each datagram comes out once, in order, byte-exact, in its own buffer.
func TestGROReaderDelivers(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		for _, batch := range []int{1, 7, 16, 64} {
			for _, tc := range groCases {
				t.Run(fmt.Sprintf("%s/batch=%d/%s", network, batch, tc.name), func(t *testing.T) {
					r, addr := groReceiver(t, network, groNow)
					sender, w := gsoSender(t, network, addr)
					want := send(t, w, addr, 0, tc.sends)
					receive(t, r, groMessages(batch, 2048), sender.LocalAddr().(*net.UDPAddr).AddrPort(), want)
					require.Equal(t, r.next, r.nread, "pieces left over")
					if len(tc.sends) > 1 {
						require.Positive(t, r.coalesced, "the kernel coalesced nothing")
					}
				})
			}
		}
	}
}

// TestGROPendingFirst: pieces of a coalesced read that did not fit one call come out before
// anything read later, and are not lost when more arrives meanwhile.
func TestGROPendingFirst(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			r, addr := groReceiver(t, network, groNow)
			sender, w := gsoSender(t, network, addr)
			from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
			ms := groMessages(5, 2048)
			a := send(t, w, addr, 0, repeat(50, 1200, 0))
			receive(t, r, ms, from, a[:10])
			require.Less(t, r.next, r.nread, "nothing pending after 10 of 50 datagrams")
			b := send(t, w, addr, 50, concat(repeat(30, 1000, 0), repeat(1, 10, 0)))
			receive(t, r, ms, from, append(a[10:], b...))
		})
	}
}

// TestGROTruncated: a segment longer than the receive buffers is cut and marked truncated,
// coalesced or not, and the datagrams around it are intact.
func TestGROTruncated(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			r, addr := groReceiver(t, network, groNow)
			sender, w := gsoSender(t, network, addr)
			from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
			ms := groMessages(64, 2048)
			sends := concat(repeat(3, 1200, 0), repeat(4, 3000, 0), repeat(1, 2500, 0), repeat(2, 1200, 0))
			want := send(t, w, addr, 0, sends)
			got := 0
			for got < len(want) {
				k, err := r.readBatch(ms)
				require.NoError(t, err)
				for i := range k {
					m := &ms[i]
					require.Equal(t, from, unmapAddrPort(m.ap))
					if len(want[got]) > 2048 {
						require.True(t, m.trunc, "datagram %d of %d bytes not truncated", got, len(want[got]))
						require.Equal(t, want[got][:2048], m.buf.bytes(), "datagram %d", got)
					} else {
						require.False(t, m.trunc, "datagram %d", got)
						require.Equal(t, want[got], m.buf.bytes(), "datagram %d", got)
					}
					got++
				}
			}
			require.Positive(t, r.coalesced)
		})
	}
}

// TestGROLazyUpgrade: a dialled socket's reader turns GRO on under bulk traffic, between two
// reads, and takes the datagrams queued before as ordinary ones; under light traffic it keeps
// its small buffers.
func TestGROLazyUpgrade(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network+"/bulk", func(t *testing.T) {
			r, addr := groReceiver(t, network, groLazy)
			require.False(t, r.on)
			sender, w := gsoSender(t, network, addr)
			from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
			ms := groMessages(dialBatch, 2048)
			// All queued before the first read: every read is full, and the switch comes
			// after bulkWindow datagrams with 4*bulkWindow still queued, uncoalesced.
			a := send(t, w, addr, 0, repeat(5*bulkWindow, 1200, 0))
			receive(t, r, ms, from, a[:bulkWindow])
			require.True(t, r.on, "no GRO after %d datagrams in full reads", bulkWindow)
			require.True(t, r.gro.Load())
			receive(t, r, ms, from, a[bulkWindow:])
			require.Zero(t, r.coalesced, "datagrams queued before the switch came coalesced")
			b := send(t, w, addr, len(a), concat(repeat(200, 1200, 0), repeat(1, 99, 0)))
			receive(t, r, ms, from, b)
			require.Positive(t, r.coalesced, "nothing coalesced after the switch")
			require.Equal(t, groDialBufs, r.nbig)
		})
		t.Run(network+"/light", func(t *testing.T) {
			r, addr := groReceiver(t, network, groLazy)
			sender, w := gsoSender(t, network, addr)
			from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
			ms := groMessages(dialBatch, 2048)
			// Request–response: a few datagrams at a time, read before the next come.
			for i := 0; i < 4*bulkWindow; i += 3 {
				receive(t, r, ms, from, send(t, w, addr, i, repeat(3, 1200, 0)))
			}
			require.False(t, r.on, "GRO on under light traffic")
			require.False(t, r.gro.Load())
			require.False(t, r.heldBig(0), "big buffers held without GRO")
		})
	}
}

// TestGROReaderAllocs: reading and cutting coalesced datagrams allocates nothing.
func TestGROReaderAllocs(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			r, addr := groReceiver(t, network, groNow)
			_, w := gsoSender(t, network, addr)
			sends := concat(repeat(40, 1200, 0), repeat(1, 300, 0), repeat(23, 1200, 0))
			out := make([]message, len(sends))
			for i, s := range sends {
				b := gsoDatagram(i, s.size)
				out[i] = message{buf: &packetBuf{b: b, n: len(b)}, ap: addr}
			}
			ms := groMessages(16, 2048)
			allocs := testing.AllocsPerRun(100, func() {
				if err := w.writeBatch(out); err != nil {
					panic(err)
				}
				for got := 0; got < len(out); {
					k, err := r.readBatch(ms)
					if err != nil {
						panic(err)
					}
					got += k
				}
			})
			require.Zero(t, allocs)
			require.Positive(t, r.coalesced)
		})
	}
}

// TestGROEndToEnd: a listener's socket uses GRO from the start; a dialled one turns it on
// when it downloads in bulk, not for a ping-pong; Config.DisableGRO keeps it off; a segment
// too long for the receive buffers is counted as truncated; the readers give their buffers
// back when they stop.
func TestGROEndToEnd(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			defer checkLeaks(t)()
			ln, conns := listenLoopback(t, network, nil)
			if !ln.ep.sock.usesGRO() {
				t.Skip("the kernel has no UDP_GRO")
			}
			c, err := Dial(t.Context(), network, ln.Addr().String(), clientTLS(t), nil)
			require.NoError(t, err)
			srv := <-conns
			require.True(t, srv.Stats().ReceiveOffload)

			// Ping-pong: light traffic.
			buf := make([]byte, 64)
			for range 300 {
				_, err := c.Write(buf)
				require.NoError(t, err)
				_, err = io.ReadFull(srv, buf)
				require.NoError(t, err)
				_, err = srv.Write(buf)
				require.NoError(t, err)
				_, err = io.ReadFull(c, buf)
				require.NoError(t, err)
			}
			require.False(t, c.Stats().ReceiveOffload, "GRO on for a ping-pong")

			// A download.
			const size = 32 << 20
			go func() {
				big := make([]byte, 1<<20)
				for range size / len(big) {
					if _, err := srv.Write(big); err != nil {
						return
					}
				}
				_ = srv.CloseWrite()
			}()
			n, err := io.Copy(io.Discard, c)
			require.NoError(t, err)
			require.Equal(t, int64(size), n)
			require.True(t, c.Stats().ReceiveOffload, "no GRO after a %d MiB download", size>>20)

			// A coalesced run of datagrams longer than the receive buffers (2 KiB).
			_, w := gsoSender(t, network, ln.ep.sock.udp.LocalAddr().(*net.UDPAddr).AddrPort())
			send(t, w, ln.ep.sock.udp.LocalAddr().(*net.UDPAddr).AddrPort(), 0, repeat(5, 3000, 0))
			require.Eventually(t, func() bool { return ln.Stats().DroppedTruncated >= 5 }, 5*time.Second, time.Millisecond)
			require.EqualValues(t, 5, ln.Stats().DroppedTruncated)

			require.NoError(t, c.Close())
			require.NoError(t, srv.Close())
			require.NoError(t, ln.Close())
			<-c.ep.readerDone
			<-ln.ep.readerDone
			for _, ep := range []*endpoint{c.ep, ln.ep} {
				r := ep.sock.reader.(*mmsgReader)
				require.False(t, r.heldBig(0), "big buffers kept after the reader stopped")
			}
		})
	}
}

// TestGRODisabled: Config.DisableGRO and TLSGRAM_DISABLE_GRO keep a listener's socket from
// using GRO.
func TestGRODisabled(t *testing.T) {
	ln, _ := listenLoopback(t, "udp4", &Config{DisableGRO: true})
	defer ln.Close()
	require.False(t, ln.ep.sock.usesGRO())
	require.Nil(t, ln.ep.sock.gro)

	t.Setenv("TLSGRAM_DISABLE_GRO", "1")
	ln2, _ := listenLoopback(t, "udp4", nil)
	defer ln2.Close()
	require.False(t, ln2.ep.sock.usesGRO())
}

// TestGROSegmentSize parses control messages as the kernel lays them out, skipping others.
func TestGROSegmentSize(t *testing.T) {
	var space [8]uint64 // aligned for cmsghdr
	b := unsafe.Slice((*byte)(unsafe.Pointer(&space)), unsafe.Sizeof(space))
	put := func(off int, level, typ int32, val uint32) int {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(4))
		binary.NativeEndian.PutUint32(b[off+unix.CmsgLen(0):], val)
		return off + unix.CmsgSpace(4)
	}
	n := put(0, unix.SOL_UDP, unix.UDP_GRO, 1200)
	require.Equal(t, 1200, groSegmentSize(b[:n]))
	require.Equal(t, 0, groSegmentSize(b[:unix.CmsgLen(4)-1]), "cut short")
	require.Equal(t, 0, groSegmentSize(nil))
	n = put(0, unix.SOL_IP, unix.IP_TOS, 7)
	n = put(n, unix.SOL_UDP, unix.UDP_GRO, 1452)
	require.Equal(t, 1452, groSegmentSize(b[:n]), "after another control message")
	put(0, unix.SOL_SOCKET, unix.UDP_GRO, 1200)
	require.Equal(t, 0, groSegmentSize(b[:unix.CmsgSpace(4)]), "another level")
}

// TestGROLendsPieces: the pieces of a coalesced read that are short header datagrams are lent
// out of the reader's big buffer, not copied; a long header one (a handshake, which a listener
// may keep) is copied. The big buffer is held until the reader and every piece have let go, and
// the reader reads into a fresh one meanwhile.
func TestGROLendsPieces(t *testing.T) {
	r, addr := groReceiver(t, "udp4", groNow)
	sender, w := gsoSender(t, "udp4", addr)
	from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
	ms := groMessages(64, 2048)
	pool := newBufPool(2048)
	sizes := repeat(10, 1200, 0)
	want := send(t, w, addr, 0, sizes)
	receive(t, r, ms[:10], from, want)
	big := ms[0].buf.big
	require.NotNil(t, big, "a short header datagram was copied")
	for i := range 10 {
		require.True(t, ms[i].buf.big == big, "datagram %d is not a piece of the read", i)
	}
	require.EqualValues(t, 10, big.refs.Load(), "held by its pieces only: the reader let go")
	require.False(t, r.heldBig(0), "the reader keeps a buffer whose pieces are out")

	// The next read goes into a fresh buffer; a long header datagram in it is copied.
	long := gsoDatagram(0, 1200)
	long[0] = 0xc0
	ms2 := groMessages(4, 2048)
	m := message{buf: &packetBuf{b: long, n: len(long)}, ap: addr}
	require.NoError(t, w.writeBatch([]message{m}))
	k, err := r.readBatch(ms2)
	require.NoError(t, err)
	require.Equal(t, 1, k)
	require.Equal(t, long, ms2[0].buf.bytes())
	require.Nil(t, ms2[0].buf.big, "a long header datagram was lent")

	// Putting the pieces back lets the buffer go with the last one, and restores each
	// packetBuf's own storage.
	for i := range 10 {
		pool.put(ms[i].buf)
		ms[i].buf = nil
	}
	require.Zero(t, big.refs.Load())
	got := pool.get()
	require.Nil(t, got.big)
	require.Len(t, got.b, 2048)
	require.True(t, &got.b[0] == &got.own[0])
}
