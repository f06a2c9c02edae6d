package session

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// TestCoreIsSansIO keeps the package boundary by tooling, not by hope: the core never reads the
// clock, sleeps or starts goroutines.
func TestCoreIsSansIO(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement in the sans-IO core", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" {
					switch n.Sel.Name {
					case "Now", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick", "Since", "Until":
						t.Errorf("%s: time.%s in the sans-IO core", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "net" && n.Sel.Name != "ErrClosed" {
					t.Errorf("%s: net.%s in the sans-IO core", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
	require.Greater(t, checked, 5)
}

var t0 = time.Unix(1_700_000_000, 0)

// handshake connects a client and a server core directly (no loss) and returns them with the
// stream usable.
func handshake(t testing.TB, conf *Config) (*Conn, *Conn, time.Time) {
	now := t0
	c := NewClient(conf, 0xc1, 0x5e, now)
	s := NewServer(conf, 0x5f, 0xc1, 0x5e, now, false)
	buf := make([]byte, MaxDatagramSizeLimit)
	_, err := c.Write([]byte("hello"))
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		exchange(c, s, now, buf)
		now = now.Add(time.Millisecond)
	}
	key := []byte("0123456789abcdef")
	require.NoError(t, c.InstallPacketKey(key))
	require.NoError(t, s.InstallPacketKey(key))
	c.SetHandshakeComplete(now)
	s.SetHandshakeComplete(now)
	exchange(c, s, now, buf)
	exchange(c, s, now, buf)
	got := make([]byte, 16)
	n, err := s.Read(got)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got[:n]))
	return c, s, now
}

// exchange moves every datagram each side wants to send to the other, once.
func exchange(a, b *Conn, now time.Time, buf []byte) (sent int) {
	for _, dir := range [2][2]*Conn{{a, b}, {b, a}} {
		for {
			n, ok := dir[0].PollDatagram(now, buf)
			if !ok {
				break
			}
			sent++
			dir[1].HandleDatagram(now, buf[:n])
		}
	}
	return sent
}

func TestClientPadsInitials(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	_, err := c.Write([]byte("client hello"))
	require.NoError(t, err)
	buf := make([]byte, 1500)
	n, ok := c.PollDatagram(t0, buf)
	require.True(t, ok)
	require.GreaterOrEqual(t, n, header.MinInitialDatagramSize)
	h, _, err := header.Open(buf[:n])
	require.NoError(t, err)
	require.Equal(t, header.TypeInitial, h.Type)
	require.Equal(t, uint64(1), h.SrcConnID)
	require.Equal(t, uint64(2), h.DstConnID)
}

// TestAmplificationLimit: a server that has heard one 1200-byte datagram from an unvalidated
// address sends at most 3600 bytes, however much it has to say (RFC 9000 §8.1).
func TestAmplificationLimit(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	s := NewServer(nil, 3, 1, 2, t0, false)
	_, err := c.Write([]byte("client hello"))
	require.NoError(t, err)
	buf := make([]byte, 1500)
	n, ok := c.PollDatagram(t0, buf)
	require.True(t, ok)
	s.HandleDatagram(t0, buf[:n])
	s.SetHandshakeComplete(t0)
	_, err = s.Write(make([]byte, 100_000))
	require.NoError(t, err)
	total := 0
	for {
		n, ok := s.PollDatagram(t0, buf)
		if !ok {
			break
		}
		total += n
	}
	require.LessOrEqual(t, total, 3*1200)
	require.Greater(t, total, 2*1200, "the server should use its allowance")
	require.NotZero(t, s.Stats().Drops.Amplification)

	// A validated server (Retry token) is not limited.
	v := NewServer(nil, 3, 1, 2, t0, true)
	v.HandleDatagram(t0, buf[:0]) // nothing: still validated by construction
	_, err = v.Write(make([]byte, 100_000))
	require.NoError(t, err)
	total = 0
	for {
		n, ok := v.PollDatagram(t0, buf)
		if !ok {
			break
		}
		total += n
	}
	require.Greater(t, total, 3*1200)
}

func TestCorruptedDatagramIsDroppedAndCounted(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, 1500)
	_, err := c.Write([]byte("payload"))
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	bad := append([]byte(nil), buf[:n]...)
	bad[n/2] ^= 0x10
	s.HandleDatagram(now, bad)
	require.Equal(t, uint64(1), s.Stats().Drops.Integrity)
	require.Zero(t, s.Readable(), "corrupted data must never reach the stream")
	s.HandleDatagram(now, buf[:n])
	require.Equal(t, len("payload"), s.Readable())
	s.HandleDatagram(now, buf[:n])
	require.Equal(t, uint64(1), s.Stats().Drops.Duplicate)
}

func TestGarbageNeverPanics(t *testing.T) {
	_, s, now := handshake(t, nil)
	for i := 0; i < 2000; i++ {
		b := make([]byte, i%1300)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		s.HandleDatagram(now, b)
	}
	require.Nil(t, s.Err())
	require.NotZero(t, s.Stats().Drops.Total())
}

func TestIdleTimeout(t *testing.T) {
	c, _, now := handshake(t, &Config{IdleTimeout: 5 * time.Second, KeepAlive: -1})
	deadline := c.NextTimeout()
	require.False(t, deadline.IsZero())
	for !c.Done() {
		next := c.NextTimeout()
		require.False(t, next.IsZero())
		require.True(t, next.Sub(now) <= 6*time.Second, "timer too far out: %v", next.Sub(now))
		c.HandleTimeout(next)
		buf := make([]byte, 1500)
		for {
			if _, ok := c.PollDatagram(next, buf); !ok {
				break
			}
		}
	}
	var te *TimeoutError
	require.ErrorAs(t, c.Err(), &te)
	require.False(t, te.Handshake)
	require.ErrorIs(t, c.Err(), net.ErrClosed)
	var ne net.Error
	require.True(t, errors.As(c.Err(), &ne) && ne.Timeout())
}

func TestKeepAliveKeepsIdleConnectionOpen(t *testing.T) {
	c, s, now := handshake(t, &Config{IdleTimeout: 3 * time.Second, KeepAlive: time.Second})
	buf := make([]byte, 1500)
	end := now.Add(time.Minute)
	for now.Before(end) {
		next := c.NextTimeout()
		if t2 := s.NextTimeout(); t2.Before(next) {
			next = t2
		}
		now = next
		c.HandleTimeout(now)
		s.HandleTimeout(now)
		exchange(c, s, now, buf)
		require.NoError(t, c.Err())
		require.NoError(t, s.Err())
	}
}

func TestHandshakeTimeout(t *testing.T) {
	c := NewClient(&Config{HandshakeTimeout: 2 * time.Second}, 1, 2, t0)
	buf := make([]byte, 1500)
	now := t0
	for i := 0; i < 100 && c.Err() == nil; i++ {
		for {
			if _, ok := c.PollDatagram(now, buf); !ok {
				break
			}
		}
		now = c.NextTimeout()
		c.HandleTimeout(now)
	}
	var te *TimeoutError
	require.ErrorAs(t, c.Err(), &te)
	require.True(t, te.Handshake)
	require.Equal(t, t0.Add(2*time.Second), now)
}

// TestOptimisticAckIsDetected: an ACK for a skipped packet number closes the connection
// (RFC 9000 §21.4).
func TestOptimisticAckIsDetected(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, 1500)
	_, err := c.Write(make([]byte, 2<<20))
	require.NoError(t, err)
	// Send until a number is skipped.
	var last uint64
	skipped := header.NoPacket
	for i := 0; i < 3000 && skipped == header.NoPacket; i++ {
		now = now.Add(time.Millisecond)
		n, ok := c.PollDatagram(now, buf)
		if !ok {
			exchange(c, s, now, buf)
			continue
		}
		h, _, err := header.Open(buf[:n])
		require.NoError(t, err)
		pn := header.DecodePacketNumber(last, h.PacketNumber, h.PNLen)
		if last != 0 && pn > last+1 {
			skipped = last + 1
		}
		last = pn
		s.HandleDatagram(now, buf[:n])
	}
	require.NotEqual(t, header.NoPacket, skipped, "no packet number was skipped")
	// Forge an ACK for the skipped number.
	var a header.AckFrame
	a.Ranges[0] = header.AckRange{Smallest: skipped, Largest: skipped}
	a.NumRanges = 1
	b := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: c.LocalConnID(), PacketNumber: 1 << 20, PNLen: 4, Authenticated: true})
	b = header.AppendAck(b, &a)
	b = sealAsPeer(t, b, true, 1<<20) // even an authenticated peer may not acknowledge a skipped number
	c.HandleDatagram(now, b)
	var ce *CloseError
	require.ErrorAs(t, c.Err(), &ce)
	require.Equal(t, CodeProtocolViolation, ce.Code)
}

