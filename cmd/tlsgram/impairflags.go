package main

import (
	"fmt"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// impairFlags are the relay's impairment flags, shared by "relay" and
// "demo". The same impairment applies to each direction, with its own random
// stream.
type impairFlags struct {
	loss, reorder, dup, corrupt probValue
	burst                       float64
	delay, jitter, reorderDelay durationValue
	queue                       durationValue
	rate                        string
	blackout                    string
	seed                        int64
}

func (o *impairFlags) register(f *cmdFlags) {
	f.Var(&o.loss, "loss", "drop this `fraction` of datagrams (0.02 or 2%) each way")
	f.Float64Var(&o.burst, "burst", 0, "make -loss bursty: mean `N` consecutive datagrams lost per burst (Gilbert model; ≥ 1)")
	f.Var(&o.reorder, "reorder", "hold back this `fraction` of datagrams so later ones overtake them")
	f.Var(&o.reorderDelay, "reorder-delay", "how long a reordered datagram is held back: a `duration` (default: delay+jitter, at least 1ms)")
	f.Var(&o.dup, "dup", "deliver this `fraction` of datagrams twice")
	f.Var(&o.corrupt, "corrupt", "flip bits in this `fraction` of datagrams")
	f.Var(&o.delay, "delay", "one-way `delay` added to every datagram, e.g. 10ms (the RTT grows by twice this)")
	f.Var(&o.jitter, "jitter", "vary each datagram's delay by up to ± this `duration` (never reorders)")
	f.StringVar(&o.rate, "rate", "", "bottleneck `rate` in bits per second, e.g. 50mbit, 800kbit, 1gbit")
	f.Var(&o.queue, "queue", "the bottleneck's queue, as the `duration` it takes to drain at -rate (default 100ms)")
	f.StringVar(&o.blackout, "blackout", "", "drop everything during these `windows`, e.g. 2s+500ms,10s+1s (from each client's first datagram)")
	f.Int64Var(&o.seed, "seed", 1, "`seed` of the random decisions: the same seed, the same losses")
}

// config turns the flags into one direction's impair.Config.
func (o *impairFlags) config() (impair.Config, error) {
	c := impair.Config{
		Loss:         float64(o.loss),
		Reorder:      float64(o.reorder),
		ReorderDelay: time.Duration(o.reorderDelay),
		Duplicate:    float64(o.dup),
		Corrupt:      float64(o.corrupt),
		Delay:        time.Duration(o.delay),
		Jitter:       time.Duration(o.jitter),
		Seed:         o.seed,
	}
	if o.burst != 0 {
		if o.burst < 1 {
			return c, usagef("invalid value %v for flag -burst: the mean burst length is at least 1 datagram", o.burst)
		}
		if o.loss == 0 {
			return c, usagef("-burst needs -loss: it says how the -loss fraction is spread into bursts")
		}
		g, err := impair.GilbertLoss(float64(o.loss), o.burst)
		if err != nil {
			return c, usagef("-loss %v -burst %v: %v", o.loss.String(), o.burst, err)
		}
		// GilbertLoss gives the whole average loss; Loss would add to it.
		c.Burst, c.Loss = g, 0
	}
	if o.rate != "" {
		r, err := impair.ParseRate(o.rate)
		if err != nil {
			return c, usagef("invalid value %q for flag -rate: %v", o.rate, err)
		}
		c.Rate = r
	}
	if o.queue != 0 {
		if c.Rate == 0 {
			return c, usagef("-queue needs -rate")
		}
		c.QueueDelay = time.Duration(o.queue)
	}
	if o.blackout != "" {
		b, err := impair.ParseBlackouts(o.blackout)
		if err != nil {
			return c, usagef("invalid value %q for flag -blackout: %v", o.blackout, err)
		}
		c.Blackouts = b
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c, nil
}

// describe is the impairment in words for the start-up line.
func describe(c impair.Config) string {
	if c.Passthrough() {
		return "no impairment"
	}
	return fmt.Sprint(c)
}
