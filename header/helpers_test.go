package header_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/header"
)

// requireSentinel checks that err matches exactly one public sentinel, so
// callers can always classify a rejection with errors.Is.
func requireSentinel(t testing.TB, err error) {
	t.Helper()
	require.Error(t, err)
	matches := 0
	for _, s := range []error{header.ErrIntegrity, header.ErrTruncated, header.ErrMalformed,
		header.ErrUnknownFrame, header.ErrTooManyAckRanges} {
		if errors.Is(err, s) {
			matches++
		}
	}
	require.Equal(t, 1, matches, "error %q must match exactly one sentinel", err)
}

// comparableFrame is a Frame with its stale parts dropped (Ack.Ranges past
// NumRanges) and nil/empty Data made equal, for require.Equal.
type comparableFrame struct {
	Type      header.FrameType
	Offset    uint64
	Data      string
	Fin       bool
	Limit     uint64
	ErrorCode uint64
	PathData  [8]byte
	Sequence  uint64
	ConnID    uint64
	Ranges    []header.AckRange
	Delay     uint64
}

func norm(f *header.Frame) comparableFrame {
	c := comparableFrame{
		Type: f.Type, Offset: f.Offset, Data: string(f.Data), Fin: f.Fin, Limit: f.Limit,
		ErrorCode: f.ErrorCode, PathData: f.PathData, Delay: f.Ack.Delay, Sequence: f.Sequence, ConnID: f.ConnID,
	}
	if f.Type == header.FrameAck {
		c.Ranges = append([]header.AckRange(nil), f.Ack.Ranges[:f.Ack.NumRanges]...)
	}
	return c
}

// appendFrame re-encodes a parsed frame with the package's encoders. padLen
// is the run length for PADDING, which a Frame does not record (ParseFrame
// returns it as the consumed length).
func appendFrame(t testing.TB, b []byte, f *header.Frame, padLen int) []byte {
	t.Helper()
	switch f.Type {
	case header.FramePadding:
		return header.AppendPadding(b, padLen)
	case header.FramePing:
		return header.AppendPing(b)
	case header.FrameAck:
		return header.AppendAck(b, &f.Ack)
	case header.FrameNewToken:
		return header.AppendNewToken(b, f.Data)
	case header.FrameStream:
		return header.AppendStream(b, f.Offset, f.Data, f.Fin)
	case header.FrameMaxData:
		return header.AppendMaxData(b, f.Limit)
	case header.FrameDataBlocked:
		return header.AppendDataBlocked(b, f.Limit)
	case header.FrameDatagram:
		return header.AppendDatagram(b, f.Data)
	case header.FrameNewConnID:
		return header.AppendNewConnID(b, f.Sequence, f.ConnID)
	case header.FramePathChallenge:
		return header.AppendPathChallenge(b, f.PathData)
	case header.FramePathResponse:
		return header.AppendPathResponse(b, f.PathData)
	case header.FrameResetToken:
		return header.AppendResetToken(b, &f.ResetToken)
	case header.FrameClose:
		return header.AppendClose(b, f.ErrorCode, f.Data)
	case header.FrameHandshakeDone:
		return header.AppendHandshakeDone(b)
	case header.FrameImmediateAck:
		return header.AppendImmediateAck(b)
	}
	t.Fatalf("appendFrame: unexpected type %v", f.Type)
	return nil
}

// ackOf builds an AckFrame from descending ranges.
func ackOf(delay uint64, ranges ...header.AckRange) header.AckFrame {
	var a header.AckFrame
	a.NumRanges = copy(a.Ranges[:], ranges)
	a.Delay = delay
	return a
}

// manyRanges returns n descending single-packet ranges 1000, 998, 996, ...
func manyRanges(n int) header.AckFrame {
	var a header.AckFrame
	for i := range n {
		pn := uint64(1000 - 2*i)
		a.Ranges[i] = header.AckRange{Smallest: pn, Largest: pn}
	}
	a.NumRanges = n
	a.Delay = 1234
	return a
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
