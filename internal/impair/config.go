package impair

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by [NewLink] when the corresponding Config field is zero.
const (
	// DefaultLimit is how many datagram copies a Link holds for delivery before it drops new
	// ones (netem's "limit"; netem's default of 1000 is too small for a gigabit path with tens
	// of milliseconds of delay, which needs several thousand 1452-byte datagrams in flight).
	DefaultLimit = 16384
	// DefaultQueueDelay bounds the rate limiter's queue when Rate is set and neither QueueBytes
	// nor QueueDelay is: 100 ms of data at the configured rate.
	DefaultQueueDelay = 100 * time.Millisecond
	// DefaultPoliceBurst sizes the policer's bucket when PoliceBurst is zero: 10 ms of traffic
	// at PoliceRate.
	DefaultPoliceBurst = 10 * time.Millisecond
	// minReorderDelay is the hold-back for Reorder when neither ReorderDelay nor Delay+Jitter
	// gives one: on a zero-delay path, 1 ms is enough for a bulk sender's next datagrams to
	// overtake the held one.
	minReorderDelay = time.Millisecond
)

// Config describes the impairment of one direction of a path. The zero value is a perfect link:
// everything is delivered at once, unchanged, in order. Probabilities are per datagram, in [0, 1].
// Call [Config.Validate] on anything a user typed; [NewLink] panics on an invalid Config.
type Config struct {
	// Loss is the probability that a datagram is lost, independently of every other datagram.
	Loss float64
	// Burst adds Gilbert-Elliott bursty loss on top of Loss. See [GilbertLoss] to configure it
	// from an average loss rate and a mean burst length (the CLI's -loss and -burst).
	Burst GilbertElliott
	// Reorder is the probability that a datagram is held back by ReorderDelay beyond its normal
	// delivery time, so that datagrams sent after it can arrive first. Counted in
	// LinkStats.Reordered when held back (whether anything overtakes it depends on the traffic).
	Reorder float64
	// ReorderDelay is the extra hold-back for a reordered datagram. Zero means Delay+Jitter, or
	// 1 ms if that is zero too.
	ReorderDelay time.Duration
	// Duplicate is the probability that a datagram is delivered twice; the second copy arrives
	// right after the first (same delivery time). Duplicates do not use rate-limiter capacity.
	Duplicate float64
	// Corrupt is the probability that a delivered copy is corrupted: one random bit is flipped
	// in each of 1 to 3 distinct random bytes, so the payload always differs from what was sent.
	// Each copy of a duplicated datagram is decided separately. An empty datagram cannot be
	// corrupted.
	Corrupt float64
	// Delay is the one-way propagation delay added to every datagram.
	Delay time.Duration
	// Jitter varies the delay within [Delay-Jitter, Delay+Jitter] (never below zero), smoothly
	// over time: the delay follows a piecewise-linear path through random points spaced
	// 4·Jitter apart, so its average is Delay and it never falls faster than half a second per
	// second. Jitter therefore never reorders; see the package documentation.
	Jitter time.Duration
	// Rate is the bottleneck rate in bits per second; 0 means unlimited. A datagram takes
	// len·8/Rate to serialise; datagrams that arrive while the link is busy wait in a FIFO queue
	// bounded by QueueBytes and QueueDelay and are tail-dropped when it is full. Delay is
	// added after serialisation.
	Rate int64
	// QueueBytes bounds the rate limiter's queue in bytes (needs Rate). A datagram is dropped if
	// the bytes still waiting to be serialised plus its own would exceed QueueBytes; an idle link
	// always accepts one datagram, however large.
	QueueBytes int
	// QueueDelay bounds the rate limiter's queue in time: a datagram is dropped if it would have
	// to wait more than QueueDelay for the link (needs Rate). If both QueueBytes and QueueDelay
	// are zero, DefaultQueueDelay applies; if both are set, the tighter one does.
	QueueDelay time.Duration
	// PoliceRate, in bits per second, puts a policer in front of the path: a token bucket that
	// fills at PoliceRate up to PoliceBurst bytes, and drops every datagram it has not the tokens
	// for (a traffic policer, as ISPs and cellular networks enforce a rate plan, RFC 2697's
	// single-rate meter without the colours). Unlike Rate it never queues: above the rate it
	// drops, below it it adds no delay. 0 means no policer.
	PoliceRate int64
	// PoliceBurst is the policer's bucket size in bytes (needs PoliceRate). Zero means
	// DefaultPoliceBurst of traffic at PoliceRate, and at least one maximum-size datagram.
	PoliceBurst int
	// Limit is the most datagram copies the Link holds for delivery at once; beyond it, new
	// datagrams are dropped (and duplicates not made). Zero means DefaultLimit. It bounds the
	// memory of a Link that is fed faster than Delay lets it drain.
	Limit int
	// Blackouts are windows, relative to the Link's start, during which every datagram sent is
	// dropped (those already in flight are still delivered).
	Blackouts []Blackout
	// MaxSize, if positive, drops every datagram longer than MaxSize bytes: a path MTU below the
	// sender's datagram size, where routers discard what does not fit (IPv6, or IPv4 with the DF
	// bit set) and, like a black hole, often say nothing (RFC 8899 §1.1). Counted in
	// LinkStats.TooBig.
	MaxSize int
	// MaxSizeAt is when MaxSize starts to apply, relative to the Link's start: before it the
	// path carries any size. Zero means from the start; a later time models a route change to a
	// path with a smaller MTU in the middle of a connection.
	MaxSizeAt time.Duration
	// Seed selects the random decisions. The same Seed and the same calls give the same result.
	// Use [DeriveSeed] to give each direction and each client its own stream.
	Seed int64
}