func TestFlowControlViolationCloses(t *testing.T) {
	_, s, now := handshake(t, &Config{InitialWindow: 64 << 10, MaxWindow: 64 << 10})
	b := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: s.LocalConnID(), PacketNumber: 1 << 20, PNLen: 4, Authenticated: true})
	b = header.AppendStream(b, 10<<20, []byte("beyond the window"), false)
	b = sealAsPeer(t, b, false, 1<<20)
	s.HandleDatagram(now, b)
	var ce *CloseError
	require.ErrorAs(t, s.Err(), &ce)
	require.Equal(t, CodeFlowControl, ce.Code)
	require.Equal(t, uint64(1), s.Stats().Drops.FlowControl)
}

func TestRetryRestartsFirstFlight(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	_, err := c.Write([]byte("client hello"))
	require.NoError(t, err)
	buf := make([]byte, 1500)
	_, ok := c.PollDatagram(t0, buf)
	require.True(t, ok)
	// The server answers statelessly with a Retry carrying a token and its chosen CID 9.
	r := header.AppendHeader(nil, &header.Header{Type: header.TypeRetry, Version: header.Version1, DstConnID: 1, SrcConnID: 9, Token: []byte("token")})
	r = header.Seal(r, 0)
	c.HandleDatagram(t0, r)
	require.Equal(t, uint64(9), c.RemoteConnID())
	n, ok := c.PollDatagram(t0, buf)
	require.True(t, ok)
	h, payload, err := header.Open(buf[:n])
	require.NoError(t, err)
	require.Equal(t, header.TypeInitial, h.Type)
	require.Equal(t, uint64(9), h.DstConnID)
	require.Equal(t, "token", string(h.Token))
	require.Contains(t, string(payload), "client hello", "the first flight is sent again")
	// A second Retry is ignored.
	c.HandleDatagram(t0, r)
	require.Equal(t, uint64(1), c.Stats().Drops.WrongType)
}

