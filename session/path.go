package session

import (
	"crypto/rand"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/session/congestion"
)

// Paths that change (RFC 9000 §9). The core knows no addresses: the transport tells it that a
// datagram came from a peer address other than the current one (HandleDatagramFrom), and moves
// its sends there when the core says so. The rules are RFC 9000 §9.3's:
//
//   - Only an authenticated datagram, with the highest packet number received so far and at
//     least one frame other than PADDING, PATH_CHALLENGE, PATH_RESPONSE or NEW_CONNECTION_ID
//     (a non-probing packet), moves the connection. A datagram replayed from another address is
//     a duplicate and moves nothing; a copy that overtakes the original moves the connection
//     only until the peer's next datagram from its real address moves it back.
//   - A server validates the new address with PATH_CHALLENGE before it trusts it: until the
//     PATH_RESPONSE arrives it sends at most three times what it received there (§8.1, §9.3.1),
//     so a spoofed move cannot turn the session into an amplifier.
//   - A new path has its own congestion: the controller, the RTT estimate and the path MTU
//     start afresh (§9.4), and packets still in flight on the old path leave the new
//     controller's accounting — unless only the port changed (a NAT rebinding, or a client
//     that opened a new socket on the same host), where §9.4 keeps them: the path is the same.
//   - Each end gives the other spare connection IDs (NEW_CONNECTION_ID) and moves to an unused
//     one when the path changes, so that an observer cannot link the old path and the new
//     (§9.5).

// Bounds on connection IDs: the IDs one end issues (Conn.IssueConnID) and the unused ones it
// keeps of its peer's. A NEW_CONNECTION_ID beyond maxSpareConnIDs is ignored.
const (
	maxLocalConnIDs  = 4
	maxSpareConnIDs  = 4
	maxPathChallenge = 8 // PATH_CHALLENGEs sent for one path before the server stops asking
)

// pathState is the migration state of a connection.
type pathState struct {
	validating   bool    // server: the peer's current address is not validated yet
	challenge    [8]byte // what the PATH_RESPONSE must echo
	challengeDue bool    // a PATH_CHALLENGE frame is due
	challenges   int     // PATH_CHALLENGEs sent for the current path
	responseDue  bool    // a PATH_RESPONSE frame is due
	response     [8]byte // what it echoes

	local    [maxLocalConnIDs]uint64 // spare IDs we issued and accept besides localCID
	nLocal   int
	announce uint8                   // bit i: local[i] still needs a NEW_CONNECTION_ID (until acknowledged)
	spare    [maxSpareConnIDs]uint64 // the peer's unused spare IDs
	spareSeq [maxSpareConnIDs]uint64 // and their sequence numbers
	nSpare   int
	usedSeq  uint64 // sequence numbers up to this one were used or skipped (+1; 0 = none)
}

// HandleDatagramFrom is HandleDatagram for a datagram that came from a peer address other than
// the one the transport sends to; portOnly says that only the port differs. It reports whether
// the connection moved to that address: the transport then sends everything there. It moves
// only for an authenticated, non-probing datagram with the highest packet number received so
// far, after the handshake.
func (c *Conn) HandleDatagramFrom(now time.Time, dg []byte, portOnly bool) (moved bool) {
	before := c.rx.largest
	c.HandleDatagram(now, dg)
	if c.rx.largest == before || c.state != stateOpen || !c.handshakeComplete || c.auth == nil || !c.authRecv {
		return false // dropped, old, before the handshake, or not authenticated
	}
	if !nonProbing(dg) {
		return false
	}
	c.stats.PathChanges++
	c.newPath(now, portOnly)
	if !c.isClient {
		c.validatePath(len(dg))
	}
	c.noteSendPending()
	return true
}

// Migrate tells the core that the transport now sends from a new local address (a client that
// moved to a new socket on purpose); portOnly says that only the port changed. The core moves
// to a spare connection ID of the server's, restarts congestion control for a new path and
// sends a PING at once, so that the server learns the new address without waiting for data.
// It returns false before the handshake completes, when there is nothing to migrate yet.
func (c *Conn) Migrate(now time.Time, portOnly bool) bool {
	if c.state != stateOpen || !c.handshakeComplete || c.auth == nil {
		return false
	}
	c.stats.PathChanges++
	c.newPath(now, portOnly)
	c.pingSend = true
	c.noteSendPending()
	return true
}

