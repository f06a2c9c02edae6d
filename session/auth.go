package session

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/tlsgram/tlsgram/header"
)

// PacketKeyLabel is the TLS exporter label both ends use to derive the packet authentication key
// (header/README.md §11): ExportKeyingMaterial(PacketKeyLabel, nil, PacketKeyLen).
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
// session with ExportKeyingMaterial(PacketKeyLabel, nil, PacketKeyLen). Call it before
// SetHandshakeComplete. From then on the core sends authenticated datagrams as soon as the peer
// can verify them, and once the peer's first authenticated datagram has arrived it drops every
// datagram that is not authenticated.
func (c *Conn) InstallPacketKey(key []byte) error {
	if len(key) != PacketKeyLen {
		return fmt.Errorf("tlsgram: packet key is %d bytes, want %d", len(key), PacketKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	c.auth = &packetAuth{aead: aead}
	return nil
}

// authSending reports whether the next short header datagram carries a tag: we have the key and
// the peer has it too. The server's handshake completes only after the client's, so the server may
// start at once; the client waits for HANDSHAKE_DONE or an authenticated datagram.
func (c *Conn) authSending() bool {
	if c.auth == nil || !c.handshakeComplete {
		return false
	}
	return !c.isClient || c.handshakeConfirmed || c.authRecv
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
