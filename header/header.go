// Package header is tlsgram's wire format, version 1: it appends and parses
// one datagram's header, its frames and its CRC-32C trailer. README.md in this
// directory is the normative specification, with byte diagrams; this package
// is its reference implementation.
//
// Place in the layering: header is the leaf of the tree and imports only the
// standard library. reassembly, session and transport build on it:
//
//	header (wire format, no state) <- reassembly <- session (sans-IO core) <- transport
//
// The package holds no state and does no I/O. Encoders append to the caller's
// buffer (Append*, Seal), so a datagram is built in place in a pooled buffer.
// Parsers (Open, ParseFrame, ParseVarint) never allocate, never panic on any
// input, and return slices that alias the datagram, so the caller must not
// reuse the datagram buffer while it still uses a parsed Header or Frame.
// Every rejection is an error that matches one of a few sentinels with
// errors.Is (ErrIntegrity, ErrTruncated, ErrMalformed, ErrUnknownFrame,
// ErrTooManyAckRanges); the receiver drops the datagram and counts it.
//
// Encoders panic only on arguments that cannot come from the network (a
// value above MaxVarint, a packet number length outside 1..4, an invalid
// AckFrame): such a call is a bug in the caller.
//
// The design follows QUIC (RFC 9000) where that fits a single TLS byte stream
// over UDP: QUIC variable-length integers (§16), packet number truncation
// (§17.1, Appendix A), ACK ranges (§19.3), and frame shapes from §19. The
// CRC-32C trailer is not authentication; it keeps corrupted datagrams away
// from reassembly and the TLS record layer above it (one corrupted chunk fed
// to TLS ends the session). Authentication is the authentication flag (A) of
// short headers: after the handshake, such datagrams end in a TagLen-byte
// AES-GMAC tag keyed from the TLS exporter instead of the CRC (README.md §11).
// This package parses the flag and leaves the tag to the session package,
// which computes and checks it (session/auth.go).
package header

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	// Version1 is this wire format: "TG" followed by 0x0001.
	Version1 uint32 = 0x54470001
	// ConnIDLen is the length of a connection ID: 64 random bits, chosen by
	// each endpoint for the datagrams it receives.
	ConnIDLen = 8
	// TrailerLen is the length of the CRC-32C trailer that ends every datagram without the
	// authentication flag.
	TrailerLen = 4
	// TagLen is the length of the authentication tag that ends a short header datagram with the
	// authentication flag (bit 2) set, in place of the CRC (README.md §11).
	TagLen = 16
	// MinInitialDatagramSize is the size to which a client pads datagrams
	// carrying Initial packets, so that a server's 3× anti-amplification
	// allowance covers its first flight (RFC 9000 §8.1, §14.1). Open does not
	// enforce it: whether a short Initial is dropped depends on the role.
	MinInitialDatagramSize = 1200
	// MaxAckRanges bounds the ranges of one ACK frame, so an AckFrame is a
	// fixed-size value and a peer cannot make us loop over millions of ranges.
	MaxAckRanges = 64
	// NoPacket stands for "no packet number": nothing received yet (for
	// DecodePacketNumber) or nothing acknowledged yet (for PacketNumberLen).
	NoPacket uint64 = 1<<64 - 1
)

// First byte bits (README.md §3).
const (
	formBit          = 0x80 // 1 = long header
	fixedBit         = 0x40 // always 1; 0 = not a tlsgram datagram
	longTypeMask     = 0x30
	longTypeShift    = 4
	longReservedMask = 0x0c
	shortReserved    = 0x38
	shortAuthBit     = 0x04 // the datagram ends in an authentication tag instead of the CRC
	pnLenMask        = 0x03
)

// Fixed part of a long header: first byte, version, DCID, SCID.
const longFixedLen = 1 + 4 + ConnIDLen + ConnIDLen

// PacketType identifies the header form of a datagram.
type PacketType uint8

// Packet types. The first three values equal the two type bits of the long
// header's first byte; TypeShort and TypeVersionNegotiation have no type
// bits of their own.
const (
	TypeInitial PacketType = iota
	TypeHandshake
	TypeRetry
	TypeShort
	TypeVersionNegotiation
)