// nonProbing reports whether a verified datagram carries a frame other than the probing ones
// (RFC 9000 §9.1). Called only for the rare datagram from a new address, after HandleDatagram
// accepted it, so the second parse costs nothing in steady state.
func nonProbing(dg []byte) bool {
	_, payload, err := header.Open(dg)
	if err != nil {
		return false
	}
	var f header.Frame
	for p := payload; len(p) > 0; {
		n, err := header.ParseFrame(p, &f)
		if err != nil {
			return false
		}
		switch f.Type {
		case header.FramePadding, header.FramePathChallenge, header.FramePathResponse, header.FrameNewConnID:
		default:
			return true
		}
		p = p[n:]
	}
	return false
}

// newPath moves the sender to a new path: a spare connection ID and, unless only the port
// changed, "new path: reset controller + RTT" (RFC 9002 §9.4 and RFC 9000 §9.4) and the path
// MTU search from 1200 bytes. Packets still in flight then keep their data accounting (an ACK
// for them still acknowledges the data) but no longer count in bytes in flight: their size is
// forgotten, so their ACK or loss means nothing to the new controller.
//
// Why not reset after a port change too: the path is the same, and the reset costs. On
// loopback a migrating client's reads paused for a second — the initial 333 ms RTT's timers —
// instead of 2 ms (TestMigrateMidTransfer).
func (c *Conn) newPath(now time.Time, portOnly bool) {
	c.useSpareConnID()
	if portOnly {
		return
	}
	c.rec.cc = c.conf.Congestion(c.conf.MaxDatagramSize)
	c.rec.pacer = congestion.NewPacer(c.conf.MaxDatagramSize)
	c.rec.rtt = congestion.RTT{}
	c.pmtu.init(c.conf.MaxDatagramSize, c.conf.DisablePathMTUDiscovery)
	for i := c.rec.sent.head; i < len(c.rec.sent.pkts); i++ {
		if p := &c.rec.sent.pkts[i]; !p.gone && !p.lost {
			c.rec.bytesInFlight -= p.size
			p.size, p.pmtuProbe = 0, false
		}
	}
	c.rec.ptoCount = 0
	c.rec.lastAckElicitSent = now
}

// validatePath makes a server treat the peer's new address as unvalidated (RFC 9000 §9.3.1):
// a PATH_CHALLENGE goes out, and until its PATH_RESPONSE arrives the 3× amplification limit
// counts from the datagram that moved the connection.
func (c *Conn) validatePath(size int) {
	p := &c.path
	p.validating, p.challengeDue, p.challenges = true, true, 0
	_, _ = rand.Read(p.challenge[:]) // crypto/rand.Read never fails (Go 1.24+)
	c.addrValidated = false
	c.ampRecv, c.ampSent = uint64(size), 0
}

// IssueConnID adds id to the connection IDs this end accepts and announces it to the peer in a
// NEW_CONNECTION_ID frame, for the peer's next path. The transport routes id to this
// connection before calling it. It returns false when maxLocalConnIDs are issued already.
func (c *Conn) IssueConnID(id uint64) bool {
	p := &c.path
	if p.nLocal == maxLocalConnIDs || id == 0 || c.ownsConnID(id) {
		return false
	}
	p.local[p.nLocal] = id
	p.announce |= 1 << p.nLocal
	p.nLocal++
	c.noteSendPending()
	return true
}

// ownsConnID reports whether id is one of the spare IDs this end issued.
func (c *Conn) ownsConnID(id uint64) bool {
	for _, l := range c.path.local[:c.path.nLocal] {
		if l == id {
			return true
		}
	}
	return false
}

// useSpareConnID moves the destination ID to the peer's lowest unused spare, if it gave one.
// Without a spare the ID stays: the path changes anyway, only linkably.
func (c *Conn) useSpareConnID() {
	p := &c.path
	if p.nSpare == 0 {
		return
	}
	c.remoteCID = p.spare[0]
	p.usedSeq = p.spareSeq[0] + 1
	copy(p.spare[:], p.spare[1:p.nSpare])
	copy(p.spareSeq[:], p.spareSeq[1:p.nSpare])
	p.nSpare--
}

