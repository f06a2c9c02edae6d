package impair

import (
	"math"
	"time"
)

// DropReason says why [Link.Send] dropped a datagram.
type DropReason uint8

// Drop reasons, in the order Send checks them.
const (
	NotDropped   DropReason = iota
	DropBlackout            // sent during a Config.Blackouts window
	DropBurst               // lost in the bad state of the Gilbert-Elliott model
	DropLoss                // independent random loss (Config.Loss)
	DropLimit               // the Link already held Config.Limit copies
	DropQueue               // the rate limiter's queue was full (tail drop)
	// DropTooBig: longer than Config.MaxSize. Checked first (a datagram that does not fit the
	// path never enters it), numbered after the older reasons so their values keep their meaning.
	DropTooBig
	DropPolice // above Config.PoliceRate: the policer's bucket was empty
)

var dropNames = [...]string{"none", "blackout", "burst", "loss", "limit", "queue", "too big", "police"}

func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return "unknown"
}

// SendResult is the fate of one datagram given to [Link.Send]. It is a value: Send does not
// allocate to report it.
type SendResult struct {
	Drop      DropReason   // NotDropped unless Copies == 0
	Copies    int          // 0 (dropped), 1, or 2 (duplicated)
	At        [2]time.Time // delivery time of each copy; At[i] valid for i < Copies
	Corrupted [2]bool      // whether copy i was corrupted
	Reordered bool         // held back by Config.Reorder
}

// LinkStats counts what a Link did. Counters only grow; Queued is a level.
type LinkStats struct {
	Sent           uint64 // datagrams given to Send
	SentBytes      uint64
	Delivered      uint64 // copies handed out by Receive (duplicates count twice)
	DeliveredBytes uint64
	LostRandom     uint64 // dropped by Config.Loss
	LostBurst      uint64 // dropped by the Gilbert-Elliott model
	LostBlackout   uint64 // dropped during a blackout
	QueueDrops     uint64 // tail-dropped by the rate limiter's queue
	LimitDrops     uint64 // dropped because the Link held Config.Limit copies
	PoliceDrops    uint64 // dropped by the policer (Config.PoliceRate)
	Reordered      uint64 // held back by Config.Reorder
	Duplicated     uint64 // extra copies made
	Corrupted      uint64 // copies corrupted
	TooBig         uint64 // dropped for exceeding Config.MaxSize
	Queued         int    // copies currently held for delivery
}

// Dropped is the total number of datagrams Send dropped, for any reason.
func (s LinkStats) Dropped() uint64 {
	return s.LostRandom + s.LostBurst + s.LostBlackout + s.QueueDrops + s.LimitDrops + s.TooBig + s.PoliceDrops
}

// Add adds o's counters (and level) to s, to total several Links.
func (s *LinkStats) Add(o LinkStats) {
	s.Sent += o.Sent
	s.SentBytes += o.SentBytes
	s.Delivered += o.Delivered
	s.DeliveredBytes += o.DeliveredBytes
	s.LostRandom += o.LostRandom
	s.LostBurst += o.LostBurst
	s.LostBlackout += o.LostBlackout
	s.QueueDrops += o.QueueDrops
	s.LimitDrops += o.LimitDrops
	s.PoliceDrops += o.PoliceDrops
	s.Reordered += o.Reordered
	s.Duplicated += o.Duplicated
	s.Corrupted += o.Corrupted
	s.TooBig += o.TooBig
	s.Queued += o.Queued
}

// Link is one direction of an impaired path. It holds the datagrams in flight, ordered by
// delivery time, in buffers it owns and reuses, so that Send and Receive do not allocate once the
// Link has seen its peak number of datagrams in flight.
//
// Time is whatever the caller says it is: every method that needs the time takes now, and a
// Link never reads the clock, sleeps or starts goroutines. now must not go backwards; a now
// earlier than one already seen is treated as the latest one seen. Times before the start
// given to NewLink count as the start.
//
// A Link is not safe for concurrent use.
type Link struct {
	cfg   Config
	start time.Time
	key   uint64        // mixed Config.Seed
	now   time.Duration // latest now seen, since start

	n    uint64        // datagrams given to Send so far: the index of the next one
	bad  bool          // Gilbert-Elliott state
	busy time.Duration // the rate limiter serialises until then
	// The policer as a virtual scheduler (the GCRA form of a token bucket, ITU-T I.371): tat
	// is when the bucket will be full again; a datagram conforms if it arrives no earlier than
	// tat minus the bucket's worth of time, and moves tat on by its own transmission time.
	tat  time.Duration
	fifo time.Duration // delivery time of the latest datagram not held back by Reorder
	seq  uint64        // enqueue order, to break ties in q

	q    []entry  // min-heap by (at, seq)
	free [][]byte // buffers of delivered copies, for reuse

	stats LinkStats

	// Derived from cfg by NewLink.
	limit        int
	queueLimit   time.Duration // longest wait for the serialiser before tail drop
	policeBurst  time.Duration // the policer's bucket, as time at PoliceRate
	reorderDelay time.Duration
	exitBad      float64 // 1/Burst.MeanLen
}