func (t PacketType) String() string {
	switch t {
	case TypeInitial:
		return "Initial"
	case TypeHandshake:
		return "Handshake"
	case TypeRetry:
		return "Retry"
	case TypeShort:
		return "Short"
	case TypeVersionNegotiation:
		return "VersionNegotiation"
	}
	return "PacketType(invalid)"
}

// hasPacketNumber reports whether packets of this type carry a packet number
// and frames (Retry and Version Negotiation carry neither).
func (t PacketType) hasPacketNumber() bool {
	return t == TypeInitial || t == TypeHandshake || t == TypeShort
}

// Header is one datagram's header. Which fields are meaningful depends on
// Type; the others are zero after Open and ignored by AppendHeader.
type Header struct {
	Type      PacketType
	Version   uint32 // long header only; 0 for Version Negotiation
	DstConnID uint64
	SrcConnID uint64 // long header only
	// Token is the address-validation token of an Initial (may be empty) or
	// a Retry (never empty). After Open it aliases the datagram.
	Token []byte
	// PacketNumber is the truncated value as on the wire after Open (expand
	// it with DecodePacketNumber); the full value when appending, of which
	// AppendHeader writes the low PNLen bytes.
	PacketNumber uint64
	// PNLen is the number of packet number bytes on the wire, 1..4, for
	// Initial, Handshake and Short; 0 for Retry and Version Negotiation.
	PNLen int
	// Authenticated (short header only) sets the authentication flag: the datagram ends in a
	// TagLen-byte tag computed by the session instead of the CRC trailer. Open does not verify
	// the tag; the caller must before trusting anything in the datagram.
	Authenticated bool
}

// HeaderLen returns the number of bytes AppendHeader writes for h.
func HeaderLen(h *Header) int {
	switch h.Type {
	case TypeInitial:
		return longFixedLen + VarintLen(uint64(len(h.Token))) + len(h.Token) + h.PNLen
	case TypeHandshake:
		return longFixedLen + h.PNLen
	case TypeRetry:
		return longFixedLen + len(h.Token)
	case TypeVersionNegotiation:
		return longFixedLen
	case TypeShort:
		return 1 + ConnIDLen + h.PNLen
	}
	return 0
}

// AppendHeader appends h to b; it does not append the trailer (see Seal).
// For TypeRetry it writes the token, which is the whole Retry body. For
// TypeVersionNegotiation it writes the version-0 header only: append the
// version list and Seal, or use AppendVersionNegotiation.
//
// AppendHeader panics if h.Type is not a PacketType constant or if h.PNLen
// is outside 1..4 for a type that carries a packet number.
func AppendHeader(b []byte, h *Header) []byte {
	if h.Type.hasPacketNumber() && (h.PNLen < 1 || h.PNLen > 4) {
		panic("header: AppendHeader: PNLen must be 1..4")
	}
	switch h.Type {
	case TypeShort:
		first := fixedBit | byte(h.PNLen-1)
		if h.Authenticated {
			first |= shortAuthBit
		}
		b = append(b, first)
		b = binary.BigEndian.AppendUint64(b, h.DstConnID)
		return appendPacketNumber(b, h.PacketNumber, h.PNLen)
	case TypeInitial, TypeHandshake:
		b = append(b, formBit|fixedBit|byte(h.Type)<<longTypeShift|byte(h.PNLen-1))
		b = appendLongFixed(b, h.Version, h.DstConnID, h.SrcConnID)
		if h.Type == TypeInitial {
			b = AppendVarint(b, uint64(len(h.Token)))
			b = append(b, h.Token...)
		}
		return appendPacketNumber(b, h.PacketNumber, h.PNLen)
	case TypeRetry:
		b = append(b, formBit|fixedBit|byte(TypeRetry)<<longTypeShift)
		b = appendLongFixed(b, h.Version, h.DstConnID, h.SrcConnID)
		return append(b, h.Token...)
	case TypeVersionNegotiation:
		b = append(b, formBit|fixedBit)
		return appendLongFixed(b, 0, h.DstConnID, h.SrcConnID)
	}
	panic("header: AppendHeader: invalid packet type")
}