// GilbertElliott is a two-state Markov model of bursty loss (Gilbert 1960, Elliott 1963). Before
// each datagram the state may change — good to bad with probability Enter, bad to good with
// probability 1/MeanLen — and then, in the bad state, the datagram is lost with probability
// BadLoss. With BadLoss = 1 a burst is a run of consecutive losses with a geometric length of
// mean MeanLen, and the long-run loss rate is Enter/(Enter + 1/MeanLen). The zero value disables
// it.
type GilbertElliott struct {
	Enter   float64 // probability of moving from the good to the bad state, per datagram
	MeanLen float64 // mean number of consecutive datagrams in the bad state; ≥ 1 when enabled
	BadLoss float64 // loss probability in the bad state; 1 is the classic Gilbert model
}

// Enabled reports whether the model can ever lose anything.
func (g GilbertElliott) Enabled() bool { return g.Enter > 0 }

// GilbertLoss returns the classic Gilbert model (BadLoss = 1) whose long-run loss rate is avgLoss
// and whose bursts have mean length meanBurst datagrams: it solves
// avgLoss = Enter/(Enter + 1/meanBurst) for Enter. This is what the relay CLI's `-loss P -burst N`
// means; leave Config.Loss at zero when using it, or the two losses add up.
func GilbertLoss(avgLoss, meanBurst float64) (GilbertElliott, error) {
	if !(avgLoss >= 0 && avgLoss < 1) {
		return GilbertElliott{}, fmt.Errorf("impair: burst average loss %v out of range [0,1)", avgLoss)
	}
	if !(meanBurst >= 1) || math.IsInf(meanBurst, 0) {
		return GilbertElliott{}, fmt.Errorf("impair: mean burst length %v must be a finite number ≥ 1", meanBurst)
	}
	if avgLoss == 0 {
		return GilbertElliott{}, nil
	}
	exit := 1 / meanBurst
	enter := avgLoss * exit / (1 - avgLoss)
	if enter > 1 {
		// Even leaving the good state after every datagram cannot reach the loss rate.
		return GilbertElliott{}, fmt.Errorf("impair: average loss %v is unreachable with mean burst length %v (at most %.3g)",
			avgLoss, meanBurst, meanBurst/(meanBurst+1))
	}
	return GilbertElliott{Enter: enter, MeanLen: meanBurst, BadLoss: 1}, nil
}

// Blackout is a window during which a Link drops every datagram sent: an outage, a route flap,
// a NAT rebinding.
type Blackout struct {
	Start    time.Duration // from the Link's start
	Duration time.Duration
}

func (b Blackout) contains(t time.Duration) bool {
	return t >= b.Start && t-b.Start < b.Duration
}

