package header

import "errors"

// Sentinel errors. Every error returned by Open, ParseFrame, ParseVarint and
// AckFrame.Validate satisfies errors.Is against exactly one of these. They are
// few on purpose: a receiver drops the datagram for any of them and only
// counts (or, for ErrIntegrity, separately counts) what it dropped.
var (
	// ErrIntegrity: the CRC-32C trailer does not match the datagram. Nothing
	// in such a datagram is trusted, not even its connection ID.
	ErrIntegrity = errors.New("header: integrity check failed")
	// ErrTruncated: the input ends before a field (or the data a length
	// field announces) is complete.
	ErrTruncated = errors.New("header: truncated")
	// ErrMalformed: a field is complete but its value is not allowed in
	// wire format v1 (fixed bit clear, reserved bits set, reserved type,
	// impossible ACK ranges, stream offset past 2^62-1, ...).
	ErrMalformed = errors.New("header: malformed")
	// ErrUnknownFrame: the frame type is not defined in wire format v1.
	// Frames carry no length, so nothing after an unknown frame can be
	// parsed either (RFC 9000 §12.4 treats this as a connection error).
	ErrUnknownFrame = errors.New("header: unknown frame type")
	// ErrTooManyAckRanges: an ACK frame announces more than MaxAckRanges
	// ranges in total.
	ErrTooManyAckRanges = errors.New("header: too many ACK ranges")
)

// detailError gives a precise message for logs and tests while unwrapping
// to one of the public sentinels. All values are package-level variables so
// that returning an error never allocates on the receive path.
type detailError struct {
	msg  string
	kind error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }

func detail(kind error, msg string) error { return &detailError{msg: msg, kind: kind} }

var (
	errShortDatagram    = detail(ErrTruncated, "header: datagram shorter than first byte and trailer")
	errFixedBit         = detail(ErrMalformed, "header: fixed bit is 0")
	errReservedBits     = detail(ErrMalformed, "header: reserved bits in first byte are set")
	errReservedType     = detail(ErrMalformed, "header: reserved long header type 3")
	errLongTruncated    = detail(ErrTruncated, "header: long header truncated")
	errShortTruncated   = detail(ErrTruncated, "header: short header truncated")
	errTokenTruncated   = detail(ErrTruncated, "header: token length exceeds datagram")
	errPNTruncated      = detail(ErrTruncated, "header: packet number truncated")
	errEmptyPayload     = detail(ErrMalformed, "header: packet carries no frames")
	errEmptyRetryToken  = detail(ErrMalformed, "header: Retry without token")
	errVNListLen        = detail(ErrMalformed, "header: version list empty or not a multiple of 4 bytes")
	errVarintTruncated  = detail(ErrTruncated, "header: varint truncated")
	errFrameTruncated   = detail(ErrTruncated, "header: frame truncated")
	errNonMinimalType   = detail(ErrMalformed, "header: frame type not minimally encoded")
	errStreamOverflow   = detail(ErrMalformed, "header: stream offset+length exceeds 2^62-1")
	errEmptyNewToken    = detail(ErrMalformed, "header: NEW_TOKEN with empty token")
	errAckFirstRange    = detail(ErrMalformed, "header: ACK first range below packet number 0")
	errAckGap           = detail(ErrMalformed, "header: ACK gap below packet number 0")
	errAckRangeLen      = detail(ErrMalformed, "header: ACK range below packet number 0")
	errAckNoRanges      = detail(ErrMalformed, "header: ACK frame without ranges")
	errAckRangeInverted = detail(ErrMalformed, "header: ACK range with Smallest > Largest")
	errAckRangeOrder    = detail(ErrMalformed, "header: ACK ranges not descending with a gap of at least one packet")
	errAckValueTooLarge = detail(ErrMalformed, "header: ACK value exceeds 2^62-1")
	errAckTooMany       = detail(ErrTooManyAckRanges, "header: ACK frame with more than 64 ranges")
)
