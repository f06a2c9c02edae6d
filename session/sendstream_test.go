package session

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tlsgram/tlsgram/header"
)

// streamFrames parses the STREAM frames in b as (offset, data, fin).
func streamFrames(t *testing.T, b []byte) []header.Frame {
	t.Helper()
	var out []header.Frame
	for len(b) > 0 {
		var f header.Frame
		n, err := header.ParseFrame(b, &f)
		require.NoError(t, err)
		require.Equal(t, header.FrameStream, f.Type)
		f.Data = bytes.Clone(f.Data)
		out = append(out, f)
		b = b[n:]
	}
	return out
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

func TestSendStreamAckFreesBelowLowestHole(t *testing.T) {
	s := sendStream{peerMaxData: 1 << 20}
	s.write(pattern(300))
	s.next = 300
	s.ack(100, 200)
	require.Equal(t, uint64(0), s.buf.base, "a hole below keeps everything")
	require.Equal(t, 300, s.buffered())
	s.ack(0, 100)
	require.Equal(t, uint64(200), s.buf.base, "the out-of-order range joins once the hole closes")
	require.True(t, s.acked.empty())
	require.False(t, s.allAcked())
	s.ack(200, 300)
	require.True(t, s.allAcked())
	s.finWanted = true
	require.False(t, s.allAcked(), "a wanted FIN must be acknowledged too")
	s.ackChunks([]streamChunk{{off: 300, n: 0, fin: true}})
	require.True(t, s.allAcked())
}

func TestSendStreamRequeueLeavesOutAcknowledgedBytes(t *testing.T) {
	s := sendStream{peerMaxData: 1 << 20}
	s.write(pattern(1000))
	s.next = 1000
	s.ack(200, 400)
	s.requeue([]streamChunk{{off: 0, n: 600}, {off: 600, n: 400}})
	require.Equal(t, []byteRange{{0, 200}, {400, 1000}}, s.retransmit.r)
	// Acknowledging part of what is queued takes it out of the queue.
	s.ack(0, 100)
	require.Equal(t, []byteRange{{100, 200}, {400, 1000}}, s.retransmit.r)
	// Bytes below the base are never queued.
	s.ack(100, 200)
	s.requeue([]streamChunk{{off: 0, n: 300}})
	require.Equal(t, []byteRange{{400, 1000}}, s.retransmit.r)
}

func TestSendStreamRequeueFin(t *testing.T) {
	s := sendStream{peerMaxData: 1 << 20, finWanted: true, finSent: true}
	s.write(pattern(10))
	s.next = 10
	s.requeue([]streamChunk{{off: 0, n: 10, fin: true}})
	require.False(t, s.finSent, "a lost FIN is sent again")
	s.finSent, s.finAcked = true, true
	s.requeue([]streamChunk{{off: 0, n: 10, fin: true}})
	require.True(t, s.finSent, "a FIN acknowledged in another packet is not")
}

func TestSendStreamAppendRetransmissionsFirst(t *testing.T) {
	data := pattern(3000)
	s := sendStream{peerMaxData: 1 << 20}
	s.write(data)
	var sp sentPacket
	b, added := s.appendStream(nil, 1000, &sp, false)
	require.True(t, added)
	first := streamFrames(t, b)
	require.Len(t, first, 1)
	n := uint64(len(first[0].Data))
	require.Equal(t, data[:n], first[0].Data)
	require.Equal(t, n, s.next)
	require.Equal(t, n, s.bytesSent)

	s.requeue(sp.chunks[:sp.nChunks])
	sp = sentPacket{}
	b, _ = s.appendStream(nil, 1200, &sp, false)
	fs := streamFrames(t, b)
	require.GreaterOrEqual(t, len(fs), 2)
	require.Equal(t, uint64(0), fs[0].Offset, "the lost bytes go before new ones")
	require.Equal(t, data[:n], fs[0].Data)
	require.Equal(t, n, fs[1].Offset)
	require.Equal(t, n, s.bytesRetransmitted)
	require.True(t, s.retransmit.empty())
}

func TestSendStreamFlowControl(t *testing.T) {
	s := sendStream{peerMaxData: 100}
	s.write(pattern(300))
	require.True(t, s.hasNewData())
	var sp sentPacket
	b, _ := s.appendStream(nil, 1200, &sp, false)
	fs := streamFrames(t, b)
	require.Len(t, fs, 1)
	require.Len(t, fs[0].Data, 100, "no byte beyond the peer's limit")
	require.False(t, s.hasNewData())
	require.True(t, s.blockedDue())
	s.blockedSent = s.peerMaxData + 1
	require.False(t, s.blockedDue(), "DATA_BLOCKED once per limit")
	require.False(t, s.onMaxData(50), "a smaller limit is ignored")
	require.True(t, s.onMaxData(300))
	require.True(t, s.hasNewData())
	require.False(t, s.blockedDue())
}

func TestSendStreamHandshakeOnlyStopsAtHsEnd(t *testing.T) {
	s := sendStream{peerMaxData: 1 << 20, hsEnd: 50, finWanted: true}
	s.write(pattern(200))
	var sp sentPacket
	b, _ := s.appendStream(nil, 1200, &sp, true)
	fs := streamFrames(t, b)
	require.Len(t, fs, 1)
	require.Len(t, fs[0].Data, 50)
	require.False(t, fs[0].Fin)
	require.False(t, s.finSent)
}