// String formats the window as START+DURATION, the form [ParseBlackouts] reads.
func (b Blackout) String() string { return b.Start.String() + "+" + b.Duration.String() }

// ParseBlackouts parses a comma-separated list of START+DURATION windows, e.g. "2s+500ms,10s+1s"
// (durations in time.ParseDuration syntax). The empty string gives no blackouts.
func ParseBlackouts(s string) ([]Blackout, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Blackout
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		start, dur, ok := strings.Cut(part, "+")
		if !ok {
			return nil, fmt.Errorf("impair: blackout %q: want START+DURATION, e.g. 2s+500ms", part)
		}
		st, err := time.ParseDuration(strings.TrimSpace(start))
		if err != nil {
			return nil, fmt.Errorf("impair: blackout %q: start: %w", part, err)
		}
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if err != nil {
			return nil, fmt.Errorf("impair: blackout %q: duration: %w", part, err)
		}
		if st < 0 || d <= 0 {
			return nil, fmt.Errorf("impair: blackout %q: start must be ≥ 0 and duration > 0", part)
		}
		out = append(out, Blackout{Start: st, Duration: d})
	}
	return out, nil
}

// Validate reports every out-of-range or contradictory field in one error (nil if none), with
// the field names as written in Config.
func (c Config) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	prob := func(name string, p float64) {
		if !(p >= 0 && p <= 1) { // also rejects NaN
			bad("%s %v out of range [0,1]", name, p)
		}
	}
	nonNeg := func(name string, d time.Duration) {
		if d < 0 {
			bad("%s %v is negative", name, d)
		}
	}
	prob("Loss", c.Loss)
	prob("Reorder", c.Reorder)
	prob("Duplicate", c.Duplicate)
	prob("Corrupt", c.Corrupt)
	prob("Burst.Enter", c.Burst.Enter)
	prob("Burst.BadLoss", c.Burst.BadLoss)
	switch {
	case c.Burst.Enter > 0:
		if !(c.Burst.MeanLen >= 1) || math.IsInf(c.Burst.MeanLen, 0) {
			bad("Burst.MeanLen %v must be a finite number ≥ 1 when Burst.Enter > 0", c.Burst.MeanLen)
		}
		if c.Burst.BadLoss == 0 {
			bad("Burst.BadLoss is 0, so the bursty-loss model never loses anything (1 is the classic Gilbert model)")
		}
	case c.Burst.MeanLen != 0 || c.Burst.BadLoss != 0:
		bad("Burst.MeanLen/BadLoss set but Burst.Enter is 0, so bursty loss is off (use GilbertLoss)")
	}
	nonNeg("ReorderDelay", c.ReorderDelay)
	nonNeg("Delay", c.Delay)
	nonNeg("Jitter", c.Jitter)
	nonNeg("QueueDelay", c.QueueDelay)
	if c.Rate < 0 {
		bad("Rate %d is negative (0 means unlimited)", c.Rate)
	}
	if c.QueueBytes < 0 {
		bad("QueueBytes %d is negative", c.QueueBytes)
	}
	if c.Rate == 0 && (c.QueueBytes != 0 || c.QueueDelay != 0) {
		bad("QueueBytes/QueueDelay need Rate: without a rate limit nothing queues")
	}
	if c.Limit < 0 {
		bad("Limit %d is negative", c.Limit)
	}
	if c.MaxSize < 0 {
		bad("MaxSize %d is negative (0 means no limit)", c.MaxSize)
	}
	nonNeg("MaxSizeAt", c.MaxSizeAt)
	if c.MaxSize == 0 && c.MaxSizeAt != 0 {
		bad("MaxSizeAt needs MaxSize")
	}
	if c.PoliceRate < 0 {
		bad("PoliceRate %d is negative (0 means no policer)", c.PoliceRate)
	}
	if c.PoliceBurst < 0 {
		bad("PoliceBurst %d is negative", c.PoliceBurst)
	}
	if c.PoliceRate == 0 && c.PoliceBurst != 0 {
		bad("PoliceBurst needs PoliceRate: without a rate there is no policer")
	}
	for i, b := range c.Blackouts {
		if b.Start < 0 || b.Duration <= 0 {
			bad("Blackouts[%d] %v: Start must be ≥ 0 and Duration > 0", i, b)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("impair: invalid config: %s", strings.Join(problems, "; "))
}

// Passthrough reports whether c leaves traffic untouched: no loss, no delay, no rate limit,
// nothing. (Seed and Limit do not count.)
func (c Config) Passthrough() bool {
	return c.Loss == 0 && !c.Burst.Enabled() && c.Reorder == 0 && c.Duplicate == 0 && c.Corrupt == 0 &&
		c.Delay == 0 && c.Jitter == 0 && c.Rate == 0 && c.PoliceRate == 0 && len(c.Blackouts) == 0 && c.MaxSize == 0
}

// String summarises the impairment for reports, e.g.
// "loss=1% delay=20ms jitter=5ms rate=50mbit queue=100ms seed=7", or "none". Fields at their
// zero value are left out.
func (c Config) String() string {
	if c.Passthrough() {
		return "none"
	}
	var b strings.Builder
	add := func(format string, args ...any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, format, args...)
	}
	if c.Loss > 0 {
		add("loss=%s", pct(c.Loss))
	}
	if c.Burst.Enabled() {
		g := c.Burst
		avg := ""
		if g.BadLoss == 1 && g.MeanLen >= 1 {
			avg = "avg=" + pct(g.Enter/(g.Enter+1/g.MeanLen)) + ","
		}
		add("burst=gilbert(%slen=%s,enter=%s,bad=%s)", avg, strconv.FormatFloat(g.MeanLen, 'g', 4, 64),
			pct(g.Enter), pct(g.BadLoss))
	}
	if c.Reorder > 0 {
		add("reorder=%s", pct(c.Reorder))
		if c.ReorderDelay > 0 {
			add("reorder-delay=%v", c.ReorderDelay)
		}
	}
	if c.Duplicate > 0 {
		add("dup=%s", pct(c.Duplicate))
	}
	if c.Corrupt > 0 {
		add("corrupt=%s", pct(c.Corrupt))
	}
	if c.Delay > 0 {
		add("delay=%v", c.Delay)
	}
	if c.Jitter > 0 {
		add("jitter=%v", c.Jitter)
	}
	if c.Rate > 0 {
		add("rate=%s", FormatRate(c.Rate))
		if c.QueueBytes > 0 {
			add("queue=%dB", c.QueueBytes)
		}
		if c.QueueDelay > 0 || c.QueueBytes == 0 {
			add("queue=%v", c.queueDelay())
		}
	}
	if c.PoliceRate > 0 {
		add("police=%s", FormatRate(c.PoliceRate))
		if c.PoliceBurst > 0 {
			add("police-burst=%dB", c.PoliceBurst)
		}
	}
	if c.Limit > 0 {
		add("limit=%d", c.Limit)
	}
	if len(c.Blackouts) > 0 {
		parts := make([]string, len(c.Blackouts))
		for i, bo := range c.Blackouts {
			parts[i] = bo.String()
		}
		add("blackout=%s", strings.Join(parts, ","))
	}
	if c.MaxSize > 0 {
		if c.MaxSizeAt > 0 {
			add("maxsize=%d@%v", c.MaxSize, c.MaxSizeAt)
		} else {
			add("maxsize=%d", c.MaxSize)
		}
	}
	add("seed=%d", c.Seed)
	return b.String()
}

