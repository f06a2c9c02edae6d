// Package simnet runs two session cores against each other over a simulated network with a
// virtual clock: tlsgram's main correctness weapon, the first tier of its tests (the seeded
// scenarios run on every go test; real sockets and the end-to-end runs come after).
//
// Each direction is an impair.Link — the same seeded impairment model the real UDP relay uses —
// so loss (random and bursty), reordering, duplication, corruption, delay, jitter, a rate limit
// with a bounded queue and blackouts are all available. The clock only moves when nothing is due:
// Run jumps to the earliest of the two cores' NextTimeout and the links' next delivery, as quinn's
// Pair::drive does. A run of minutes of virtual time takes milliseconds, and the same Scenario and
// seed always produce the same run, so a failing seed replays exactly.
//
// Run checks, at every step: byte-exact delivery in both directions, termination within the
// scenario's time bound, bounded memory in both cores, and the recovery invariants (bytes in flight
// within the congestion window, a loss-detection timer armed while data is in flight, the server's
// 3× anti-amplification limit before address validation).
package simnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/session"
)

// Scenario is one simulated connection: the path in each direction, what each side sends, and the
// bounds the run must stay within.
type Scenario struct {
	Name        string
	Up, Down    impair.Config // client→server and server→client; their Seed fields are overridden
	ClientBytes int           // bytes the client writes, then half-closes
	ServerBytes int           // bytes the server writes, then half-closes
	Config      *session.Config
	// Limit is the virtual time the whole exchange may take, graceful close included.
	Limit time.Duration
	// WriteChunk is the size of each application write (default 16 KiB, like a TLS record).
	WriteChunk int
	// Trace, if set, receives one line per datagram sent (for debugging a replayed seed).
	Trace io.Writer
	// NoAuth runs without packet authentication (CRC only), as before the TLS exporter key.
	NoAuth bool
	// Forge puts an on-path attacker on the client→server path: for every authenticated
	// datagram it sees once the server's handshake is complete, it injects two forgeries with
	// the next packet number and garbled stream data — one resealed with a valid CRC and no tag,
	// one keeping the (now wrong) tag. The stream must still arrive intact. (Before the server
	// has the key, a CRC-only datagram is all there is: header/README.md §11.)
	Forge bool
	// Rebind changes the client's address at these times after both ends completed the
	// handshake (a NAT rebinding; one during the handshake ends it, as in QUIC):
	// the server sees the client's datagrams from a new address, and its own reach the client
	// only once it sends to that address. Spoof puts an attacker on the client→server path who
	// races a copy of every 32nd datagram to the server from its own address; the server must
	// end up sending to the client. See addresses.
	Rebind []time.Duration
	Spoof  bool
}

// Result describes a finished run.
type Result struct {
	Elapsed      time.Duration // virtual time until both sides were done
	Client       session.Stats
	Server       session.Stats
	Up, Down     impair.LinkStats
	Steps        int
	MaxSendBuf   [2]int
	MaxRecvBuf   [2]int
	MaxTracked   [2]int
	MaxLinkQueue int
	// DeadRun is, per direction, the longest time over which every datagram sent was dropped.
	DeadRun [2]time.Duration
	// NetworkDead is set when the connection ended in a timeout that the path explains: some
	// direction dropped everything for at least a third of the timeout that fired (PTO backoff
	// doubles, so an outage of T silences a sender for about 2T). The caller learned of the
	// failure through a clean *session.TimeoutError; nothing was lost silently.
	NetworkDead bool
	// With Rebind or Spoof: server datagrams lost because they went to an address the client no
	// longer had, times the server moved, copies the attacker sent, and whether the server's
	// last address was the client's.
	Misrouted    uint64
	PeerMoves    int
	Spoofed      int
	PeerIsClient bool
	// MeanRTT is the client's smoothed RTT averaged over virtual time once the handshake is
	// complete: on a bottleneck path it is the base RTT plus the mean queueing delay the
	// client's sending builds.
	MeanRTT time.Duration
}

// Replay is the command line that reruns one seed of a named scenario.
func Replay(name string, seed int64) string {
	return fmt.Sprintf("go test ./session/simnet -run 'TestSimulated/%s$' -simnet.seed=%d -v", name, seed)
}

