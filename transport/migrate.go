package transport

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// Paths that change (RFC 9000 §9; the rules are the core's, in session/path.go). On a listener
// the transport notices that a client's datagram came from another address than the one it
// sends to — a NAT rebinding, or a client that moved — and lets the core decide whether the
// connection moves there (Conn.handleDatagramLocked). A dialed Conn moves on purpose with
// Migrate. After the handshake each end gives the other spare connection IDs for such moves
// (issueConnIDsLocked).

// spareConnIDs is how many spare connection IDs each end issues after the handshake: one per
// move the peer may make before it hears of new ones.
const spareConnIDs = 2

// ErrCannotMigrate is returned by Migrate for a connection that cannot move: one dialed on a
// socket the caller provided or shared (DialPacketConn, Endpoint.Dial), or one whose handshake
// has not completed or that is closed.
var ErrCannotMigrate = errors.New("tlsgram: this connection cannot migrate")

// endpoint returns the endpoint the connection uses now: the one it was created on, or the one
// Migrate moved it to.
func (c *Conn) endpoint() *endpoint {
	if ep := c.migrated.Load(); ep != nil {
		return ep
	}
	return c.ep
}

// issueConnIDsLocked routes spare connection IDs to c and hands them to the core, which announces
// them to the peer (NEW_CONNECTION_ID). Must hold c.mu.
func (c *Conn) issueConnIDsLocked() {
	ep := c.endpoint()
	var ids [spareConnIDs]uint64
	n := 0
	ep.mu.Lock()
	for range spareConnIDs {
		id := ep.newConnIDLocked()
		if ep.registerLocked(c, id) {
			ids[n] = id
			n++
		}
	}
	ep.mu.Unlock()
	for _, id := range ids[:n] {
		c.core.IssueConnID(id)
	}
}

// handleDatagramLocked gives a received datagram to the core. One from an address other than the
// peer's (on a socket that hears from anyone) may move the connection: the core decides
// (session.Conn.HandleDatagramFrom), and the driver then sends to the new address. Must hold
// c.mu; called by the driver only.
func (c *Conn) handleDatagramLocked(now time.Time, pb *packetBuf, d *driverState) {
	if d.ep.sock.connected || c.fromPeer(pb) {
		c.core.HandleDatagram(now, pb.bytes())
		return
	}
	portOnly := pb.fromAddr == nil && pb.from.Addr() == c.peer.ap.Addr()
	if !c.core.HandleDatagramFrom(now, pb.bytes(), portOnly) {
		return
	}
	c.peer.ap, c.peer.addr = pb.from, pb.fromAddr // pollLocked addresses datagrams to it
	var remote net.Addr
	if d.ep.sock.udp != nil {
		remote = net.UDPAddrFromAddrPort(unmapAddrPort(pb.from))
	} else {
		remote = pb.fromAddr
	}
	c.remoteNow.Store(&remote)
}

// fromPeer reports whether pb came from the address the connection sends to.
func (c *Conn) fromPeer(pb *packetBuf) bool {
	if pb.fromAddr == nil {
		return pb.from == c.peer.ap
	}
	// Any other net.PacketConn (in-memory ones in tests): compare what the addresses say.
	return c.peer.addr != nil && pb.fromAddr.String() == c.peer.addr.String()
}

// Migrate moves a dialed connection to a new UDP socket, and so a new local port, as a client
// does when its network changes: the server sees the connection arrive from a new address,
// validates it and follows (RFC 9000 §9). The connection uses one of the server's spare
// connection IDs on the new path, so an observer cannot link the two paths by ID, and its
// congestion control starts afresh there. Data in flight on the old path is retransmitted as
// needed; nothing is lost. It returns ErrCannotMigrate for a connection that cannot move (see
// there) and the socket error if no new socket could be opened.
func (c *Conn) Migrate() error {
	old := c.endpoint()
	c.mu.Lock()
	peer := c.peer.ap // the driver moves it, under mu
	c.mu.Unlock()
	if !old.single || old.sock.udp == nil || !peer.IsValid() {
		return c.opError("migrate", ErrCannotMigrate)
	}
	pc, err := newSocketTo(peer)
	if err != nil {
		return c.opError("migrate", err)
	}
	ep := newEndpoint(pc, c.conf, true, true, familyOf(peer.Addr().Is4()))
	ep.closing, ep.single = true, true
	c.mu.Lock()
	if !c.handshakeDone || c.err != nil || c.noMigrate {
		c.mu.Unlock()
		_ = pc.Close()
		return c.opError("migrate", ErrCannotMigrate)
	}
	old.mu.Lock()
	ids := c.ids
	c.ids = nil
	for _, id := range ids {
		if old.conns[id] == c {
			delete(old.conns, id)
		}
	}
	old.mu.Unlock()
	ep.mu.Lock()
	ep.registerLocked(c, ids...)
	ep.mu.Unlock()
	ep.start()
	c.migrated.Store(ep)
	// A new socket on the same local address: only the port changes, as the server sees it.
	c.core.Migrate(time.Now(), sameLocalAddr(old.sock.pc.LocalAddr(), pc.LocalAddr()))
	c.mu.Unlock()
	old.shutdown() // closes the old socket: no connection is left on it
	c.poke()
	return nil
}

// newSocketTo opens a socket to peer like the one Dial opened.
func newSocketTo(peer netip.AddrPort) (*net.UDPConn, error) {
	lnet := "udp6"
	if peer.Addr().Is4() {
		lnet = "udp4"
	}
	if connectDialSocket {
		return net.DialUDP(lnet, nil, net.UDPAddrFromAddrPort(peer))
	}
	return net.ListenUDP(lnet, nil)
}

// sameLocalAddr reports whether two local socket addresses differ at most in the port.
func sameLocalAddr(a, b net.Addr) bool {
	ua, ok1 := a.(*net.UDPAddr)
	ub, ok2 := b.(*net.UDPAddr)
	return ok1 && ok2 && ua.IP.Equal(ub.IP)
}