func (c Config) queueDelay() time.Duration {
	if c.QueueDelay == 0 && c.QueueBytes == 0 {
		return DefaultQueueDelay
	}
	return c.QueueDelay
}

func pct(p float64) string { return strconv.FormatFloat(p*100, 'g', 4, 64) + "%" }

// rateUnits maps tc-style units (tc(8) "RATES") to bits per second. The "bps" family is left out
// on purpose: tc reads "mbps" as megaBYTES per second while most people mean megabits, and a
// silent factor of 8 in a benchmark is worse than an error.
var rateUnits = map[string]float64{
	"": 1, "bit": 1,
	"k": 1e3, "kbit": 1e3, "m": 1e6, "mbit": 1e6, "g": 1e9, "gbit": 1e9, "t": 1e12, "tbit": 1e12,
	"kibit": 1 << 10, "mibit": 1 << 20, "gibit": 1 << 30, "tibit": 1 << 40,
}

// ParseRate parses a rate in bits per second, tc style: "50mbit", "1.5gbit", "800kbit", "64k",
// "1000000" (bits per second). Units are case-insensitive; decimal prefixes are powers of 1000,
// "kibit" and friends powers of 1024. "0" and "" mean unlimited (0). Units ending in "bps" are
// rejected as ambiguous.
func ParseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, nil
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("impair: rate %q is negative", s)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if strings.HasSuffix(unit, "bps") {
		return 0, fmt.Errorf("impair: rate %q: ambiguous unit %q (tc reads it as bytes per second); write bits, e.g. \"50mbit\"", s, unit)
	}
	mult, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("impair: rate %q: unknown unit %q (want bit, kbit, mbit, gbit, tbit or k, m, g, t)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("impair: rate %q: not a number", s)
	}
	bps := v * mult
	if bps >= math.MaxInt64/2 {
		return 0, fmt.Errorf("impair: rate %q too large", s)
	}
	r := int64(math.Round(bps))
	if r == 0 && bps > 0 {
		return 0, fmt.Errorf("impair: rate %q is below 1 bit per second", s)
	}
	return r, nil
}

