package header

import (
	"encoding/binary"
	"slices"
)

// FrameType is the type of a frame, a varint on the wire. All v1 types fit
// in one byte.
type FrameType uint64

// Frame types of wire format v1 (README.md §9). Values follow the
// corresponding RFC 9000 §19 frames where one exists.
const (
	FramePadding       FrameType = 0x00
	FramePing          FrameType = 0x01
	FrameAck           FrameType = 0x02
	FrameNewToken      FrameType = 0x07
	FrameStream        FrameType = 0x08 // 0x09 on the wire when Fin is set
	FrameMaxData       FrameType = 0x10
	FrameDataBlocked   FrameType = 0x14
	FrameNewConnID     FrameType = 0x18
	FramePathChallenge FrameType = 0x1a
	FramePathResponse  FrameType = 0x1b
	FrameClose         FrameType = 0x1c
	FrameHandshakeDone FrameType = 0x1e
	FrameImmediateAck  FrameType = 0x1f
	FrameResetToken    FrameType = 0x20 // tlsgram's own: RFC 9000 carries the token in NEW_CONNECTION_ID
	FrameDatagram      FrameType = 0x31
)

// streamFinBit is bit 0 of the STREAM frame type.
const streamFinBit = 0x01

func (t FrameType) String() string {
	switch t {
	case FramePadding:
		return "PADDING"
	case FramePing:
		return "PING"
	case FrameAck:
		return "ACK"
	case FrameNewToken:
		return "NEW_TOKEN"
	case FrameStream:
		return "STREAM"
	case FrameMaxData:
		return "MAX_DATA"
	case FrameNewConnID:
		return "NEW_CONNECTION_ID"
	case FrameDataBlocked:
		return "DATA_BLOCKED"
	case FrameResetToken:
		return "RESET_TOKEN"
	case FramePathChallenge:
		return "PATH_CHALLENGE"
	case FramePathResponse:
		return "PATH_RESPONSE"
	case FrameClose:
		return "CLOSE"
	case FrameHandshakeDone:
		return "HANDSHAKE_DONE"
	case FrameImmediateAck:
		return "IMMEDIATE_ACK"
	case FrameDatagram:
		return "DATAGRAM"
	}
	return "FrameType(unknown)"
}

// Frame is one parsed frame. ParseFrame fills the fields that belong to
// Type and resets the others; a Frame is meant to be reused for every frame
// of a datagram, which is why the ACK ranges are an array value and not a
// slice.
type Frame struct {
	Type FrameType
	// Offset is the stream offset of Data (STREAM).
	Offset uint64
	// Data is the STREAM data, the CLOSE reason, the NEW_TOKEN token or the DATAGRAM payload. It
	// aliases the parsed datagram, with its capacity capped at its length.
	Data []byte
	// Fin marks the end of the stream: the final size is Offset+len(Data)
	// (STREAM).
	Fin bool
	// Limit is the absolute stream byte limit (MAX_DATA, DATA_BLOCKED).
	Limit uint64
	// ErrorCode is the CLOSE error code.
	ErrorCode uint64
	// PathData is the PATH_CHALLENGE / PATH_RESPONSE payload.
	PathData [8]byte
	// ResetToken is the RESET_TOKEN frame's stateless reset token.
	ResetToken [StatelessResetTokenLen]byte
	// Sequence and ConnID are the NEW_CONNECTION_ID frame's sequence number and connection ID.
	Sequence uint64
	ConnID   uint64
	// Ack is the ACK frame. Only Ack.Ranges[:Ack.NumRanges] are meaningful.
	Ack AckFrame
}

// reset clears what ParseFrame may set. It leaves Ack.Ranges alone, since
// clearing 1 KiB per frame would cost more than the rest of the parse;
// NumRanges says how many are valid.
func (f *Frame) reset() {
	f.Type = 0
	f.Offset = 0
	f.Data = nil
	f.Fin = false
	f.Limit = 0
	f.ErrorCode = 0
	f.PathData = [8]byte{}
	f.ResetToken = [StatelessResetTokenLen]byte{}
	f.Sequence = 0
	f.ConnID = 0
	f.Ack.NumRanges = 0
	f.Ack.Delay = 0
}

