//go:build linux

package transport

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// gsoSender opens a loopback UDP socket of network, connected to peer if it is valid, and
// returns it with a writer that uses GSO. It skips the test if the kernel has no UDP GSO.
func gsoSender(t *testing.T, network string, peer netip.AddrPort) (*net.UDPConn, *mmsgWriter) {
	t.Helper()
	host := loopbackHost(t, network)
	var u *net.UDPConn
	var err error
	if peer.IsValid() {
		u, err = net.DialUDP(network, nil, net.UDPAddrFromAddrPort(peer))
	} else {
		u, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	io, ok := newMmsgIO(u, peer.IsValid(), true, groOff, 0)
	require.True(t, ok)
	if !io.gso.Load() {
		t.Skip("the kernel has no UDP_SEGMENT")
	}
	return u, io.newWriter().(*mmsgWriter)
}

// gsoReceiver opens a loopback UDP socket with a receive buffer large enough for every test
// batch, so that nothing is dropped for want of room.
func gsoReceiver(t *testing.T, network string) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	host := loopbackHost(t, network)
	u, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	rcv, _, _ := tuneSocket(u, 16<<20, false, 0)
	require.GreaterOrEqual(t, rcv, 4<<20, "receive buffer too small to hold a test batch")
	return u, u.LocalAddr().(*net.UDPAddr).AddrPort()
}

// gsoDatagram is datagram i of a test batch: size bytes, starting with i and a pattern that
// depends on i, so that a datagram cut at the wrong place or delivered twice is noticed.
func gsoDatagram(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	for j := 4; j < size; j++ {
		b[j] = byte(i*31 + j)
	}
	return b
}

type gsoSend struct {
	size int
	peer int // index into the receivers
}

// repeat is n datagrams of size for peer.
func repeat(n, size, peer int) []gsoSend {
	s := make([]gsoSend, n)
	for i := range s {
		s[i] = gsoSend{size, peer}
	}
	return s
}