func TestWriteAfterCloseWriteAndClose(t *testing.T) {
	c, _, now := handshake(t, nil)
	c.CloseWrite()
	_, err := c.Write([]byte("x"))
	require.ErrorIs(t, err, ErrWriteClosed)
	c.Close(now, CodeApplication, "bye")
	_, err = c.Read(make([]byte, 10))
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestSteadyStateAllocs asserts the per-datagram path (Write, PollDatagram, HandleDatagram, ACK
// processing, Read) does not allocate once warmed up.
func TestSteadyStateAllocs(t *testing.T) {
	if os.Getenv("TLSGRAM_RACE") != "" {
		t.Skip("allocation counts differ under the race detector")
	}
	c, s, now := handshake(t, &Config{DisablePacing: true})
	buf := make([]byte, 1500)
	payload := make([]byte, 4096)
	rbuf := make([]byte, 8192)
	step := func() {
		now = now.Add(100 * time.Microsecond)
		_, _ = c.Write(payload)
		exchange(c, s, now, buf)
		for {
			n, _ := s.Read(rbuf)
			if n == 0 {
				break
			}
		}
	}
	for i := 0; i < 2000; i++ {
		step()
	}
	allocs := testing.AllocsPerRun(500, step)
	if !raceEnabled { // sync.Pool drops some Puts on purpose under the race detector (scratch.go)
		require.Zero(t, allocs)
	}
}

// BenchmarkSessionSendReceive measures the core's cost per datagram: chunking, header and frames,
// CRC, parsing, reassembly, ACK generation and processing, both sides.
func BenchmarkSessionSendReceive(b *testing.B) {
	for _, size := range []int{1200, 1452} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			c, s, now := handshake(b, &Config{DisablePacing: true, MaxDatagramSize: size})
			buf := make([]byte, size)
			payload := make([]byte, 64<<10)
			rbuf := make([]byte, 64<<10)
			b.ReportAllocs()
			b.ResetTimer()
			var datagrams int
			var bytes int64
			for datagrams < b.N {
				now = now.Add(50 * time.Microsecond)
				if c.SendSpace() > len(payload) {
					_, _ = c.Write(payload)
				}
				datagrams += exchange(c, s, now, buf)
				for {
					n, _ := s.Read(rbuf)
					if n == 0 {
						break
					}
					bytes += int64(n)
				}
			}
			b.SetBytes(bytes / int64(max(b.N, 1)))
		})
	}
}

