package session

import (
	"sync"

	"github.com/tlsgram/tlsgram/header"
)

// Scratch frames, lent for the length of one call instead of kept in every Conn: a frame holds
// header.MaxAckRanges ACK ranges, a KiB, and a parsed frame and a built ACK in each core were
// 2 of the 7 KiB an idle connection's core held (issue 8). A sync.Pool hands them out without
// allocating once warm, so a datagram still costs no allocation.
var (
	framePool = sync.Pool{New: func() any { return new(header.Frame) }}
	ackPool   = sync.Pool{New: func() any { return new(header.AckFrame) }}
)

func getFrame() *header.Frame { return framePool.Get().(*header.Frame) }

// putFrame recycles f, forgetting the datagram its Data aliases.
func putFrame(f *header.Frame) {
	f.Data = nil
	framePool.Put(f)
}

func getAck() *header.AckFrame  { return ackPool.Get().(*header.AckFrame) }
func putAck(f *header.AckFrame) { ackPool.Put(f) }
