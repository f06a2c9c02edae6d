package session

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"github.com/tlsgram/tlsgram/header"
)

// Unreliable datagrams beside the stream (the idea of RFC 9221). Each travels in one DATAGRAM
// frame (header/README.md §9.13) of one authenticated packet, encrypted with AES-128-GCM under a
// key of its own from the TLS exporter (DatagramKeyLabel), the nonce being the direction and the
// packet's number — unique per key, as for the packet tag. It is never retransmitted: a lost
// datagram is gone. It is congestion-controlled like everything else (its packet counts in
// flight), and both queues, to send and to read, are bounded: what does not fit is dropped and
// counted (Stats.AppDatagramsDropped*), never queued without bound.

// DatagramKeyLabel is the TLS exporter label of the datagram encryption key:
// ExportKeyingMaterial(DatagramKeyLabel, nil, PacketKeyLen).
const DatagramKeyLabel = "EXPORTER-tlsgram-datagram"

// datagramQueueLen bounds each of the two datagram queues.
const datagramQueueLen = 64

// Errors of SendDatagram.
var (
	// ErrDatagramTooLarge: the datagram does not fit one packet on the current path; see
	// MaxDatagramPayload.
	ErrDatagramTooLarge = errors.New("tlsgram: datagram larger than the path carries")
	// ErrDatagramNotReady: datagrams are encrypted with a key from the TLS session, so they
	// can be sent only once the handshake is complete.
	ErrDatagramNotReady = errors.New("tlsgram: datagrams can be sent only after the handshake")
)

// datagramQueue is a bounded FIFO of datagrams in one slab, allocated on first use. lens is
// allocated with it: most connections never send a datagram, and an array here would be half
// a KiB of every idle connection's core (issue 8).
type datagramQueue struct {
	slab []byte
	lens []int // datagramQueueLen once slab is allocated
	head int
	n    int
	slot int
}

func (q *datagramQueue) push(b []byte, slot int) bool {
	if q.n == datagramQueueLen {
		return false
	}
	if q.slab == nil {
		q.slot = slot
		q.slab = make([]byte, datagramQueueLen*slot)
		q.lens = make([]int, datagramQueueLen)
	}
	i := (q.head + q.n) % datagramQueueLen
	q.lens[i] = copy(q.slab[i*q.slot:(i+1)*q.slot], b)
	q.n++
	return true
}

// front is the oldest datagram; valid until pop.
func (q *datagramQueue) front() []byte {
	return q.slab[q.head*q.slot : q.head*q.slot+q.lens[q.head]]
}

func (q *datagramQueue) pop() {
	q.head = (q.head + 1) % datagramQueueLen
	q.n--
}

// datagrams is a connection's datagram state.
type datagrams struct {
	aead  cipher.AEAD // built from key by the first datagram sent or received (cipher)
	key   [PacketKeyLen]byte
	keyed bool // InstallDatagramKey gave key
	nonce [12]byte
	out   datagramQueue // plaintext, to send
	in    datagramQueue // plaintext, received, to read
	open  []byte        // scratch for decryption
	pn    uint64        // the number of the packet whose frames are being handled
	last  bool          // the last packet sent carried a datagram
}

// InstallDatagramKey sets the datagram encryption key, derived by both ends with
// ExportKeyingMaterial(DatagramKeyLabel, nil, PacketKeyLen). Without it, SendDatagram fails and
// DATAGRAM frames are dropped.
//
// The AES-GCM state (768 bytes) is built only when the first datagram is sent or received: most
// connections never carry one, and every idle connection held it (issue 8).
func (c *Conn) InstallDatagramKey(key []byte) error {
	if err := checkKeyLen(key, "datagram"); err != nil {
		return err
	}
	copy(c.dgram.key[:], key)
	c.dgram.keyed = true
	return nil
}

// cipher returns the datagram AEAD, building it on first use; d.keyed must be true.
func (d *datagrams) cipher() cipher.AEAD {
	if d.aead == nil {
		// The key's length was checked, and AES-GCM fails on nothing else.
		d.aead, _ = newGCM(d.key[:], "datagram")
		d.key = [PacketKeyLen]byte{}
	}
	return d.aead
}

// MaxDatagramPayload is the largest datagram SendDatagram takes now: what one authenticated
// packet of the current path MTU holds after its header, the frame, the encryption's tag and the
// packet's tag. It grows as path MTU discovery finds more room and shrinks if the path does.
func (c *Conn) MaxDatagramPayload() int {
	room := c.datagramSize() - (1 + header.ConnIDLen + pnLen) - header.TagLen - c.dgramTagLen()
	return room - header.DatagramOverhead(room)
}

func (c *Conn) dgramTagLen() int { return 16 }

