package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/tlsgram/tlsgram/session"
)

// errHandshakeTimeout is Dial's error when Config.HandshakeTimeout passes.
var errHandshakeTimeout net.Error = &handshakeTimeoutError{}

type handshakeTimeoutError struct{}

func (*handshakeTimeoutError) Error() string   { return "tlsgram: handshake timed out" }
func (*handshakeTimeoutError) Timeout() bool   { return true }
func (*handshakeTimeoutError) Temporary() bool { return true }

func checkNetwork(network string) error {
	switch network {
	case "udp", "udp4", "udp6":
		return nil
	}
	return net.UnknownNetworkError(network)
}

// Dial opens a UDP socket of its own, connects to address and completes the TLS handshake
// before it returns. network is "udp", "udp4" or "udp6". If tlsConf.ServerName is empty it is
// set from address, as tls.Dial does; tlsConf is cloned with MinVersion raised to TLS 1.3. A nil
// conf means the defaults documented on Config.
//
// The handshake is bounded by ctx and by Config.HandshakeTimeout, whichever ends first; a
// timeout is a net.Error with Timeout() == true. On Linux, if the server's host answers with
// ICMP port unreachable before any datagram from the server arrived (nothing listens on that
// port), Dial fails at once with an error matching syscall.ECONNREFUSED. On failure every
// resource is released.
func Dial(ctx context.Context, network, address string, tlsConf *tls.Config, conf *Config) (*Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	cfg, err := prepare(tlsConf, conf)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	host, ap, err := resolve(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	lnet := "udp6"
	if ap.Addr().Is4() {
		lnet = "udp4"
	}
	var pc *net.UDPConn
	if connectDialSocket {
		// A connected socket hears only from the server, and the kernel reports an ICMP port
		// unreachable on it as ECONNREFUSED: see Conn.refused.
		pc, err = net.DialUDP(lnet, nil, net.UDPAddrFromAddrPort(ap))
	} else {
		pc, err = net.ListenUDP(lnet, nil)
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.UDPAddrFromAddrPort(ap), Err: err}
	}
	tc := tls13(tlsConf)
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return dial(ctx, pc, network, message{ap: ap}, net.UDPAddrFromAddrPort(ap), tc, cfg, true)
}

// DialPacketConn is Dial over a socket the caller provides (or any net.PacketConn, such as an
// in-memory one for tests), to raddr. The Conn takes ownership of pc and closes it when the
// connection ends, or when the dial fails. Socket buffers are left as they are.
func DialPacketConn(ctx context.Context, pc net.PacketConn, raddr net.Addr, tlsConf *tls.Config, conf *Config) (*Conn, error) {
	network := pc.LocalAddr().Network()
	cfg, err := prepare(tlsConf, conf)
	if err != nil {
		_ = pc.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	peer := message{addr: raddr}
	if _, ok := pc.(*net.UDPConn); ok {
		ua, ok := raddr.(*net.UDPAddr)
		if !ok {
			_ = pc.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: fmt.Errorf("tlsgram: %T is not a *net.UDPAddr", raddr)}
		}
		peer.ap = ua.AddrPort()
	}
	return dial(ctx, pc, network, peer, raddr, tls13(tlsConf), cfg, false)
}

// dial runs the client side of a connection on pc. own says that Dial opened pc: its buffers
// are sized, and ICMP errors on it may end the handshake early.
func dial(ctx context.Context, pc net.PacketConn, network string, peer message, raddr net.Addr, tc *tls.Config, cfg *Config, own bool) (*Conn, error) {
	family := 0 // a caller's socket: ask the kernel
	if own && peer.ap.IsValid() {
		family = familyOf(peer.ap.Addr().Is4()) // Dial opened pc as "udp4" or "udp6"
	}
	ep := newEndpoint(pc, cfg, own, true, family)
	ep.closing = true // the socket is this connection's: close it when the connection ends
	ep.refuseFast = own && ep.sock.connected
	ep.single = true
	return dialOn(ctx, ep, network, peer, raddr, tc, cfg, ep.start)
}