// TestReceiveWindowBeforeHandshake: an unauthenticated peer may not make us buffer more than
// InitialMaxData; the configured window opens when the handshake completes.
func TestReceiveWindowBeforeHandshake(t *testing.T) {
	s := NewServer(&Config{InitialWindow: 4 << 20}, 3, 1, 2, t0, true)
	b := header.AppendHeader(nil, &header.Header{Type: header.TypeInitial, Version: header.Version1, DstConnID: 2, SrcConnID: 1, PacketNumber: 0, PNLen: 4})
	b = header.AppendStream(b, InitialMaxData+100, []byte("too far before the handshake"), false)
	b = header.AppendPadding(b, 1200-len(b)-header.TrailerLen)
	b = header.Seal(b, 0)
	s.HandleDatagram(t0, b)
	var ce *CloseError
	require.ErrorAs(t, s.Err(), &ce)
	require.Equal(t, CodeFlowControl, ce.Code)

	c, srv, now := handshake(t, &Config{InitialWindow: 4 << 20})
	_ = c
	require.Equal(t, uint64(4<<20), srv.Stats().ReceiveWindow)
	buf := make([]byte, 1500)
	n, ok := srv.PollDatagram(now, buf) // the handshake's completion announces the real window
	if ok {
		c.HandleDatagram(now, buf[:n])
	}
	require.GreaterOrEqual(t, c.Stats().SendWindow, uint64(4<<20))
}

// TestReceiveWindowAutoTuning: a reader that keeps up makes the window grow towards MaxWindow, so
// a long fat path is not capped at InitialWindow per RTT.
func TestReceiveWindowAutoTuning(t *testing.T) {
	conf := &Config{InitialWindow: 64 << 10, MaxWindow: 2 << 20}
	p := newPair(t, conf, 3)
	p.delay = 20 * time.Millisecond
	p.out[0] = randBytes(p.rng, 8<<20)
	p.run(120 * time.Second)
	w := p.ends[1].Stats().ReceiveWindow
	require.Greater(t, w, uint64(64<<10), "the window never grew")
	require.LessOrEqual(t, w, uint64(2<<20))

	fixed := newPair(t, &Config{InitialWindow: 64 << 10, MaxWindow: 64 << 10}, 3)
	fixed.delay = 20 * time.Millisecond
	fixed.out[0] = randBytes(fixed.rng, 1<<20)
	fixed.run(120 * time.Second)
	require.Equal(t, uint64(64<<10), fixed.ends[1].Stats().ReceiveWindow)
}

func TestCloseWithoutPeerIsDoneAtOnce(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	c.Close(t0, CodeApplication, "never mind")
	buf := make([]byte, 1500)
	_, ok := c.PollDatagram(t0, buf)
	require.True(t, ok, "the CLOSE frame goes out")
	require.True(t, c.Done())
}

// TestForgedAndFlippedAuthDropped: after the handshake, a datagram with a valid CRC but no tag, a
// datagram with a wrong tag, and a datagram whose authentication flag was flipped in transit never
// reach the stream.
func TestForgedAndFlippedAuthDropped(t *testing.T) {
	c, s, now := handshake(t, nil)
	buf := make([]byte, 1500)
	_, err := c.Write([]byte("genuine"))
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	h, _, err := header.Open(buf[:n])
	require.NoError(t, err)
	require.True(t, h.Authenticated, "after the handshake the client authenticates its datagrams")
	genuine := append([]byte(nil), buf[:n]...)

	// A forgery with a valid CRC and the next packet number.
	f := header.AppendHeader(nil, &header.Header{Type: header.TypeShort, DstConnID: s.LocalConnID(), PacketNumber: h.PacketNumber + 1, PNLen: 4})
	f = header.AppendStream(f, 0, []byte("forged!"), false)
	f = header.Seal(f, 0)
	s.HandleDatagram(now, f)
	require.Equal(t, uint64(1), s.Stats().Drops.Unauthenticated)

	// The genuine datagram with one bit of its payload flipped fails the tag.
	bad := append([]byte(nil), genuine...)
	bad[len(bad)-header.TagLen-2] ^= 1
	s.HandleDatagram(now, bad)
	require.Equal(t, uint64(1), s.Stats().Drops.Integrity)

	// The authentication flag cleared in transit: the CRC check fails on the tag bytes.
	flipped := append([]byte(nil), genuine...)
	flipped[0] ^= 0x04
	s.HandleDatagram(now, flipped)
	require.Equal(t, uint64(2), s.Stats().Drops.Integrity+s.Stats().Drops.Unauthenticated-1)

	s.HandleDatagram(now, genuine)
	got := make([]byte, 64)
	// handshake() left "hello" read already; the stream continues with "genuine".
	m, err := s.Read(got)
	require.NoError(t, err)
	require.Equal(t, "genuine", string(got[:m]))
	require.NoError(t, s.Err())
}

func TestInstallPacketKeyRejectsBadKeys(t *testing.T) {
	c := NewClient(nil, 1, 2, t0)
	require.Error(t, c.InstallPacketKey(make([]byte, 15)))
	require.NoError(t, c.InstallPacketKey(make([]byte, PacketKeyLen)))
}