func concat(parts ...[]gsoSend) []gsoSend {
	var s []gsoSend
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

// checkBatch writes the datagrams of sends in one writeBatch, then a marker datagram to every
// receiver through the plain socket API, and checks that each receiver got exactly its
// datagrams, each on its own and byte for byte, before or around its marker.
func checkBatch(t *testing.T, w *mmsgWriter, sender *net.UDPConn, rcvs []*net.UDPConn, addrs []netip.AddrPort, sends []gsoSend) {
	t.Helper()
	ms := make([]message, len(sends))
	want := make([]map[uint32][]byte, len(rcvs))
	for i := range want {
		want[i] = make(map[uint32][]byte)
	}
	for i, s := range sends {
		b := gsoDatagram(i, s.size)
		ms[i] = message{buf: &packetBuf{b: b, n: len(b)}, ap: addrs[s.peer]}
		want[s.peer][uint32(i)] = b
	}
	require.NoError(t, w.writeBatch(ms))
	const marker = 0xffffffff
	for i, a := range addrs {
		var err error
		if w.connected {
			_, err = sender.Write(gsoDatagram(marker, 8))
		} else {
			_, err = sender.WriteToUDPAddrPort(gsoDatagram(marker, 8), a)
		}
		require.NoError(t, err, "marker to receiver %d", i)
	}

	buf := make([]byte, 1<<16)
	for r, u := range rcvs {
		require.NoError(t, u.SetReadDeadline(time.Now().Add(5*time.Second)))
		got := make(map[uint32]bool)
		sawMarker := false
		for !sawMarker || len(got) < len(want[r]) {
			n, err := u.Read(buf)
			require.NoError(t, err, "receiver %d: got %d of %d datagrams, marker %v", r, len(got), len(want[r]), sawMarker)
			require.GreaterOrEqual(t, n, 4)
			idx := binary.BigEndian.Uint32(buf)
			if idx == marker {
				require.False(t, sawMarker, "receiver %d: marker twice", r)
				sawMarker = true
				continue
			}
			exp, ok := want[r][idx]
			require.True(t, ok, "receiver %d: datagram %d is not for it", r, idx)
			require.False(t, got[idx], "receiver %d: datagram %d twice", r, idx)
			require.Equal(t, exp, buf[:n], "receiver %d: datagram %d", r, idx)
			got[idx] = true
		}
	}
}

// TestGSOWriterDelivers sends batches through the GSO writer on real loopback sockets and
// checks that every datagram arrives individually and byte-exact: runs longer than one
// message takes (64 segments, 64 KiB), runs broken by a shorter or a longer datagram, and
// runs for different peers.
func TestGSOWriterDelivers(t *testing.T) {
	cases := []struct {
		name  string
		peers int
		sends []gsoSend
	}{
		{"one", 1, repeat(1, 1200, 0)},
		{"over64", 1, repeat(150, 1200, 0)},
		{"over64KiB", 1, repeat(100, 1452, 0)},
		{"mixed", 1, concat(
			repeat(3, 1200, 0), repeat(1, 700, 0), // a run ended by a shorter datagram
			repeat(2, 1200, 0), repeat(5, 1452, 0), // a longer one starts a new run
			repeat(1, 100, 0), repeat(1, 100, 0), repeat(70, 1200, 0), repeat(1, 1199, 0),
			repeat(1, 1452, 0),
		)},
		{"twoPeers", 2, concat(
			repeat(10, 1200, 0), repeat(10, 1200, 1), repeat(1, 1200, 0),
			repeat(3, 1200, 1), repeat(2, 1200, 0), repeat(1, 500, 0), repeat(40, 1200, 1),
			repeat(80, 1200, 0),
		)},
	}
	for _, network := range []string{"udp4", "udp6"} {
		for _, connected := range []bool{false, true} {
			for _, tc := range cases {
				if connected && tc.peers > 1 {
					continue
				}
				t.Run(fmt.Sprintf("%s/connected=%v/%s", network, connected, tc.name), func(t *testing.T) {
					rcvs := make([]*net.UDPConn, tc.peers)
					addrs := make([]netip.AddrPort, tc.peers)
					for i := range rcvs {
						rcvs[i], addrs[i] = gsoReceiver(t, network)
					}
					var peer netip.AddrPort
					if connected {
						peer = addrs[0]
					}
					sender, w := gsoSender(t, network, peer)
					checkBatch(t, w, sender, rcvs, addrs, tc.sends)
					require.True(t, w.gso.Load(), "GSO turned off on a healthy socket")
				})
			}
		}
	}
}

// TestGSOBuild checks how the writer groups a batch into messages: the kernel cuts a message
// into segments of its first datagram's size, so a run may end only with a shorter datagram,
// and one message holds at most 64 segments and 65507 bytes.
func TestGSOBuild(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1")
	b := netip.MustParseAddrPort("127.0.0.1:2")
	msgs := func(spec ...any) []message {
		var ms []message
		for i := 0; i < len(spec); i += 3 {
			n, size, ap := spec[i].(int), spec[i+1].(int), spec[i+2].(netip.AddrPort)
			for range n {
				ms = append(ms, message{buf: &packetBuf{b: make([]byte, size), n: size}, ap: ap})
			}
		}
		return ms
	}
	cases := []struct {
		name      string
		ms        []message
		connected bool
		segs      []int // datagrams per message of the first system call
		size      []int // the segment size of each message with more than one
	}{
		{"shorterEnds", msgs(3, 1200, a, 1, 700, a, 2, 1200, a), false, []int{4, 2}, []int{1200, 1200}},
		{"longerStarts", msgs(2, 700, a, 3, 1200, a), false, []int{2, 3}, []int{700, 1200}},
		{"single", msgs(1, 1200, a, 1, 1000, a, 1, 1100, a), false, []int{2, 1}, []int{1200, 0}},
		{"bytes", msgs(64, 1200, a), false, []int{54, 10}, []int{1200, 1200}},
		{"segments", msgs(70, 1000, a), false, []int{64}, []int{1000}},
		{"peers", msgs(2, 1200, a, 2, 1200, b, 1, 1200, a), false, []int{2, 2, 1}, []int{1200, 1200, 0}},
		{"connectedIgnoresAddr", msgs(2, 1200, a, 2, 1200, b), true, []int{4}, []int{1200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &mmsgWriter{family: unix.AF_INET, connected: tc.connected}
			n := w.build(tc.ms, true)
			sum := 0
			for _, s := range tc.segs {
				sum += s
			}
			require.Equal(t, sum, n)
			require.Equal(t, tc.segs, w.segs[:w.cnt])
			for i := range w.cnt {
				ctl := w.hdrs[i].Hdr.Controllen
				if tc.size[i] == 0 {
					require.Zero(t, ctl, "message %d", i)
					continue
				}
				require.NotZero(t, ctl, "message %d", i)
				require.Equal(t, uint16(tc.size[i]), w.cmsgs[i].size, "message %d", i)
			}
			w.build(tc.ms, false)
			require.Equal(t, min(len(tc.ms), maxBatch), w.cnt, "without GSO, one message per datagram")
		})
	}
}

// TestGSOFallback: when the kernel refuses a coalesced message, the writer resends its
// datagrams (and the rest of the batch) one by one, turns GSO off for the socket, and nothing
// is lost or sent twice. Once with the test hook standing in for a device that cannot
// checksum segments (EIO), once for real: the kernel refuses GSO on a socket whose UDP
// checksums are off (SO_NO_CHECK, IPv4).
func TestGSOFallback(t *testing.T) {
	sends := concat(repeat(5, 1200, 0), repeat(1, 4, 0), repeat(100, 1200, 0), repeat(3, 900, 0))
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network+"/hook", func(t *testing.T) {
			rcv, addr := gsoReceiver(t, network)
			sender, w := gsoSender(t, network, netip.AddrPort{})
			w.failGSO = unix.EIO
			checkBatch(t, w, sender, []*net.UDPConn{rcv}, []netip.AddrPort{addr}, sends)
			require.False(t, w.gso.Load(), "GSO still on after EIO")
			checkBatch(t, w, sender, []*net.UDPConn{rcv}, []netip.AddrPort{addr}, sends)
		})
	}
	t.Run("udp4/SO_NO_CHECK", func(t *testing.T) {
		rcv, addr := gsoReceiver(t, "udp4")
		sender, w := gsoSender(t, "udp4", addr)
		rc, err := sender.SyscallConn()
		require.NoError(t, err)
		require.NoError(t, rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
		}))
		require.NoError(t, err)
		checkBatch(t, w, sender, []*net.UDPConn{rcv}, []netip.AddrPort{addr}, sends)
		require.False(t, w.gso.Load(), "the kernel accepted GSO without checksums")
	})
}

// TestGSOWriterAllocs: a batch write that coalesces allocates nothing.
func TestGSOWriterAllocs(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			// Nobody reads: once its buffer is full the receiving socket drops what comes.
			_, addr := gsoReceiver(t, network)
			_, w := gsoSender(t, network, netip.AddrPort{})
			sends := concat(repeat(20, 1200, 0), repeat(1, 300, 0), repeat(11, 1200, 0))
			ms := make([]message, len(sends))
			for i, s := range sends {
				b := gsoDatagram(i, s.size)
				ms[i] = message{buf: &packetBuf{b: b, n: len(b)}, ap: addr}
			}
			allocs := testing.AllocsPerRun(100, func() {
				if err := w.writeBatch(ms); err != nil {
					panic(err)
				}
			})
			require.Zero(t, allocs)
			require.True(t, w.gso.Load())
		})
	}
}