// ParseFrame parses the frame at the start of b into *f, reusing it, and
// returns the number of bytes consumed. A run of PADDING bytes is consumed
// as one frame. It never allocates and never panics. Errors: ErrTruncated
// when b ends inside the frame; ErrUnknownFrame for a type not in v1;
// ErrMalformed for a type not minimally encoded (RFC 9000 §12.4), STREAM
// data ending past 2^62-1, an empty NEW_TOKEN, or ACK ranges below packet
// number 0; ErrTooManyAckRanges for more than MaxAckRanges ranges. After an
// error *f is unspecified and nothing after it in b can be parsed: frames
// carry no length, so the caller drops the whole datagram.
func ParseFrame(b []byte, f *Frame) (int, error) {
	f.reset()
	if len(b) == 0 {
		return 0, errFrameTruncated
	}
	t, n := uint64(b[0]), 1
	if b[0] >= 0x40 {
		// Every v1 type fits in one byte; a longer type is either a
		// non-minimal encoding or a type we do not know.
		v, m, err := ParseVarint(b)
		if err != nil {
			return 0, errFrameTruncated
		}
		if m != VarintLen(v) {
			return 0, errNonMinimalType
		}
		f.Type = FrameType(v)
		return 0, ErrUnknownFrame
	}
	f.Type = FrameType(t)
	var err error
	switch FrameType(t) {
	case FramePadding:
		// Initial datagrams carry up to ~1 KB of padding: skip it a
		// word at a time.
		for len(b)-n >= 8 && binary.LittleEndian.Uint64(b[n:]) == 0 {
			n += 8
		}
		for n < len(b) && b[n] == 0 {
			n++
		}
		return n, nil
	case FramePing, FrameHandshakeDone, FrameImmediateAck:
		return n, nil
	case FrameAck:
		var m int
		m, err = parseAck(b[n:], &f.Ack)
		n += m
	case FrameStream, FrameStream | streamFinBit:
		f.Type = FrameStream
		f.Fin = t&streamFinBit != 0
		n, err = parseStream(b, n, f)
	case FrameNewToken:
		f.Data, n, err = parseLengthPrefixed(b, n)
		if err == nil && len(f.Data) == 0 {
			// RFC 9000 §19.7: an empty token is a FRAME_ENCODING_ERROR.
			err = errEmptyNewToken
		}
	case FrameMaxData, FrameDataBlocked:
		f.Limit, n, err = parseVarintAt(b, n)
	case FrameDatagram:
		f.Data, n, err = parseLengthPrefixed(b, n)
	case FrameNewConnID:
		f.Sequence, n, err = parseVarintAt(b, n)
		if err == nil {
			if len(b)-n < 8 {
				return 0, errFrameTruncated
			}
			f.ConnID = binary.BigEndian.Uint64(b[n:])
			n += 8
		}
	case FramePathChallenge, FramePathResponse:
		if len(b)-n < len(f.PathData) {
			return 0, errFrameTruncated
		}
		n += copy(f.PathData[:], b[n:])
	case FrameResetToken:
		if len(b)-n < len(f.ResetToken) {
			return 0, errFrameTruncated
		}
		n += copy(f.ResetToken[:], b[n:])
	case FrameClose:
		f.ErrorCode, n, err = parseVarintAt(b, n)
		if err == nil {
			f.Data, n, err = parseLengthPrefixed(b, n)
		}
	default:
		return 0, ErrUnknownFrame
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// parseVarintAt reads a varint at b[pos:] and returns it with the new position.
func parseVarintAt(b []byte, pos int) (uint64, int, error) {
	v, m, err := ParseVarint(b[pos:])
	if err != nil {
		return 0, 0, errFrameTruncated
	}
	return v, pos + m, nil
}

// parseLengthPrefixed reads a varint length and that many bytes at b[pos:].
func parseLengthPrefixed(b []byte, pos int) ([]byte, int, error) {
	l, pos, err := parseVarintAt(b, pos)
	if err != nil {
		return nil, 0, err
	}
	// Compare as uint64 so that a 62-bit length cannot wrap an int.
	if l > uint64(len(b)-pos) {
		return nil, 0, errFrameTruncated
	}
	end := pos + int(l)
	return b[pos:end:end], end, nil
}

func parseStream(b []byte, pos int, f *Frame) (int, error) {
	off, pos, err := parseVarintAt(b, pos)
	if err != nil {
		return 0, err
	}
	data, pos, err := parseLengthPrefixed(b, pos)
	if err != nil {
		return 0, err
	}
	// RFC 9000 §19.8: the largest offset delivered must stay below 2^62.
	if uint64(len(data)) > MaxVarint-off {
		return 0, errStreamOverflow
	}
	f.Offset = off
	f.Data = data
	return pos, nil
}

// AppendPadding appends n PADDING bytes (n <= 0 appends nothing). Receivers
// read a run of them as one frame, so padding goes last in a datagram or
// before a frame whose type is not 0.
func AppendPadding(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	b = slices.Grow(b, n)
	l := len(b)
	b = b[:l+n]
	clear(b[l:])
	return b
}

// AppendPing appends a PING frame: it only elicits an acknowledgement
// (keep-alive, PTO probes).
func AppendPing(b []byte) []byte { return append(b, byte(FramePing)) }

// AppendHandshakeDone appends a HANDSHAKE_DONE frame (server to client: the
// server has completed the TLS handshake; RFC 9000 §19.20).
func AppendHandshakeDone(b []byte) []byte { return append(b, byte(FrameHandshakeDone)) }

// AppendImmediateAck appends an IMMEDIATE_ACK frame: the sender asks for an ACK without the
// usual delay (the role of IMMEDIATE_ACK in the QUIC ACK frequency extension).
func AppendImmediateAck(b []byte) []byte { return append(b, byte(FrameImmediateAck)) }

// StreamOverhead returns the size of a STREAM frame's type, offset and length
// fields for those values, so a sender can size data to fill a datagram.
func StreamOverhead(offset uint64, length int) int {
	return 1 + VarintLen(offset) + VarintLen(uint64(length))
}

// AppendStream appends a STREAM frame carrying data at offset, with FIN set
// if fin. It panics if offset+len(data) exceeds MaxVarint.
func AppendStream(b []byte, offset uint64, data []byte, fin bool) []byte {
	if offset > MaxVarint || uint64(len(data)) > MaxVarint-offset {
		panic("header: AppendStream: offset+length exceeds 2^62-1")
	}
	t := byte(FrameStream)
	if fin {
		t |= streamFinBit
	}
	b = append(b, t)
	b = AppendVarint(b, offset)
	b = AppendVarint(b, uint64(len(data)))
	return append(b, data...)
}

// AppendMaxData appends a MAX_DATA frame: the receiver allows stream data up
// to absolute offset limit (flow control credit, RFC 9000 §19.9).
func AppendMaxData(b []byte, limit uint64) []byte {
	return AppendVarint(append(b, byte(FrameMaxData)), limit)
}

// AppendDataBlocked appends a DATA_BLOCKED frame: the sender has data to send
// but is blocked at limit (RFC 9000 §19.12).
func AppendDataBlocked(b []byte, limit uint64) []byte {
	return AppendVarint(append(b, byte(FrameDataBlocked)), limit)
}

// AppendNewToken appends a NEW_TOKEN frame. token must not be empty;
// receivers reject an empty one (RFC 9000 §19.7).
func AppendNewToken(b []byte, token []byte) []byte {
	b = append(b, byte(FrameNewToken))
	b = AppendVarint(b, uint64(len(token)))
	return append(b, token...)
}

// AppendResetToken appends a RESET_TOKEN frame: the token a stateless reset from the server
// for this connection ends with (§9.14).
func AppendResetToken(b []byte, token *[StatelessResetTokenLen]byte) []byte {
	return append(append(b, byte(FrameResetToken)), token[:]...)
}

// AppendPathChallenge appends a PATH_CHALLENGE frame with 8 unpredictable
// bytes (RFC 9000 §8.2).
func AppendPathChallenge(b []byte, data [8]byte) []byte {
	return append(append(b, byte(FramePathChallenge)), data[:]...)
}

// AppendPathResponse appends a PATH_RESPONSE frame echoing a challenge's data.
func AppendPathResponse(b []byte, data [8]byte) []byte {
	return append(append(b, byte(FramePathResponse)), data[:]...)
}

// AppendClose appends a CLOSE frame: the sender closes the connection with
// an error code (0 = no error) and a human-readable reason, possibly empty.
func AppendClose(b []byte, code uint64, reason []byte) []byte {
	b = append(b, byte(FrameClose))
	b = AppendVarint(b, code)
	b = AppendVarint(b, uint64(len(reason)))
	return append(b, reason...)
}

// AppendNewConnID appends a NEW_CONNECTION_ID frame: a spare connection ID the sender will also
// accept, numbered seq, for the peer to move to on a new path (README.md §9.12).
func AppendNewConnID(b []byte, seq, id uint64) []byte {
	b = AppendVarint(append(b, byte(FrameNewConnID)), seq)
	return binary.BigEndian.AppendUint64(b, id)
}

// AppendDatagram appends a DATAGRAM frame carrying data, with its length (README.md §9.13).
func AppendDatagram(b []byte, data []byte) []byte {
	b = AppendVarint(append(b, byte(FrameDatagram)), uint64(len(data)))
	return append(b, data...)
}

// DatagramOverhead is the size of a DATAGRAM frame around n bytes of data.
func DatagramOverhead(n int) int { return 1 + VarintLen(uint64(n)) }