// sealAsPeer ends b in the tag the handshake() peers' key gives it, as sent by the server
// (fromServer) or the client.
func sealAsPeer(t testing.TB, b []byte, fromServer bool, pn uint64) []byte {
	var c Conn
	require.NoError(t, c.InstallPacketKey([]byte("0123456789abcdef")))
	return c.auth.seal(b, 0, fromServer, pn)
}

// TestClosingAcknowledgesLateFIN: the server closes right after reading the client's data; the
// client's FIN reaches it only then. The CLOSE it sends in answer must acknowledge the FIN, or the
// client's graceful close fails although everything arrived.
func TestClosingAcknowledgesLateFIN(t *testing.T) {
	cl, sv, now := handshake(t, nil)
	buf := make([]byte, 1500)
	_, err := cl.Write([]byte("close_notify"))
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		now = now.Add(30 * time.Millisecond)
		cl.HandleTimeout(now)
		sv.HandleTimeout(now)
		exchange(cl, sv, now, buf)
	}
	got := make([]byte, 64)
	n, _ := sv.Read(got)
	require.Equal(t, "close_notify", string(got[:n]))
	require.True(t, cl.AllAcked())

	sv.Close(now, CodeNoError, "")
	_, ok := sv.PollDatagram(now, buf) // the first CLOSE, lost
	require.True(t, ok)
	cl.CloseWrite()
	n, ok = cl.PollDatagram(now, buf)
	require.True(t, ok)
	sv.HandleDatagram(now, buf[:n]) // the FIN reaches the closing server
	n, ok = sv.PollDatagram(now, buf)
	require.True(t, ok, "a closing endpoint answers with CLOSE")
	cl.HandleDatagram(now, buf[:n])
	require.True(t, cl.AllAcked(), "the FIN arrived but was never acknowledged")
}

// TestClientProbesUntilHandshakeComplete: the server's flight is lost beyond its first datagram,
// and so are the client's ACKs, which would have given the server the credit to send more
// (RFC 9000 §8.1). The client has nothing in flight, yet must keep probing — with padded
// datagrams — or the handshake deadlocks.
func TestClientProbesUntilHandshakeComplete(t *testing.T) {
	now := t0
	c := NewClient(nil, 0xc1, 0x5e, now)
	s := NewServer(nil, 0x5f, 0xc1, 0x5e, now, false)
	buf := make([]byte, 1500)
	_, err := c.Write([]byte("client-hello"))
	require.NoError(t, err)
	n, ok := c.PollDatagram(now, buf)
	require.True(t, ok)
	s.HandleDatagram(now, buf[:n])
	_, err = s.Write(make([]byte, 6000)) // more than 3 × 1200
	require.NoError(t, err)
	first := true
	for n, ok := s.PollDatagram(now, buf); ok; n, ok = s.PollDatagram(now, buf) {
		if first {
			c.HandleDatagram(now, buf[:n]) // only the first arrives
			first = false
		}
	}
	// TLS reads the part of the flight that came and asks for more. The rest of the flight is
	// on its way, so the client keeps holding its ACK for its answer (releaseHeldAck) until the
	// hold ends.
	for n, _ := c.Read(buf); n > 0; n, _ = c.Read(buf) {
	}
	require.False(t, c.AckDue(), "TLS blocked mid-flight: the ACK waits for its answer")
	require.Equal(t, now.Add(ackHold), c.NextTimeout(), "the hold's bound")
	now = c.NextTimeout()
	c.HandleTimeout(now)
	require.True(t, c.AckDue())
	for _, ok := c.PollDatagram(now, buf); ok; _, ok = c.PollDatagram(now, buf) {
		// the client's ACKs are lost
	}
	require.Positive(t, s.Stats().Drops.Amplification, "the server is amplification-limited")

	for range 3 {
		next := c.NextTimeout()
		require.False(t, next.IsZero(), "the client stopped probing during the handshake")
		now = next
		c.HandleTimeout(now)
		n, ok = c.PollDatagram(now, buf)
		require.True(t, ok)
		require.GreaterOrEqual(t, n, header.MinInitialDatagramSize, "the probe is padded")
	}
	before := s.Stats().BytesSent
	s.HandleDatagram(now, buf[:n])
	for _, ok := s.PollDatagram(now, buf); ok; _, ok = s.PollDatagram(now, buf) {
	}
	require.Greater(t, s.Stats().BytesSent, before, "the probe gave the server credit to resend")
}