type entry struct {
	at  time.Duration // delivery time, since start
	seq uint64
	buf []byte
}

// minBufCap is the smallest buffer a Link allocates, so that the buffer freed by a small
// datagram (an ACK) can carry a full-size one later without a new allocation.
const minBufCap = 2048

// NewLink returns a Link whose clock starts at start (Blackouts are relative to it). It panics if
// cfg is not valid: validate user input with [Config.Validate] first.
func NewLink(cfg Config, start time.Time) *Link {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.Blackouts = append([]Blackout(nil), cfg.Blackouts...) // the caller may reuse its slice
	l := &Link{cfg: cfg, start: start, key: mix64(uint64(cfg.Seed)), limit: cfg.Limit}
	if l.limit == 0 {
		l.limit = DefaultLimit
	}
	if cfg.Burst.Enabled() {
		l.exitBad = 1 / cfg.Burst.MeanLen
	}
	l.reorderDelay = cfg.ReorderDelay
	if l.reorderDelay == 0 {
		l.reorderDelay = max(cfg.Delay+cfg.Jitter, minReorderDelay)
	}
	l.queueLimit = cfg.queueLimit()
	if cfg.PoliceRate > 0 {
		l.policeBurst = DefaultPoliceBurst
		if cfg.PoliceBurst > 0 {
			l.policeBurst = txTime(cfg.PoliceBurst, cfg.PoliceRate)
		}
	}
	return l
}

// Config returns the configuration the Link was built with.
func (l *Link) Config() Config { return l.cfg }

// Send offers datagram b to the link at time now and reports its fate. If it is not dropped,
// b is copied (corrupted copies are made in the copy; b itself is never modified) and queued
// for delivery at SendResult.At. Send does not keep b.
func (l *Link) Send(now time.Time, b []byte) SendResult {
	t := l.advance(now)
	r := rng{s: mix64(l.key + l.n*golden)}
	l.n++
	// Draw every decision for this datagram, in a fixed order, whatever the Config: the
	// decisions of one impairment then do not depend on whether another is on.
	uState, uBad, uLoss := r.float(), r.float(), r.float()
	uReorder, uDup := r.float(), r.float()
	uCorrupt0, uCorrupt1 := r.float(), r.float()

	l.stats.Sent++
	l.stats.SentBytes += uint64(len(b))
	var res SendResult

	// The Gilbert-Elliott chain moves on every datagram, including those dropped for other
	// reasons, so that its state depends only on the datagram count.
	if l.cfg.Burst.Enabled() {
		if l.bad {
			l.bad = uState >= l.exitBad
		} else {
			l.bad = uState < l.cfg.Burst.Enter
		}
	}
	switch {
	case l.cfg.MaxSize > 0 && len(b) > l.cfg.MaxSize && t >= l.cfg.MaxSizeAt:
		res.Drop = DropTooBig
		l.stats.TooBig++
		return res
	case l.inBlackout(t):
		res.Drop = DropBlackout
		l.stats.LostBlackout++
		return res
	case l.bad && uBad < l.cfg.Burst.BadLoss:
		res.Drop = DropBurst
		l.stats.LostBurst++
		return res
	case uLoss < l.cfg.Loss:
		res.Drop = DropLoss
		l.stats.LostRandom++
		return res
	case len(l.q) >= l.limit:
		res.Drop = DropLimit
		l.stats.LimitDrops++
		return res
	case !l.police(t, len(b)):
		res.Drop = DropPolice
		l.stats.PoliceDrops++
		return res
	}

	depart := t
	if l.cfg.Rate > 0 {
		begin := max(t, l.busy)
		wait := begin - t
		tx := txTime(len(b), l.cfg.Rate)
		if wait > 0 && wait+tx > l.queueLimit {
			res.Drop = DropQueue
			l.stats.QueueDrops++
			return res
		}
		l.busy = begin + tx
		depart = l.busy // the last bit leaves the bottleneck
	}

	at := depart + l.cfg.Delay
	if l.cfg.Jitter > 0 {
		at = max(at+jitterAt(l.key, l.cfg.Jitter, depart), depart)
	}
	// Jitter does not reorder (see jitterAt); this only guards against rounding.
	at = max(at, l.fifo)
	l.fifo = at
	if uReorder < l.cfg.Reorder {
		at += l.reorderDelay
		res.Reordered = true
		l.stats.Reordered++
	}

	res.Copies = 1
	res.At[0] = l.start.Add(at)
	res.Corrupted[0] = l.enqueue(at, b, uCorrupt0 < l.cfg.Corrupt, &r)
	if uDup < l.cfg.Duplicate && len(l.q) < l.limit {
		res.Copies = 2
		res.At[1] = res.At[0]
		res.Corrupted[1] = l.enqueue(at, b, uCorrupt1 < l.cfg.Corrupt, &r)
		l.stats.Duplicated++
	}
	return res
}

