package bench

import (
	"fmt"
	"io"

	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

func init() { relayStarter = startRelay }

// ImpairConfig translates one direction of a condition into the relay's
// model. seed makes every measurement's decisions reproducible; the relay
// derives a separate stream per client and direction from it.
func ImpairConfig(i Impairment, seed int64) (impair.Config, error) {
	c := impair.Config{
		Loss:        i.Loss,
		Reorder:     i.Reorder,
		Duplicate:   i.Duplicate,
		Corrupt:     i.Corrupt,
		Delay:       i.Delay,
		Jitter:      i.Jitter,
		Rate:        i.RateBits,
		QueueBytes:  i.QueueBytes,
		PoliceRate:  i.PoliceBits,
		PoliceBurst: i.PoliceBurst,
		Seed:        seed,
	}
	if i.BurstLoss > 0 {
		g, err := impair.GilbertLoss(i.BurstLoss, i.BurstLen)
		if err != nil {
			return c, err
		}
		c.Burst = g
	}
	return c, c.Validate()
}

// startRelay puts an relay.Relay (UDP) or relay.TCPRelay in front of
// target and returns the address clients dial.
func startRelay(network, target string, cond Condition, seed int64) (string, io.Closer, error) {
	up, err := ImpairConfig(cond.Up, seed)
	if err != nil {
		return "", nil, fmt.Errorf("condition %s up: %w", cond.Name, err)
	}
	down, err := ImpairConfig(cond.Down, seed+1)
	if err != nil {
		return "", nil, fmt.Errorf("condition %s down: %w", cond.Name, err)
	}
	switch network {
	case "udp":
		r, err := relay.NewRelay("127.0.0.1:0", target, up, down)
		if err != nil {
			return "", nil, err
		}
		if err := r.Start(); err != nil {
			r.Close()
			return "", nil, err
		}
		return r.Addr().String(), relayCloser{r, func() any { return r.Stats() }}, nil
	case "tcp":
		for _, c := range []impair.Config{up, down} {
			if ok, why := impair.TCPApplicable(c); !ok {
				return "", nil, fmt.Errorf("n/a: %s", why)
			}
		}
		r, err := relay.NewTCPRelay("127.0.0.1:0", target, up, down)
		if err != nil {
			return "", nil, err
		}
		if err := r.Start(); err != nil {
			r.Close()
			return "", nil, err
		}
		return r.Addr().String(), relayCloser{r, func() any { return r.Stats() }}, nil
	}
	return "", nil, fmt.Errorf("no relay for network %q", network)
}

// relayCloser closes a relay and can report its counters.
type relayCloser struct {
	io.Closer
	stats func() any
}