func appendLongFixed(b []byte, version uint32, dst, src uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint64(b, dst)
	return binary.BigEndian.AppendUint64(b, src)
}

// appendPacketNumber writes the low n bytes of pn, big-endian (RFC 9000 §17.1).
func appendPacketNumber(b []byte, pn uint64, n int) []byte {
	switch n {
	case 1:
		return append(b, byte(pn))
	case 2:
		return append(b, byte(pn>>8), byte(pn))
	case 3:
		return append(b, byte(pn>>16), byte(pn>>8), byte(pn))
	default:
		return binary.BigEndian.AppendUint32(b, uint32(pn))
	}
}

// castagnoli is the CRC-32C table. MakeTable returns the package's shared
// table for this polynomial, which Update recognises and computes with the
// CPU's CRC32 instruction (SSE 4.2 on amd64, the CRC extension on arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Seal appends the CRC-32C trailer over b[start:]; start is the offset in b
// where this datagram begins, so several datagrams can be built back to back
// in one batch buffer.
func Seal(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Update(0, castagnoli, b[start:]))
}

// Open verifies the trailer of one datagram and parses its header. payload
// is what follows the header up to the trailer, aliasing dg: the frames for
// Initial, Handshake and Short, the version list (a multiple of 4 bytes) for
// Version Negotiation, empty for Retry.
//
// The CRC is checked first, over the whole datagram, so no field of a
// corrupted datagram is ever interpreted (ErrIntegrity). Then Open rejects a
// clear fixed bit, reserved bits that are set, the reserved long header type,
// fields cut short by the end of the datagram (including a token length
// larger than what remains), a Retry without token, a Version Negotiation
// without versions, and a packet without frames. Version is returned as read:
// the caller decides what to do with a version it does not speak (see
// PeekLongHeader). Open never allocates.
//
// A short header datagram with the authentication flag ends in a TagLen-byte tag instead: Open
// skips the CRC, parses the header with the tag removed and sets h.Authenticated. The tag is keyed
// by the session, so the caller MUST verify it (over dg[:len(dg)-TagLen]) before acting on
// anything but the connection ID and packet number.
func Open(dg []byte) (h Header, payload []byte, err error) {
	if len(dg) < 1+TrailerLen {
		return h, nil, errShortDatagram
	}
	if dg[0]&(formBit|fixedBit|shortAuthBit) == fixedBit|shortAuthBit {
		if len(dg) < 1+TagLen {
			return h, nil, errShortDatagram
		}
		h, payload, err = parseHeader(dg[:len(dg)-TagLen])
		h.Authenticated = err == nil
		return h, payload, err
	}
	body := dg[:len(dg)-TrailerLen]
	if crc32.Update(0, castagnoli, body) != binary.BigEndian.Uint32(dg[len(body):]) {
		return h, nil, ErrIntegrity
	}
	return parseHeader(body)
}