// police reports whether a datagram of n bytes arriving at t conforms to the policer, and takes
// its tokens if so. A datagram larger than the whole bucket conforms only to a full bucket.
func (l *Link) police(t time.Duration, n int) bool {
	if l.cfg.PoliceRate == 0 {
		return true
	}
	tx := txTime(n, l.cfg.PoliceRate)
	tat := max(l.tat, t)
	if tat+tx-t > max(l.policeBurst, tx) {
		return false
	}
	l.tat = tat + tx
	return true
}

// NextDelivery returns when the earliest queued copy is due, or the zero Time if none is queued.
// A simulator advances its clock to it; a relay arms its timer for it.
func (l *Link) NextDelivery() time.Time {
	if len(l.q) == 0 {
		return time.Time{}
	}
	return l.start.Add(l.q[0].at)
}

// Receive copies the earliest copy that is due at now into dst and returns its length; ok is
// false if none is due. Call it until ok is false to take everything due. dst should be as long
// as the longest datagram sent: like a UDP socket read, a longer datagram is truncated to
// len(dst).
func (l *Link) Receive(now time.Time, dst []byte) (n int, ok bool) {
	if len(l.q) == 0 {
		return 0, false
	}
	if l.q[0].at > l.advance(now) {
		return 0, false
	}
	e := l.pop()
	n = copy(dst, e.buf)
	l.free = append(l.free, e.buf[:0])
	l.stats.Delivered++
	l.stats.DeliveredBytes += uint64(n)
	return n, true
}

// Len returns how many copies are queued for delivery.
func (l *Link) Len() int { return len(l.q) }

// Stats returns the Link's counters.
func (l *Link) Stats() LinkStats {
	s := l.stats
	s.Queued = len(l.q)
	return s
}

// advance converts now to time since start, never going backwards.
func (l *Link) advance(now time.Time) time.Duration {
	if d := now.Sub(l.start); d > l.now {
		l.now = d
	}
	return l.now
}

func (l *Link) inBlackout(t time.Duration) bool {
	for _, b := range l.cfg.Blackouts {
		if b.contains(t) {
			return true
		}
	}
	return false
}

// txTime is how long a bottleneck of rate bits per second needs to serialise n bytes, rounded
// up to whole nanoseconds so that the rate is never exceeded.
func txTime(n int, rate int64) time.Duration {
	bits := int64(n) * 8
	if bits < math.MaxInt64/int64(time.Second) {
		ns := bits * int64(time.Second)
		return time.Duration((ns + rate - 1) / rate)
	}
	return time.Duration(math.Ceil(float64(bits) * float64(time.Second) / float64(rate)))
}

// queueLimit is the longest a datagram may wait for the rate limiter before it is tail-dropped
// (MaxInt64 without a rate limit).
func (c Config) queueLimit() time.Duration {
	limit := time.Duration(math.MaxInt64)
	if c.Rate == 0 {
		return limit
	}
	if d := c.queueDelay(); d > 0 {
		limit = d
	}
	if c.QueueBytes > 0 {
		// The serialiser needs this long for QueueBytes: a longer backlog is more bytes waiting.
		d := float64(c.QueueBytes) * 8 * float64(time.Second) / float64(c.Rate)
		if d < float64(limit) {
			limit = time.Duration(d)
		}
	}
	return limit
}

// enqueue copies b into a pooled buffer, corrupts the copy if asked, and queues it for at. It
// reports whether the copy was corrupted.
func (l *Link) enqueue(at time.Duration, b []byte, corrupt bool, r *rng) bool {
	buf := l.getBuf(len(b))
	copy(buf, b)
	corrupted := corrupt && len(buf) > 0
	if corrupted {
		flipBits(buf, r)
		l.stats.Corrupted++
	}
	l.seq++
	l.push(entry{at: at, seq: l.seq, buf: buf})
	return corrupted
}