// handlePathFrame applies PATH_CHALLENGE, PATH_RESPONSE and NEW_CONNECTION_ID.
func (c *Conn) handlePathFrame(f *header.Frame) {
	p := &c.path
	switch f.Type {
	case header.FramePathChallenge:
		// RFC 9000 §8.2.2: echo it. The transport sends on one path at a time, the current one.
		p.response, p.responseDue = f.PathData, true
	case header.FramePathResponse:
		if p.validating && f.PathData == p.challenge {
			p.validating, p.challengeDue = false, false
			c.addrValidated = true
			c.stats.PathValidations++
		}
	case header.FrameNewConnID:
		c.addSpareConnID(f.Sequence, f.ConnID)
	}
}

// addSpareConnID keeps a spare ID from the peer, once, in sequence order.
func (c *Conn) addSpareConnID(seq, id uint64) {
	p := &c.path
	if seq < p.usedSeq || p.nSpare == maxSpareConnIDs || id == c.remoteCID {
		return
	}
	i := 0
	for ; i < p.nSpare; i++ {
		if p.spareSeq[i] == seq {
			return // a retransmission
		}
		if p.spareSeq[i] > seq {
			break
		}
	}
	copy(p.spare[i+1:], p.spare[i:p.nSpare])
	copy(p.spareSeq[i+1:], p.spareSeq[i:p.nSpare])
	p.spare[i], p.spareSeq[i] = id, seq
	p.nSpare++
}

// pathFramesDue reports whether a path frame waits to be sent.
func (c *Conn) pathFramesDue() bool {
	p := &c.path
	return p.challengeDue || p.responseDue || (p.announce != 0 && c.authSending())
}

// appendPathFrames adds the due path frames that fit below limit and reports whether it added
// any (they are ack-eliciting). NEW_CONNECTION_ID goes only in authenticated packets: a forged
// one could send the peer to an ID nobody routes.
func (c *Conn) appendPathFrames(b []byte, limit int, sp *sentPacket, authenticated bool) ([]byte, bool) {
	p := &c.path
	added := false
	if p.responseDue && len(b)+9 <= limit {
		b = header.AppendPathResponse(b, p.response)
		p.responseDue, added = false, true
	}
	if p.challengeDue && len(b)+9 <= limit {
		b = header.AppendPathChallenge(b, p.challenge)
		p.challenges++
		// The first goes twice, in consecutive packets (RFC 9000 §8.2.1 allows several against
		// loss): a new path starts with the initial RTT, so a lost challenge is detected and
		// sent again only after hundreds of ms, while the server sends little to an address
		// it has not validated.
		p.challengeDue, added = p.challenges < 2, true
		sp.pathChallenge = true
	}
	for i := 0; i < p.nLocal && authenticated; i++ {
		if p.announce&(1<<i) == 0 || len(b)+1+8+8 > limit {
			continue
		}
		b = header.AppendNewConnID(b, uint64(i), p.local[i])
		p.announce &^= 1 << i
		sp.connIDs |= 1 << i
		added = true
	}
	return b, added
}

// lostFrames re-queues what a lost packet carried for path MTU discovery and migration.
func (c *Conn) lostFrames(sp *sentPacket) {
	c.pmtuLost(sp.size)
	c.path.announce |= sp.connIDs
	if sp.pathChallenge {
		c.rechallenge()
	}
}

// onPTOExtra is the probe timeout's share of pmtud.go and path.go.
func (c *Conn) onPTOExtra() {
	c.pmtuOnPTO()
	c.rechallenge()
}

// rechallenge asks again while the path is unvalidated, a bounded number of times: a server
// whose peer moved away from a spoofed address hears from it at the real one, which moves the
// connection back.
func (c *Conn) rechallenge() {
	if p := &c.path; p.validating && p.challenges < maxPathChallenge {
		p.challengeDue = true
	}
}

// ampLimited reports whether a server may send nothing more to an unvalidated address (RFC 9000
// §8.1) until that address sends more: then no timer but the peer's next datagram can change
// that, and the pacer's deadline, which PollDatagram does not reach, must not be armed.
func (c *Conn) ampLimited() bool {
	return !c.isClient && !c.addrValidated && c.ampBudget() < 64
}

// ampLastPacket reports whether sending a datagram of n bytes would leave the server
// amplification-limited (ampLimited).
func (c *Conn) ampLastPacket(n int) bool {
	return !c.isClient && !c.addrValidated && c.ampBudget()-n < 64
}
