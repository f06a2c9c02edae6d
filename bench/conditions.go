package bench

import (
	"fmt"
	"strings"
	"time"
)

// Impairment describes one direction of an impaired link. It mirrors the
// knobs of internal/impair.Config; relay.go is the only file that
// translates it, so this table stays readable on its own.
type Impairment struct {
	Delay  time.Duration `json:"delay_ns,omitempty"`
	Jitter time.Duration `json:"jitter_ns,omitempty"`
	// Loss is the probability that a datagram is dropped at random.
	Loss float64 `json:"loss,omitempty"`
	// BurstLoss, when > 0, makes losses bursty (Gilbert–Elliott): the
	// average loss rate is BurstLoss and a burst lasts BurstLen datagrams
	// on average.
	BurstLoss float64 `json:"burst_loss,omitempty"`
	BurstLen  float64 `json:"burst_len,omitempty"`
	// Reorder is the probability that a datagram is held back behind the
	// ones sent after it.
	Reorder   float64 `json:"reorder,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Corrupt   float64 `json:"corrupt,omitempty"`
	// RateBits is the bottleneck rate in bit/s (0: unlimited) and
	// QueueBytes the drop-tail queue in front of it.
	RateBits   int64 `json:"rate_bits,omitempty"`
	QueueBytes int   `json:"queue_bytes,omitempty"`
	// PoliceBits is a policer's rate in bit/s (0: none): a token bucket of
	// PoliceBurst bytes (0: 10 ms at the rate) that drops what exceeds it,
	// with no queue.
	PoliceBits  int64 `json:"police_bits,omitempty"`
	PoliceBurst int   `json:"police_burst,omitempty"`
}

// IsZero reports whether the impairment does nothing.
func (i Impairment) IsZero() bool { return i == Impairment{} }

// DropsOrReorders reports whether the impairment needs a datagram
// transport: a TCP relay can delay and rate-limit a byte stream but cannot
// drop, reorder, duplicate or corrupt segments (the kernel's TCP would
// simply not see them), so those conditions are "n/a" for TCP contenders.
func (i Impairment) DropsOrReorders() bool {
	return i.Loss > 0 || i.BurstLoss > 0 || i.Reorder > 0 || i.Duplicate > 0 || i.Corrupt > 0 || i.PoliceBits > 0
}

// Condition is one link on which every measurement is repeated.
type Condition struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Up          Impairment `json:"up"`   // client → server
	Down        Impairment `json:"down"` // server → client
	// Optional conditions run only when named with -conditions.
	Optional bool `json:"optional,omitempty"`
}

// Clean reports whether no relay is needed.
func (c Condition) Clean() bool { return c.Up.IsZero() && c.Down.IsZero() }

// RTT is the round-trip time the relay adds (without jitter or queueing).
func (c Condition) RTT() time.Duration { return c.Up.Delay + c.Down.Delay }

// ApplicableTo reports whether the condition can be applied to a contender
// on network ("udp" or "tcp"), and why not.
func (c Condition) ApplicableTo(network string) (bool, string) {
	if network == "tcp" && (c.Up.DropsOrReorders() || c.Down.DropsOrReorders()) {
		return false, "n/a: TCP relay cannot drop or reorder segments"
	}
	return true, ""
}

func symmetric(i Impairment) (Impairment, Impairment) { return i, i }

func cond(name, desc string, i Impairment) Condition {
	up, down := symmetric(i)
	return Condition{Name: name, Description: desc, Up: up, Down: down}
}

const (
	halfRTT20 = 10 * time.Millisecond
	rate50M   = 50_000_000
	// One bandwidth-delay product at 50 Mbit/s and 20 ms: a queue the size
	// a well-provisioned router would have; a sender without congestion
	// control overflows it and loses what it cannot hold.
	queue50M = rate50M / 8 * 20 / 1000
)

// Conditions is the table of links, in report order. Impairments are
// symmetric (the same in each direction) unless stated.
var Conditions = []Condition{
	cond("clean", "loopback, no relay", Impairment{}),
	cond("rtt20", "20 ms RTT", Impairment{Delay: halfRTT20}),
	cond("rtt20-loss1", "20 ms RTT, 1% random loss each way", Impairment{Delay: halfRTT20, Loss: 0.01}),
	cond("rtt20-loss1-reord1", "20 ms RTT, 1% loss, 1% reordering each way",
		Impairment{Delay: halfRTT20, Loss: 0.01, Reorder: 0.01}),
	cond("rtt20-loss5", "20 ms RTT, 5% random loss each way", Impairment{Delay: halfRTT20, Loss: 0.05}),
	cond("rtt20-50mbit", "20 ms RTT, 50 Mbit/s bottleneck, 125 kB drop-tail queue",
		Impairment{Delay: halfRTT20, RateBits: rate50M, QueueBytes: queue50M}),
	cond("rtt20-police50", "20 ms RTT, 50 Mbit/s policer (token bucket, 10 ms burst, drops above the rate, no queue)",
		Impairment{Delay: halfRTT20, PoliceBits: rate50M}),
	{
		Name:        "rtt20-burst1",
		Description: "20 ms RTT, 1% bursty loss (mean burst 4 datagrams) each way",
		Up:          Impairment{Delay: halfRTT20, BurstLoss: 0.01, BurstLen: 4},
		Down:        Impairment{Delay: halfRTT20, BurstLoss: 0.01, BurstLen: 4},
		Optional:    true,
	},
	{
		Name:        "rtt20-dup-corrupt",
		Description: "20 ms RTT, 1% duplication, 0.1% corruption, 2 ms jitter each way",
		Up:          Impairment{Delay: halfRTT20, Jitter: 2 * time.Millisecond, Duplicate: 0.01, Corrupt: 0.001},
		Down:        Impairment{Delay: halfRTT20, Jitter: 2 * time.Millisecond, Duplicate: 0.01, Corrupt: 0.001},
		Optional:    true,
	},
}

// LookupCondition finds a condition by name.
func LookupCondition(name string) (Condition, error) {
	for _, c := range Conditions {
		if c.Name == name {
			return c, nil
		}
	}
	names := make([]string, len(Conditions))
	for i, c := range Conditions {
		names[i] = c.Name
	}
	return Condition{}, fmt.Errorf("unknown condition %q (have %s)", name, strings.Join(names, ", "))
}