// SendDatagram queues b to be sent once, unreliably, in its own encrypted DATAGRAM frame. It
// copies b. It fails with ErrDatagramNotReady before the handshake, ErrDatagramTooLarge above
// MaxDatagramPayload and the terminal error after the connection closed. When datagramQueueLen
// datagrams wait already (the congestion window is full), b is dropped and counted in
// Stats.AppDatagramsDroppedSend: a datagram late is often worse than none.
func (c *Conn) SendDatagram(b []byte) error {
	switch {
	case c.err != nil:
		return c.err
	case !c.handshakeComplete || !c.dgram.keyed || c.auth == nil:
		return ErrDatagramNotReady
	case len(b) > c.MaxDatagramPayload():
		return fmt.Errorf("%w: %d bytes, at most %d now", ErrDatagramTooLarge, len(b), c.MaxDatagramPayload())
	}
	if !c.dgram.out.push(b, c.conf.MaxDatagramSize) {
		c.stats.AppDatagramsDroppedSend++
	}
	c.noteSendPending()
	return nil
}

// ReceiveDatagram copies the oldest received datagram into p and reports its length; ok is
// false if none is waiting. A datagram longer than p is truncated.
func (c *Conn) ReceiveDatagram(p []byte) (n int, ok bool) {
	q := &c.dgram.in
	if q.n == 0 {
		return 0, false
	}
	n = copy(p, q.front())
	q.pop()
	return n, true
}

// NextDatagramLen is the length of the datagram ReceiveDatagram would return, or -1 if none
// waits: a caller can size its buffer.
func (c *Conn) NextDatagramLen() int {
	if q := &c.dgram.in; q.n > 0 {
		return q.lens[q.head]
	}
	return -1
}

// DatagramsReadable is the number of received datagrams waiting for ReceiveDatagram.
func (c *Conn) DatagramsReadable() int { return c.dgram.in.n }

// datagramDue reports whether a datagram waits to be sent and may be.
func (c *Conn) datagramDue() bool { return c.dgram.out.n > 0 && c.authSending() }

// appendDatagram adds the oldest queued datagram, encrypted, if it fits below limit. A
// datagram queued for a larger path MTU than the path has now is dropped and counted. When
// stream data waits too, at most every other packet leads with a datagram: a flood of
// datagrams gets half the window, not all of it, and the stream keeps moving.
func (c *Conn) appendDatagram(b []byte, limit int, pn uint64, authenticated bool) ([]byte, bool) {
	d := &c.dgram
	if d.last && (c.tx.hasNewData() || !c.tx.retransmit.empty()) {
		d.last = false
		return b, false
	}
	d.last = false
	for d.out.n > 0 && authenticated {
		msg := d.out.front()
		if len(msg) > c.MaxDatagramPayload() {
			d.out.pop()
			c.stats.AppDatagramsDroppedSend++
			continue
		}
		sealed := len(msg) + c.dgramTagLen()
		if len(b)+header.DatagramOverhead(sealed)+sealed > limit {
			return b, false // the next packet
		}
		b = header.AppendVarint(append(b, byte(header.FrameDatagram)), uint64(sealed))
		c.dgramNonce(!c.isClient, pn)
		b = d.cipher().Seal(b, d.nonce[:], msg, nil)
		d.out.pop()
		c.stats.AppDatagramsSent++
		d.last = true
		return b, true
	}
	return b, false
}

func (c *Conn) dgramNonce(fromServer bool, pn uint64) {
	var dir byte
	if fromServer {
		dir = 1
	}
	n := &c.dgram.nonce
	n[0], n[1], n[2], n[3] = 0, 0, 0, dir
	for i := 0; i < 8; i++ {
		n[4+i] = byte(pn >> (56 - 8*i))
	}
}

// handleDatagramFrame decrypts a DATAGRAM frame of packet pn and queues it for
// ReceiveDatagram, or drops and counts it.
func (c *Conn) handleDatagramFrame(f *header.Frame, pn uint64) {
	d := &c.dgram
	if !d.keyed || len(f.Data) < c.dgramTagLen() {
		c.stats.AppDatagramsDroppedReceive++
		return
	}
	if d.open == nil {
		d.open = make([]byte, 0, max(c.conf.MaxDatagramSize, maxInternetDatagram))
	}
	c.dgramNonce(c.isClient, pn)
	plain, err := d.cipher().Open(d.open[:0], d.nonce[:], f.Data, nil)
	if err != nil || !d.in.push(plain, max(c.conf.MaxDatagramSize, maxInternetDatagram)) {
		c.stats.AppDatagramsDroppedReceive++
		return
	}
	c.stats.AppDatagramsReceived++
}
