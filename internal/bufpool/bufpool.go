// Package bufpool recycles the large byte slices of connections' stream buffers: the send
// buffer of session.Conn and the reassembly ring of reassembly.Buffer. Both are taken when
// traffic comes and given back as soon as they are drained, so an idle connection holds neither
// (issue 8: an idle session pair held 160 KiB, most of it such buffers), while a busy one keeps
// cycling the same few slices without allocating.
//
// Slices come in power-of-two sizes from MinSize to MaxSize, one sync.Pool per size: the garbage
// collector frees what stays unused over two collections, so memory follows the load.
package bufpool

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Size bounds of pooled slices. Smaller requests get MinSize; larger ones are allocated and
// left to the garbage collector (a window beyond MaxSize is a configuration few use).
const (
	minShift = 12
	maxShift = 26
	MinSize  = 1 << minShift // 4 KiB
	MaxSize  = 1 << maxShift // 64 MiB
)

// pools[i] holds slices of 1<<(minShift+i) bytes, as pointers to their first byte: a pointer
// goes into an interface without an allocation, where a slice header would not.
var pools [maxShift - minShift + 1]sync.Pool

// Class returns the size Get returns for a request of n bytes: the next power of two, at least
// MinSize. Beyond MaxSize it is n itself.
func Class(n int) int {
	if n <= MinSize {
		return MinSize
	}
	if n > MaxSize {
		return n
	}
	return 1 << bits.Len(uint(n-1))
}

// Get returns a slice of Class(n) bytes, of unspecified content.
func Get(n int) []byte {
	size := Class(n)
	if size > MaxSize {
		return make([]byte, size)
	}
	i := bits.Len(uint(size)) - 1 - minShift
	if p, ok := pools[i].Get().(*byte); ok {
		return unsafe.Slice(p, size)
	}
	return make([]byte, size)
}

// Put gives b back for reuse; b's capacity says its size. Slices that Get did not return (any
// other capacity) are left to the garbage collector. The caller must not use b afterwards.
func Put(b []byte) {
	size := cap(b)
	if size < MinSize || size > MaxSize || size&(size-1) != 0 {
		return
	}
	pools[bits.Len(uint(size))-1-minShift].Put(unsafe.SliceData(b[:1]))
}