// FormatRate formats bits per second with the largest decimal unit that keeps the value ≥ 1, in
// a form ParseRate reads back: 50000000 → "50mbit", 1500000000 → "1.5gbit"; 0 → "unlimited".
func FormatRate(bps int64) string {
	if bps <= 0 {
		return "unlimited"
	}
	units := []struct {
		name string
		mult float64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}}
	for _, u := range units {
		if float64(bps) >= u.mult {
			return strconv.FormatFloat(float64(bps)/u.mult, 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(bps, 10) + "bit"
}

// DeriveSeed returns an independent seed for stream i of a base seed — one per direction and
// per client, so that two Links built from the same Config do not make the same decisions. The
// relay uses DeriveSeed(cfg.Seed, 2k) for client k's upstream Link and DeriveSeed(cfg.Seed,
// 2k+1) for its downstream Link; a simulator can do the same to reproduce a relay run.
func DeriveSeed(base int64, i uint64) int64 {
	return int64(mix64(uint64(base) ^ mix64(i+0x5851f42d4c957f2d)))
}

// TCPApplicable reports whether a TCPRelay (package relay) can apply everything in cfg. A TCP relay sees a byte
// stream, not packets: TCP below it repairs loss, reordering and duplication before the relay
// could show them, and flipping bits in the stream would break TLS instead of testing
// recovery. So only Delay, Jitter (without reordering, as for Links) and Rate (with QueueBytes
// or QueueDelay bounding the relay's own backlog) apply. If some field does not, why names it,
// for a benchmark report's "n/a".
func TCPApplicable(cfg Config) (ok bool, why string) {
	var na []string
	if cfg.Loss > 0 {
		na = append(na, "loss")
	}
	if cfg.Burst.Enabled() {
		na = append(na, "burst loss")
	}
	if cfg.Reorder > 0 {
		na = append(na, "reorder")
	}
	if cfg.Duplicate > 0 {
		na = append(na, "duplicate")
	}
	if cfg.Corrupt > 0 {
		na = append(na, "corrupt")
	}
	if len(cfg.Blackouts) > 0 {
		na = append(na, "blackouts")
	}
	if cfg.MaxSize > 0 {
		na = append(na, "max datagram size")
	}
	if len(na) == 0 {
		return true, ""
	}
	return false, strings.Join(na, ", ") + ": not applicable to a TCP byte stream"
}

// TCPSubset returns the part of cfg a TCPRelay applies: Delay, Jitter, Rate, QueueBytes,
// QueueDelay and Seed.
func TCPSubset(cfg Config) Config {
	return Config{
		Delay:      cfg.Delay,
		Jitter:     cfg.Jitter,
		Rate:       cfg.Rate,
		QueueBytes: cfg.QueueBytes,
		QueueDelay: cfg.QueueDelay,
		Seed:       cfg.Seed,
	}
}
