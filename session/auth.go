package session

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tlsgram/tlsgram/header"
)

// PacketKeyLabel is the TLS exporter label both ends use to derive the packet authentication key
// (header/README.md §11): ExportKeyingMaterial(PacketKeyLabel, PacketKeyContext(), PacketKeyLen).
const (
	PacketKeyLabel = "EXPORTER-tlsgram-packet-auth"
	PacketKeyLen   = 16
)

// packetAuth authenticates short header datagrams after the handshake. TLS protects the stream
// bytes, not our header or frames: without a tag, one forged STREAM frame with a valid CRC would
// reach TLS and kill the session, and a forged ACK could make us drop data. The tag is AES-GMAC
// (AES-128-GCM over the datagram as additional data, empty plaintext), which runs at several GB/s
// with AES-NI and carry-less multiply, and the nonce is the sender's direction and the full packet
// number, never reused under one key.
type packetAuth struct {
	aead  cipher.AEAD
	nonce [12]byte
}

// InstallPacketKey sets the packet authentication key, derived by both ends from the completed TLS
// session with ExportKeyingMaterial(PacketKeyLabel, c.PacketKeyContext(), PacketKeyLen). Call it before
// SetHandshakeComplete. From then on the core sends authenticated datagrams as soon as the peer
// can verify them, and once the peer's first authenticated datagram has arrived it drops every
// datagram that is not authenticated.
func (c *Conn) InstallPacketKey(key []byte) error {
	aead, err := newGCM(key, "packet")
	if err != nil {
		return err
	}
	c.auth = &packetAuth{aead: aead}
	return nil
}

// newGCM is AES-128-GCM under a PacketKeyLen-byte key from the TLS exporter; what names the key
// in the error (packet, datagram).
func newGCM(key []byte, what string) (cipher.AEAD, error) {
	if err := checkKeyLen(key, what); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func checkKeyLen(key []byte, what string) error {
	if len(key) != PacketKeyLen {
		return fmt.Errorf("tlsgram: %s key is %d bytes, want %d", what, len(key), PacketKeyLen)
	}
	return nil
}

// authSending reports whether the next short header datagram carries a tag: from the moment we
// have the key. The server's handshake completes after the client's, so a server can always be
// sure the client verifies its tags. A client's tags reach a server that may not have completed
// yet: the server holds them back until it has the key (see deferredDatagrams). What the server
// needs to complete — the client's handshake bytes, below hsEnd — always goes untagged
// (handshakePacket), or the two would wait for each other.
func (c *Conn) authSending() bool {
	return c.auth != nil && c.handshakeComplete
}

// handshakePacket reports whether the next packet must go untagged because it carries the
// client's handshake bytes (a retransmission of its Finished, typically) after the client has
// completed. Such a packet carries nothing else that the server could not do without: stream
// bytes below hsEnd, ACK, PING and PADDING.
func (c *Conn) handshakePacket() bool {
	if !c.handshakePending() {
		return false
	}
	c.tx.retransmit.removeBelow(c.tx.buf.base) // acknowledged meanwhile
	if r, ok := c.tx.retransmit.first(); ok && r.start < c.tx.hsEnd {
		return true
	}
	return c.tx.next < c.tx.hsEnd
}

// handshakePending reports whether a client has completed but the server has not acknowledged all
// its handshake bytes yet.
func (c *Conn) handshakePending() bool {
	return c.isClient && c.authSending() && c.tx.buf.base < c.tx.hsEnd
}

// acceptUnauthenticated decides about a datagram without a tag. Before the handshake completes
// (or without a key: CRC-only mode) there is nothing else. After it:
//   - a server drops every one: the client tags everything but its handshake bytes, which the
//     server has all by the time its own handshake completes (TLS 1.3 has the client's Finished
//     last);
//   - a client drops them once the server has shown it tags (authRecv). Until then an untagged
//     datagram may still be the tail of the server's first flight (its session tickets), sent
//     before the server completed and overtaken by our completion; its stream bytes are taken,
//     but frames that could hurt if forged are not (trustedOnly).
func (c *Conn) acceptUnauthenticated() (ok, trustedOnly bool) {
	switch {
	case c.auth == nil || !c.handshakeComplete:
		return true, false
	case !c.isClient || c.authRecv:
		return false, false
	default:
		return true, true
	}
}

// maxDeferred bounds the authenticated datagrams held back until the key is installed: the
// client's first application data usually arrives in the same burst as its Finished, before the
// server's TLS has processed that.
const maxDeferred = 8

// deferredDatagrams holds authenticated datagrams that arrived before we had the key, to verify
// once we have it. The storage exists only while something is held: a connection pays for it
// during its handshake at most, and only as much as it holds. (It used to take room for
// maxDeferred datagrams of the largest size at once, 11.6 KiB, for what is usually one small
// datagram: the client's first message. That was 4% of what a handshake allocated.)
type deferredDatagrams struct {
	buf  []byte // the datagrams, one after another
	lens [maxDeferred]int
	n    int
}

// deferDatagram keeps dg for handleDeferred, or drops it (counted) if the room is taken: it is
// retransmitted then, as if lost.
func (c *Conn) deferDatagram(dg []byte) {
	d := &c.deferred
	slot := c.deferSlot()
	if d.n == maxDeferred || len(dg) > slot || c.handshakeComplete {
		c.stats.Drops.Unauthenticated++
		return
	}
	d.buf = append(d.buf, dg...)
	d.lens[d.n] = len(dg)
	d.n++
}

// deferSlot is the room for one held datagram: our own datagram size, or the largest an Internet
// path carries if that is more, since the peer's size may differ from ours.
func (c *Conn) deferSlot() int { return max(c.conf.MaxDatagramSize, maxInternetDatagram) }

// maxInternetDatagram is the largest UDP payload of a 1500-byte IPv6 packet.
const maxInternetDatagram = 1452

// handleDeferred processes the datagrams deferDatagram kept, now that the handshake is complete,
// and releases their storage.
func (c *Conn) handleDeferred(now time.Time) {
	d := &c.deferred
	buf, lens, n := d.buf, d.lens, d.n
	*d = deferredDatagrams{}
	off := 0
	for _, l := range lens[:n] {
		c.handleDatagram(now, buf[off:off+l])
		off += l
	}
}

func (a *packetAuth) setNonce(fromServer bool, pn uint64) {
	var dir uint32
	if fromServer {
		dir = 1
	}
	binary.BigEndian.PutUint32(a.nonce[:4], dir)
	binary.BigEndian.PutUint64(a.nonce[4:], pn)
}

// seal appends the tag over b[start:].
func (a *packetAuth) seal(b []byte, start int, fromServer bool, pn uint64) []byte {
	a.setNonce(fromServer, pn)
	return a.aead.Seal(b, a.nonce[:], nil, b[start:])
}

// verify checks the tag at the end of dg.
func (a *packetAuth) verify(dg []byte, fromServer bool, pn uint64) bool {
	if len(dg) < header.TagLen {
		return false
	}
	a.setNonce(fromServer, pn)
	body := dg[:len(dg)-header.TagLen]
	_, err := a.aead.Open(nil, a.nonce[:], dg[len(body):], body)
	return err == nil
}