// flipBits flips one random bit in each of 1 to 3 distinct random bytes of buf (len(buf) > 0).
// Distinct bytes, so that two flips never cancel out.
func flipBits(buf []byte, r *rng) {
	n := min(1+r.intn(3), len(buf))
	var picked [3]int
	for k := 0; k < n; {
		p := r.intn(len(buf))
		dup := false
		for _, q := range picked[:k] {
			dup = dup || q == p
		}
		if dup {
			continue
		}
		picked[k] = p
		k++
		buf[p] ^= 1 << r.intn(8)
	}
}

func (l *Link) getBuf(n int) []byte {
	if k := len(l.free); k > 0 {
		buf := l.free[k-1]
		l.free[k-1] = nil
		l.free = l.free[:k-1]
		if cap(buf) >= n {
			return buf[:n]
		}
	}
	return make([]byte, n, max(n, minBufCap))
}

// The delivery queue is a binary min-heap written out for entry, rather than container/heap,
// whose interface{} Push and Pop would allocate for every datagram.

func (e *entry) before(o *entry) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

func (l *Link) push(e entry) {
	l.q = append(l.q, e)
	i := len(l.q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !l.q[i].before(&l.q[p]) {
			break
		}
		l.q[i], l.q[p] = l.q[p], l.q[i]
		i = p
	}
}

func (l *Link) pop() entry {
	top := l.q[0]
	last := len(l.q) - 1
	l.q[0] = l.q[last]
	l.q[last] = entry{} // the buffer now belongs to the caller
	l.q = l.q[:last]
	i := 0
	for {
		c := 2*i + 1
		if c >= last {
			break
		}
		if c+1 < last && l.q[c+1].before(&l.q[c]) {
			c++
		}
		if !l.q[c].before(&l.q[i]) {
			break
		}
		l.q[i], l.q[c] = l.q[c], l.q[i]
		i = c
	}
	return top
}

// jitterKnots is the spacing of jitterAt's random points, in units of the jitter amplitude.
const jitterKnots = 4

// jitterAt returns the jitter, in [-j, +j], added to the delay of what departs at t (time since
// the start). It interpolates linearly between random points spaced jitterKnots·j apart, so the
// delay changes by at most 2j per jitterKnots·j of time: its slope is at least -1/2, and
// something that departs dt later arrives at least dt/2 later. That is why jitter never
// reorders, with no clamping that would skew the delay upwards. The points are drawn from
// (key, index), so the path depends on the seed and time, not on the traffic.
func jitterAt(key uint64, j time.Duration, t time.Duration) time.Duration {
	span := jitterKnots * j
	k := uint64(t / span)
	frac := float64(t%span) / float64(span)
	point := func(k uint64) float64 {
		r := rng{s: mix64(key ^ 0x6a09e667f3bcc908 + k*golden)}
		return 2*r.float() - 1
	}
	a, b := point(k), point(k+1)
	return time.Duration((a + (b-a)*frac) * float64(j))
}

// golden is 2^64/φ, SplitMix64's increment.
const golden = 0x9e3779b97f4a7c15

// mix64 is the SplitMix64 output function (Steele, Lea, Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014): a bijection that turns a counter into well-mixed bits.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rng is SplitMix64 started from a hash of (seed, datagram index): a counter-based generator, so
// that each datagram's draws are independent of how many draws earlier datagrams made.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// float returns a uniform float64 in [0, 1): u < p is then true with probability p, never for
// p = 0 and always for p = 1.
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// intn returns a number in [0, n), n > 0. The modulo bias is below 2^-32 for datagram sizes.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// The byte-stream relay (package relay's TCPRelay) applies the same rate limit and jitter to a
// stream that a Link applies to datagrams; these exported forms keep one model for both.

// TxTime is how long a bottleneck of rate bits per second needs to serialise n bytes.
func TxTime(n int, rate int64) time.Duration { return txTime(n, rate) }

// QueueLimit is the longest backlog the rate limiter of c holds before it drops (or, for a
// stream, pauses its reader); MaxInt64 without a rate limit.
func (c Config) QueueLimit() time.Duration { return c.queueLimit() }

// JitterAt is the jitter, in [-j, +j], added to the delay of what departs at t (time since the
// start) on a path seeded with seed. Like a Link's jitter it never reorders.
func JitterAt(seed int64, j, t time.Duration) time.Duration {
	return jitterAt(mix64(uint64(seed)), j, t)
}