// parseHeader parses a datagram whose trailer was already removed and checked.
func parseHeader(b []byte) (h Header, payload []byte, err error) {
	first := b[0]
	if first&fixedBit == 0 {
		return h, nil, errFixedBit
	}
	var pos int
	if first&formBit == 0 {
		if len(b) < 1+ConnIDLen {
			return h, nil, errShortTruncated
		}
		if first&shortReserved != 0 {
			return h, nil, errReservedBits
		}
		h.Type = TypeShort
		h.DstConnID = binary.BigEndian.Uint64(b[1:])
		pos = 1 + ConnIDLen
	} else {
		if len(b) < longFixedLen {
			return h, nil, errLongTruncated
		}
		h.Version = binary.BigEndian.Uint32(b[1:])
		h.DstConnID = binary.BigEndian.Uint64(b[5:])
		h.SrcConnID = binary.BigEndian.Uint64(b[13:])
		pos = longFixedLen
		if h.Version == 0 {
			// Version Negotiation must stay recognisable whatever a future
			// version does with the first byte, so its low six bits are
			// ignored (as in RFC 9000 §17.2.1).
			h.Type = TypeVersionNegotiation
			list := b[pos:len(b):len(b)]
			if len(list) == 0 || len(list)%4 != 0 {
				return Header{}, nil, errVNListLen
			}
			return h, list, nil
		}
		if first&longReservedMask != 0 {
			return Header{}, nil, errReservedBits
		}
		h.Type = PacketType((first & longTypeMask) >> longTypeShift)
		switch h.Type {
		case TypeRetry:
			// A Retry has no packet number, so its low bits are reserved too.
			if first&pnLenMask != 0 {
				return Header{}, nil, errReservedBits
			}
			if len(b) == pos {
				return Header{}, nil, errEmptyRetryToken
			}
			h.Token = b[pos:len(b):len(b)]
			return h, nil, nil
		case TypeInitial:
			tl, n, err := ParseVarint(b[pos:])
			if err != nil {
				return Header{}, nil, errTokenTruncated
			}
			pos += n
			// Compare as uint64: a 62-bit length must not wrap an int.
			if tl > uint64(len(b)-pos) {
				return Header{}, nil, errTokenTruncated
			}
			if tl > 0 {
				end := pos + int(tl)
				h.Token = b[pos:end:end]
				pos = end
			}
		case TypeHandshake:
			// No token: the packet number follows the SCID.
		default:
			return Header{}, nil, errReservedType
		}
	}
	h.PNLen = int(first&pnLenMask) + 1
	if len(b)-pos < h.PNLen {
		return Header{}, nil, errPNTruncated
	}
	for _, c := range b[pos : pos+h.PNLen] {
		h.PacketNumber = h.PacketNumber<<8 | uint64(c)
	}
	pos += h.PNLen
	if pos == len(b) {
		// RFC 9000 §12.4: a packet without frames is a protocol violation.
		return Header{}, nil, errEmptyPayload
	}
	return h, b[pos:len(b):len(b)], nil
}

// PeekDstConnID returns the destination connection ID of a datagram without
// checking its trailer, for demultiplexing before the full Open. long reports
// the header form. ok is false if the fixed bit is clear or the datagram is
// too short to hold the connection ID and a trailer. The result is not
// trusted until Open succeeds.
func PeekDstConnID(dg []byte) (cid uint64, long bool, ok bool) {
	if len(dg) == 0 || dg[0]&fixedBit == 0 {
		return 0, false, false
	}
	if dg[0]&formBit != 0 {
		if len(dg) < 5+ConnIDLen+TrailerLen {
			return 0, false, false
		}
		return binary.BigEndian.Uint64(dg[5:]), true, true
	}
	if len(dg) < 1+ConnIDLen+TrailerLen {
		return 0, false, false
	}
	return binary.BigEndian.Uint64(dg[1:]), false, true
}

// PeekLongHeader returns the version-independent fields of a long header:
// the form and fixed bits, the version and both connection IDs at fixed
// offsets (README.md §11). It checks nothing else, not even the
// trailer, because a future version may define the rest differently. A
// server uses it to answer a long header with an unknown version by a
// Version Negotiation datagram (AppendVersionNegotiation(b, src, dst, ...)).
func PeekLongHeader(dg []byte) (version uint32, dst, src uint64, ok bool) {
	if len(dg) < longFixedLen || dg[0]&(formBit|fixedBit) != formBit|fixedBit {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(dg[1:]), binary.BigEndian.Uint64(dg[5:]),
		binary.BigEndian.Uint64(dg[13:]), true
}

// AppendVersionNegotiation appends a complete Version Negotiation datagram,
// trailer included. As in RFC 9000 §17.2.1, dst echoes the source connection
// ID of the datagram that triggered it and src echoes its destination
// connection ID, so the client can match the answer to its attempt.
// versions should not be empty: receivers reject an empty list.
func AppendVersionNegotiation(b []byte, dst, src uint64, versions []uint32) []byte {
	start := len(b)
	b = append(b, formBit|fixedBit)
	b = appendLongFixed(b, 0, dst, src)
	for _, v := range versions {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return Seal(b, start)
}
