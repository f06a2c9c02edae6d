package transport

import (
	"fmt"
	"runtime"
	"strings"
)

// allocSites counts the heap allocations fn makes, in the whole process, by allocation site:
// the innermost function of the stack outside the runtime, or "crypto/tls record reader" for
// the one crypto/tls makes per record read (an io.Reader wrapper in Conn.readFromUntil, which no
// caller can avoid). It profiles every allocation while fn runs.
func allocSites(fn func()) (tlsReader int64, others map[string]int64) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	before := memProfile()
	fn()
	after := memProfile()
	others = map[string]int64{}
	for stack, n := range after {
		n -= before[stack]
		if n <= 0 {
			continue
		}
		if strings.Contains(stack, "transport.memProfile") {
			continue // the measurement's own
		}
		if strings.Contains(stack, "crypto/tls.(*Conn).readFromUntil") {
			tlsReader += n
			continue
		}
		others[site(stack)] += n
	}
	return tlsReader, others
}

// memProfile returns the allocations so far by stack (function names joined by newlines). The
// profile is as of the last garbage collection, so it runs one first (twice: an allocation
// shows once the cycle after it has completed).
func memProfile() map[string]int64 {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+64)
	}
	out := make(map[string]int64, len(recs))
	for i := range recs {
		var b strings.Builder
		frames := runtime.CallersFrames(recs[i].Stack())
		for {
			f, more := frames.Next()
			fmt.Fprintln(&b, f.Function)
			if !more {
				break
			}
		}
		out[b.String()] += recs[i].AllocObjects
	}
	return out
}

// site is the first function of stack outside the runtime and the standard library's
// internals: where the allocation was asked for.
func site(stack string) string {
	for _, fn := range strings.Split(strings.TrimSpace(stack), "\n") {
		if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") {
			return fn
		}
	}
	return stack
}