// The simulated TLS handshake: stream bytes each side writes before its application data, in
// TLS 1.3's order. The client writes its ClientHello; the server answers with its flight once it
// has read that; the client writes its Finished once it has read the server's flight, and is
// complete; the server is complete once it has read the Finished. Only then does either side
// write application data — and the client's first, tagged datagrams can overtake its untagged
// Finished, as with real TLS.
const (
	simClientHello  = 300
	simServerFlight = 3000
	simFinished     = 60
)

type end struct {
	c        *session.Conn
	appPaced bool   // its application writes at a rate of its own (RunFlows' Flow.AppRate)
	out      []byte // still to write, as far as the handshake allows so far
	avail    int    // how much of sent may be written so far
	sent     []byte // everything it writes (handshake bytes, then application data)
	in       []byte // everything it read
	eof      bool
	finSent  bool
	closed   bool
	spareID  func() uint64 // makes the spare connection IDs it issues after its handshake; nil: none
}

// Run simulates scenario s with the given seed and returns an error describing the first invariant
// that failed.
func Run(s Scenario, seed int64) (Result, error) {
	var res Result
	start := time.Unix(1_700_000_000, 0)
	now := start
	rng := rand.New(rand.NewSource(seed))
	links := newLinks(s.Up, s.Down, seed, 1, start) // [from client, from server]
	cc := s.Config
	if cc == nil {
		cc = &session.Config{}
	}
	mds := cc.MaxDatagramSize
	if mds == 0 {
		mds = session.DefaultMaxDatagramSize
	}
	chunk := s.WriteChunk
	if chunk == 0 {
		chunk = 16 << 10
	}
	clientCID, serverCID, initialDCID := rng.Uint64()|1, rng.Uint64()|1, rng.Uint64()|1
	// Each core's secrets come from the seed too, so that a run replays exactly.
	clientConf, serverConf := *cc, *cc
	clientConf.Rand = rand.New(rand.NewSource(rng.Int63()))
	serverConf.Rand = rand.New(rand.NewSource(rng.Int63()))
	ends := [2]*end{
		{c: session.NewClient(&clientConf, clientCID, initialDCID, now)},
		{c: session.NewServer(&serverConf, serverCID, clientCID, initialDCID, now, false)},
	}
	for _, e := range ends {
		e.spareID = func() uint64 { return rng.Uint64() | 1 }
	}
	for i, n := range [2]int{simClientHello + simFinished + s.ClientBytes, simServerFlight + s.ServerBytes} {
		ends[i].sent = make([]byte, n)
		rng.Read(ends[i].sent)
	}
	ends[0].allow(simClientHello)
	buf := make([]byte, session.MaxDatagramSizeLimit)
	readBuf := make([]byte, 64<<10)
	// Anti-amplification bookkeeping, observed from outside the core (RFC 9000 §8.1).
	var srvRecv, srvSent uint64
	srvValidated := false
	sendBufBound := func() int {
		sb := cc.SendBuffer
		if sb == 0 {
			sb = session.DefaultSendBuffer
		}
		return sb + chunk
	}()
	maxWindow := cc.MaxWindow
	if maxWindow == 0 {
		maxWindow = session.DefaultMaxWindow
	}

	fail := func(format string, args ...any) (Result, error) {
		res.Elapsed = now.Sub(start)
		res.Client, res.Server = ends[0].c.Stats(), ends[1].c.Stats()
		res.Up, res.Down = links[0].Stats(), links[1].Stats()
		return res, fmt.Errorf("scenario %s seed %d at t=%v: %s\n  replay: %s", s.Name, seed, now.Sub(start), fmt.Sprintf(format, args...), Replay(s.Name, seed))
	}

	deadline := start.Add(s.Limit)
	var rttTime time.Duration // virtual time since the client's handshake completed
	var rttIntegral float64   // the client's smoothed RTT integrated over rttTime
	var packetKey [session.PacketKeyLen]byte
	rng.Read(packetKey[:])
	forged := 0
	addrs := addresses{on: len(s.Rebind) > 0 || s.Spoof, spoof: s.Spoof}
	var runStart [2]time.Time // send time of the first drop in the current run of drops
	hsTimeout, idleTimeout := cc.HandshakeTimeout, cc.IdleTimeout
	if hsTimeout == 0 {
		hsTimeout = session.DefaultHandshakeTimeout
	}
	if idleTimeout == 0 {
		idleTimeout = session.DefaultIdleTimeout
	}
	// explained reports whether err is a timeout that a dead path accounts for.
	explained := func(err error) bool {
		var te *session.TimeoutError
		if !errors.As(err, &te) {
			return false
		}
		limit := idleTimeout
		if te.Handshake {
			limit = hsTimeout
		}
		return max(res.DeadRun[0], res.DeadRun[1]) >= limit/3
	}
	for {
		res.Steps++
		// Application: write while there is room, read everything ready, half-close when done,
		// close once the peer's data is all read and ours all acknowledged.
		for i, e := range ends {
			readErr, err := e.appStep(i == 0, now, packetKey[:], s.NoAuth, chunk, readBuf)
			if err != nil {
				return fail("end %d: %v", i, err)
			}
			if readErr != nil {
				if explained(readErr) {
					res.NetworkDead = true
					res.Elapsed = now.Sub(start)
					return res, nil
				}
				return fail("end %d: Read: %v (read %d bytes) c=%+v s=%+v", i, readErr, len(e.in), ends[0].c.Stats(), ends[1].c.Stats())
			}
		}
		// Transmit everything the cores have for the links.
		addrs.rebind(&s, ends[0].c, ends[1].c, now)
		for i, e := range ends {
			before := e.c.Stats()
			for {
				n, ok := e.c.PollDatagram(now, buf)
				if !ok {
					break
				}
				if n > mds {
					return fail("end %d sent %d bytes, more than MaxDatagramSize %d", i, n, mds)
				}
				if i == 0 && header.MinInitialDatagramSize > n {
					if _, long, ok := header.PeekDstConnID(buf[:n]); ok && long {
						return fail("client sent a %d-byte long-header datagram: Initials must be padded to %d", n, header.MinInitialDatagramSize)
					}
				}
				if i == 1 && !srvValidated {
					srvSent += uint64(n)
					if srvSent > 3*srvRecv {
						return fail("server sent %d bytes to an unvalidated address that sent %d (limit 3×)", srvSent, srvRecv)
					}
				}
				r := links[i].Send(now, addrs.wrap(i, buf[:n]))
				if r.Copies == 0 {
					if runStart[i].IsZero() {
						runStart[i] = now
					}
					res.DeadRun[i] = max(res.DeadRun[i], now.Sub(runStart[i]))
				} else {
					runStart[i] = time.Time{}
				}
				if s.Trace != nil {
					h, _, _ := header.Open(buf[:n])
					fmt.Fprintf(s.Trace, "%12v %s send type=%d auth=%v pn=%d len=%d drop=%v copies=%d\n", now.Sub(start), [2]string{"C→S", "S→C"}[i], h.Type, h.Authenticated, h.PacketNumber, n, r.Drop, r.Copies)
				}
			}
			// RFC 9002 §7: nothing but (at most two) probes may be sent beyond the window. In
			// flight may exceed a window that just shrank, but sending must not add to it.
			after := e.c.Stats()
			if allowed := max(before.BytesInFlight, before.CongestionWindow) + 2*mds; after.BytesInFlight > allowed {
				return fail("end %d: sent beyond the congestion window: in flight %d → %d, cwnd %d", i, before.BytesInFlight, after.BytesInFlight, before.CongestionWindow)
			}
		}
		// Invariants after the cores have acted.
		for i, e := range ends {
			st := e.c.Stats()
			if st.BytesInFlight > 0 && e.c.NextTimeout().IsZero() && e.c.Err() == nil {
				return fail("end %d: %d bytes in flight but no timer armed", i, st.BytesInFlight)
			}
			if st.SendBuffered > sendBufBound {
				return fail("end %d: send buffer %d above bound %d", i, st.SendBuffered, sendBufBound)
			}
			if uint64(st.RecvBuffered) > maxWindow {
				return fail("end %d: receive buffer %d above the maximum window %d", i, st.RecvBuffered, maxWindow)
			}
			res.MaxSendBuf[i] = max(res.MaxSendBuf[i], st.SendBuffered)
			res.MaxRecvBuf[i] = max(res.MaxRecvBuf[i], st.RecvBuffered)
			res.MaxTracked[i] = max(res.MaxTracked[i], st.SentTracked)
		}
		res.MaxLinkQueue = max(res.MaxLinkQueue, links[0].Len(), links[1].Len())

		if ends[0].c.Done() && ends[1].c.Done() {
			break
		}
		for i, e := range ends {
			err := e.c.Err()
			if err == nil || e.closed {
				continue
			}
			// The peer may close first; that is fine only once this end has read everything
			// and knows that all it sent arrived.
			var ce *session.CloseError
			if errors.As(err, &ce) && ce.Remote && ce.Code == session.CodeNoError && e.eof && e.c.AllAcked() {
				continue
			}
			if explained(err) {
				res.NetworkDead = true
				res.Elapsed = now.Sub(start)
				res.Client, res.Server = ends[0].c.Stats(), ends[1].c.Stats()
				return res, nil
			}
			return fail("end %d failed: %v (read eof=%v, all acked=%v)", i, err, e.eof, e.c.AllAcked())
		}

		// Advance the clock to the next event.
		next := time.Time{}
		earliest := func(t time.Time) {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		for i := range ends {
			earliest(ends[i].c.NextTimeout())
			earliest(links[i].NextDelivery())
		}
		if next.IsZero() {
			if ends[0].c.Err() != nil && ends[1].c.Err() != nil {
				break
			}
			return fail("deadlock: no timer armed and nothing in flight (client read %d/%d, server read %d/%d)",
				len(ends[1].in), len(ends[0].sent), len(ends[0].in), len(ends[1].sent))
		}
		if next.After(deadline) {
			return fail("not finished within %v (client read %d/%d, server read %d/%d, client %+v, server %+v)",
				s.Limit, len(ends[0].in), len(ends[1].sent), len(ends[1].in), len(ends[0].sent), ends[0].c.Stats(), ends[1].c.Stats())
		}
		if next.After(now) {
			if ends[0].c.HandshakeComplete() {
				rttTime += next.Sub(now)
				rttIntegral += float64(ends[0].c.Stats().SmoothedRTT) * float64(next.Sub(now))
			}
			now = next
		}
		// Deliver what is due, then fire due timers.
		for i := range ends {
			dst := ends[1-i]
			for {
				n, ok := links[i].Receive(now, buf)
				if !ok {
					break
				}
				dg := addrs.payload(buf[:n])
				if i == 0 && !srvValidated {
					srvRecv += uint64(len(dg))
					if cid, _, ok := header.PeekDstConnID(dg); ok && cid == serverCID && len(dg) > 0 {
						// The client can only know the server's CID from a server packet.
						if _, _, err := header.Open(dg); err == nil {
							srvValidated = true
						}
					}
				}
				addrs.deliver(i, dst.c, now, buf[:n])
				if i == 0 && s.Forge && len(dg) > 0 && dst.c.HandshakeComplete() {
					if f, ok := forge(dg, serverCID, !s.NoAuth); ok {
						forged++
						dst.c.HandleDatagram(now, f)
					}
				}
			}
		}
		for _, e := range ends {
			if t := e.c.NextTimeout(); !t.IsZero() && !t.After(now) {
				e.c.HandleTimeout(now)
			}
		}
	}
	res.Elapsed = now.Sub(start)
	res.Client, res.Server = ends[0].c.Stats(), ends[1].c.Stats()
	res.Up, res.Down = links[0].Stats(), links[1].Stats()
	res.Misrouted, res.PeerMoves, res.Spoofed, res.PeerIsClient = addrs.misrouted, addrs.moves, addrs.spoofed, addrs.peer == addrs.client
	if rttTime > 0 {
		res.MeanRTT = time.Duration(rttIntegral / float64(rttTime))
	}
	if s.Forge && forged == 0 {
		return fail("the attacker never saw a short header datagram")
	}
	if !bytes.Equal(ends[0].sent, ends[1].in) {
		return fail("client→server stream differs: sent %d bytes, server read %d", len(ends[0].sent), len(ends[1].in))
	}
	if !bytes.Equal(ends[1].sent, ends[0].in) {
		return fail("server→client stream differs: sent %d bytes, client read %d", len(ends[1].sent), len(ends[0].in))
	}
	return res, nil
}

// forge returns an attacker's variant of a short header datagram addressed to
// cid: the next packet number (so duplicate detection does not hide it) and flipped bytes after
// the header. The first call for a datagram returns a CRC-sealed copy without the authentication
// flag, alternating with a copy that keeps the flag and the stale tag.
//
// With authOnly, the attacker starts at the first authenticated datagram: before it, the server
// cannot tell forgeries from the real thing (see the session package's security notes).
func forge(dg []byte, cid uint64, authOnly bool) ([]byte, bool) {
	h, _, err := header.Open(dg)
	if err != nil || h.Type != header.TypeShort || h.DstConnID != cid || len(dg) < 1+header.ConnIDLen+4+header.TagLen+8 {
		return nil, false
	}
	if authOnly && !h.Authenticated {
		return nil, false
	}
	f := append([]byte(nil), dg...)
	if !h.Authenticated {
		// CRC only: garble and reseal — nothing can tell this from the real thing.
		pnOff := 1 + header.ConnIDLen
		f[pnOff+3]++
		body := f[pnOff+4 : len(f)-header.TrailerLen]
		for i := len(body) / 2; i < len(body); i += 97 {
			body[i] ^= 0x5a
		}
		return header.Seal(f[:len(f)-header.TrailerLen], 0), true
	}
	pnOff := 1 + header.ConnIDLen
	pn := uint32(f[pnOff])<<24 | uint32(f[pnOff+1])<<16 | uint32(f[pnOff+2])<<8 | uint32(f[pnOff+3])
	pn++
	f[pnOff], f[pnOff+1], f[pnOff+2], f[pnOff+3] = byte(pn>>24), byte(pn>>16), byte(pn>>8), byte(pn)
	body := f[pnOff+4 : len(f)-header.TagLen]
	for i := len(body) / 2; i < len(body); i += 97 {
		body[i] ^= 0x5a
	}
	if pn%2 == 0 {
		return f, true // keeps the flag and a tag that no longer matches
	}
	f[0] &^= 0x04 // drop the flag, end in a valid CRC instead of the tag
	return header.Seal(f[:len(f)-header.TagLen], 0), true
}

// newLinks makes the two directions of a path, [from client, from server], from up and down
// with seeds derived from the run's seed and n, n+1: each set of links a run makes draws its own
// fate.
func newLinks(up, down impair.Config, seed int64, n uint64, start time.Time) [2]*impair.Link {
	up.Seed = impair.DeriveSeed(seed, n)
	down.Seed = impair.DeriveSeed(seed, n+1)
	return [2]*impair.Link{impair.NewLink(up, start), impair.NewLink(down, start)}
}

// allow makes sent[:n] writable.
func (e *end) allow(n int) {
	written := e.avail - len(e.out)
	e.avail = n
	e.out = e.sent[written:n]
}

// appStep is one end's application between two network steps: the simulated TLS handshake (see
// simClientHello), writing while there is room, reading everything ready, half-closing when done,
// and closing once the peer's data is all read and ours all acknowledged. readErr is a failed
// Read, which the caller may explain by a dead path; err is any other failure.
func (e *end) appStep(client bool, now time.Time, packetKey []byte, noAuth bool, chunk int, readBuf []byte) (readErr, err error) {
	c := e.c
	switch {
	case !client && e.avail == 0 && len(e.in) >= simClientHello:
		e.allow(simServerFlight)
	case client && e.avail == simClientHello && len(e.in) >= simServerFlight:
		e.allow(simClientHello + simFinished)
	}
	hsDone := (client && e.avail == simClientHello+simFinished && len(e.out) == 0) ||
		(!client && e.avail == simServerFlight && len(e.in) >= simClientHello+simFinished)
	if hsDone && !c.HandshakeComplete() && c.Err() == nil {
		// Both ends share a packet key as if from the TLS exporter.
		if !noAuth {
			if err := c.InstallPacketKey(packetKey); err != nil {
				return nil, fmt.Errorf("InstallPacketKey: %w", err)
			}
		}
		c.SetHandshakeComplete(now)
		if !e.appPaced {
			e.allow(len(e.sent))
		}
		// Spare connection IDs for the peer's next path (RFC 9000 §9.5), as the transport
		// issues them.
		if e.spareID != nil {
			for range 2 {
				c.IssueConnID(e.spareID())
			}
		}
	}
	for len(e.out) > 0 && c.SendSpace() > 0 && c.Err() == nil {
		n := min(len(e.out), chunk, c.SendSpace())
		w, err := c.Write(e.out[:n])
		if err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		e.out = e.out[w:]
	}
	if len(e.out) == 0 && e.avail == len(e.sent) && c.HandshakeComplete() && !e.finSent && c.Err() == nil {
		c.CloseWrite()
		e.finSent = true
	}
	for !e.eof {
		n, err := c.Read(readBuf)
		e.in = append(e.in, readBuf[:n]...)
		if err == io.EOF {
			e.eof = true
			break
		}
		if err != nil {
			return err, nil
		}
		if n == 0 {
			break
		}
	}
	if e.eof && e.finSent && c.AllAcked() && !e.closed && c.Err() == nil {
		c.Close(now, session.CodeNoError, "")
		e.closed = true
	}
	return nil, nil
}