// dialOn runs the client side of a connection on ep's socket: its own (start starts its reader
// once the connection is registered) or a Transport's (start is nil: the reader runs).
func dialOn(ctx context.Context, ep *endpoint, network string, peer message, raddr net.Addr, tc *tls.Config, cfg *Config, start func()) (*Conn, error) {
	pc := ep.sock.pc
	ep.mu.Lock()
	local := ep.newConnIDLocked()
	core := session.NewClient(cfg.sessionConfig(), local, randomConnID(), time.Now())
	c := newConn(ep, core, network, peer, raddr, cfg)
	c.tls = tls.Client(c.bio, tc)
	ok := ep.registerLocked(c, local)
	ep.mu.Unlock()
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Source: pc.LocalAddr(), Addr: raddr, Err: net.ErrClosed}
	}
	c.observe() // before the first step: the reader's, or the first flight's
	if start != nil {
		start()
	}

	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	if err := c.tls.HandshakeContext(hctx); err != nil {
		var te *session.TimeoutError
		switch {
		case ctx.Err() != nil:
			err = ctx.Err() // context.DeadlineExceeded is a net.Error with Timeout() == true
			c.terminate(session.CodeNoError, "dial cancelled")
		case c.wasRefused():
			err = errConnRefused
			c.terminate(session.CodeNoError, "connection refused")
		case errors.Is(hctx.Err(), context.DeadlineExceeded) || errors.As(err, &te):
			err = errHandshakeTimeout
			c.terminate(session.CodeHandshakeTimeout, "handshake timeout")
		default:
			c.awaitPeerClose(hctx, err)
			err = c.withPeerReason(err)
			c.terminate(session.CodeTLS, "tls handshake failed")
		}
		return nil, &net.OpError{Op: "dial", Net: network, Source: pc.LocalAddr(), Addr: raddr, Err: err}
	}
	c.setHandshakeComplete()
	return c, nil
}

// withPeerReason adds the reason of the server's CLOSE, if one came, to a failed handshake's
// TLS error. The server's TLS alert travels with its CLOSE (session.Conn.Close), so TLS reports
// the alert ("remote error: tls: internal error") while the CLOSE says what the server's TLS
// really objected to ("serving one session already"): the caller gets both, and errors.As finds
// the tls.AlertError and the *session.CloseError alike.
func (c *Conn) withPeerReason(err error) error {
	c.mu.Lock()
	cause := c.core.Err()
	c.mu.Unlock()
	var ce *session.CloseError
	if !errors.As(cause, &ce) || !ce.Remote || ce.Reason == "" {
		return err
	}
	return &handshakeError{tls: err, peer: ce}
}

// peerCloseWait bounds how long a Dial that failed on the server's TLS alert waits for the
// server's CLOSE, which follows the alert at once: long enough for a datagram right behind
// another, short against a handshake timeout, for a CLOSE that was lost.
const peerCloseWait = 100 * time.Millisecond

// awaitPeerClose waits, at most peerCloseWait, for the server's CLOSE after TLS failed on an
// alert from the server (err), so that withPeerReason finds the reason it carries. The alert is
// the last thing the server's TLS writes and leaves at once (mayInlineLocked); the CLOSE, which
// repeats it (session.Conn.appendCloseTail), is queued only when the server's handshake has
// returned, so it usually comes in a datagram of its own, right behind.
func (c *Conn) awaitPeerClose(ctx context.Context, err error) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" { // crypto/tls's error for a received alert
		return
	}
	t := time.NewTimer(peerCloseWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// handshakeError is a failed handshake's TLS error with the server's CLOSE.
type handshakeError struct {
	tls  error
	peer *session.CloseError
}

func (e *handshakeError) Error() string {
	return e.tls.Error() + " (the server said: " + e.peer.Reason + ")"
}

func (e *handshakeError) Unwrap() []error { return []error{e.tls, e.peer} }

// errConnRefused is Dial's error when an ICMP port unreachable answered the first datagrams.
var errConnRefused = fmt.Errorf("tlsgram: nothing listens on the server's port (ICMP port unreachable): %w", syscall.ECONNREFUSED)

// refused ends a handshake to which the server's host answered with ICMP port unreachable before
// any datagram came from the server: nothing listens on that port, and Dial fails at once with
// errConnRefused instead of retransmitting until HandshakeTimeout. Once a datagram from the
// server arrived, such errors are ignored (see endpoint.socketError).
func (c *Conn) refused() {
	c.mu.Lock()
	if !c.handshakeDone && c.core.Err() == nil {
		c.refusedICMP = true
		c.core.Close(time.Now(), session.CodeNoError, "connection refused")
		c.noteTerminatedLocked()
	}
	c.mu.Unlock()
	c.poke()
}

func (c *Conn) wasRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusedICMP
}

// resolve turns address into one IP and port of network's family. It returns the host part for
// the TLS server name.
func resolve(ctx context.Context, network, address string) (string, netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, portStr)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	want := func(a netip.Addr) bool {
		switch network {
		case "udp4":
			return a.Is4() || a.Is4In6()
		case "udp6":
			return a.Is6() && !a.Is4In6()
		}
		return true
	}
	if host == "" {
		// As in package net, an empty host is the local system.
		if network == "udp6" {
			return "localhost", netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)), nil
		}
		return "localhost", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !want(a) {
			return "", netip.AddrPort{}, &net.AddrError{Err: "address family mismatch", Addr: host}
		}
		return host, netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	ipNet := map[string]string{"udp": "ip", "udp4": "ip4", "udp6": "ip6"}[network]
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	for _, a := range addrs {
		if want(a) {
			return host, netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
		}
	}
	return "", netip.AddrPort{}, &net.AddrError{Err: "no suitable address", Addr: host}
}
