package congestion

import "time"

// maxFilter is a windowed maximum over the last two periods, as BBRv3 keeps its bandwidth
// estimate (draft-ietf-ccwg-bbr §5.5.5, BBR.max_bw over two ProbeBW cycles): samples go into the
// current period's slot, advance starts a new period and forgets the older one. A maximum over
// two periods is never younger than one full period, so a quiet stretch (random loss, a cruise at
// the estimated rate) cannot erode it before the next probe measures again.
type maxFilter struct {
	slot [2]uint64 // [0]: the previous period, [1]: the current one
}

// update adds a sample to the current period.
func (f *maxFilter) update(v uint64) { f.slot[1] = max(f.slot[1], v) }

// advance starts a new period.
func (f *maxFilter) advance() { f.slot[0], f.slot[1] = f.slot[1], 0 }

// get returns the maximum over both periods.
func (f *maxFilter) get() uint64 { return max(f.slot[0], f.slot[1]) }

// minFilter is a windowed minimum over time, as BBR keeps min_rtt (draft-ietf-ccwg-bbr §5.3.1):
// a sample at or below the minimum replaces it and restarts its window; once the minimum is older
// than the window, the next sample replaces it whatever its value, so a path whose RTT grew is
// believed within one window.
type minFilter struct {
	window time.Duration
	value  time.Duration
	stamp  time.Time
	valid  bool
}

// update adds a sample taken at now and reports whether it became the minimum.
func (f *minFilter) update(now time.Time, v time.Duration) bool {
	if !f.valid || v <= f.value || now.Sub(f.stamp) > f.window {
		f.value, f.stamp, f.valid = v, now, true
		return true
	}
	return false
}

// get returns the minimum, 0 before the first sample.
func (f *minFilter) get() time.Duration { return f.value }
