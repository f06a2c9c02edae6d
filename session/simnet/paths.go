package simnet

import (
	"time"

	"github.com/tlsgram/tlsgram/session"
)

// addresses models the peer addresses of a scenario with Rebind or Spoof (see Scenario): the
// client's current address, the one the server sends to, and an attacker's. Each datagram carries
// its address through the links in one byte in front of it — the client's source address on the
// way up, the server's destination on the way down — and the byte is removed before a core sees
// the datagram. Without Rebind and Spoof nothing is wrapped.
type addresses struct {
	on        bool
	spoof     bool      // Scenario.Spoof
	client    byte      // the client's address now; a rebinding moves it to the next value
	peer      byte      // where the server sends
	wrapBuf   []byte    // scratch for wrap
	rebinds   int       // Scenario.Rebind entries applied
	hsDone    time.Time // when both ends had completed the handshake
	seen      int       // client datagrams the attacker saw
	misrouted uint64    // server datagrams sent to an address the client no longer has
	moves     int       // times the server moved to another address
	spoofed   int       // copies the attacker sent from its own address
}

// payload is the datagram without its address byte.
func (a *addresses) payload(b []byte) []byte {
	if !a.on || len(b) == 0 {
		return b
	}
	return b[1:]
}

// rebind applies the rebindings of s that are due at now.
func (a *addresses) rebind(s *Scenario, client, server *session.Conn, now time.Time) {
	if a.rebinds == len(s.Rebind) {
		return
	}
	if a.hsDone.IsZero() {
		if !client.HandshakeComplete() || !server.HandshakeComplete() {
			return
		}
		a.hsDone = now
	}
	for a.rebinds < len(s.Rebind) && now.Sub(a.hsDone) >= s.Rebind[a.rebinds] {
		a.client++
		a.rebinds++
	}
}

// attackerAddr is the address the spoofing attacker sends from.
const attackerAddr = 0xff

// wrap prefixes a datagram sent by end i (0 client, 1 server) with its address.
func (a *addresses) wrap(i int, dg []byte) []byte {
	if !a.on {
		return dg
	}
	addr := a.client
	if i == 1 {
		addr = a.peer
	}
	a.wrapBuf = append(append(a.wrapBuf[:0], addr), dg...)
	return a.wrapBuf
}

// deliver hands a datagram that crossed link i to dst, the core at its end: to the server
// through HandleDatagramFrom when it comes from an address other than the server's peer, to
// the client only when it was sent to the client's current address (a datagram for an address
// the NAT no longer maps is lost).
func (a *addresses) deliver(i int, dst *session.Conn, now time.Time, b []byte) {
	if !a.on {
		dst.HandleDatagram(now, b)
		return
	}
	if len(b) == 0 {
		return
	}
	addr, dg := b[0], b[1:]
	if i == 0 && a.spoof && dst.HandshakeComplete() {
		// An attacker on the path races every 32nd datagram to the server from its own
		// address (RFC 9000 §9.3.3): the copy arrives first, the original is a duplicate.
		if a.seen++; a.seen%32 == 0 {
			a.spoofed++
			a.from(attackerAddr, dst, now, dg)
			return
		}
	}
	switch {
	case i == 1 && addr != a.client:
		a.misrouted++
	case i == 0 && addr != a.peer:
		a.from(addr, dst, now, dg)
	default:
		dst.HandleDatagram(now, dg)
	}
}

// from hands the server a datagram from an address other than its peer's.
func (a *addresses) from(addr byte, dst *session.Conn, now time.Time, dg []byte) {
	// A new address is a new host as far as the server knows: congestion control restarts.
	if dst.HandleDatagramFrom(now, dg, false) {
		a.peer = addr
		a.moves++
	}
}
