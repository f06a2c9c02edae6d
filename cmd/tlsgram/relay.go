package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/internal/impair/relay"
)

const relayDescription = `
Forwards UDP datagrams between clients and a server and impairs them on the
way, in user space: loss (random or bursty), reordering, duplication,
corruption, delay and jitter, a rate limit with a queue, blackouts. It stands
in for netem where that is not available, and it is the same code
(internal/impair/relay) the benchmark suite uses.

Point clients at -listen; the relay forwards to -to. Each client gets its own
upstream socket (the server sees one address per client, as behind a NAT)
and its own random streams, derived from -seed. The impairment applies to
each direction separately: -loss 2% loses 2% of the datagrams each way.

Runs until interrupted, then prints its counters on stderr.`

func runRelay(ctx context.Context, e *env, name string, args []string) error {
	f := newFlags(e, name, "-listen ADDR -to ADDR [-loss P] [-burst N] [-reorder P] [-dup P] [-corrupt P] [-delay D] [-jitter D] [-rate R] [-seed N]",
		relayDescription, true)
	listen := f.String("listen", "127.0.0.1:4434", "UDP `address` clients send to (port 0: any free port)")
	to := f.String("to", "", "UDP `address` of the server to forward to (required)")
	var imp impairFlags
	imp.register(f)
	f.Lookup("stats").Usage = "print the counters every 10s too, not only at the end"
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (see '%s -h')", pos[0], name)
	}
	if *to == "" {
		return usagef("-to ADDR is required: the server to forward to (see '%s -h')", name)
	}
	if err := checkAddr("-listen", *listen); err != nil {
		return err
	}
	if err := checkAddr("-to", *to); err != nil {
		return err
	}
	cfg, err := imp.config()
	if err != nil {
		return err
	}
	r, err := relay.NewRelay(*listen, *to, cfg, cfg)
	if err != nil {
		return fmt.Errorf("cannot relay from %s to %s: %w", *listen, *to, err)
	}
	if err := r.Start(); err != nil {
		r.Close()
		return err
	}
	fmt.Fprintf(e.stderr, "%s: listening on %s, forwarding to %s (%s, each way)\n", name, r.Addr(), *to, describe(cfg))
	st := r.Stats()
	e.log.Debug("relay started", "listen", r.Addr(), "target", *to, "impairment", cfg.String(),
		"rcvbuf", st.ReadBuffer, "sndbuf", st.WriteBuffer)

	prog := startProgress(f.progressMode(false), time.Duration(f.interval), e.stderr, func() progressSample {
		st := r.Stats()
		return progressSample{
			labels:   [2]string{"up", "down"},
			sent:     int64(st.Up.DeliveredBytes),
			received: int64(st.Down.DeliveredBytes),
			sessions: st.Clients, server: true, unit: "client",
			extra: fmt.Sprintf("dropped %d", st.Up.Dropped()+st.Down.Dropped()),
		}
	})
	var tick <-chan time.Time
	if f.stats {
		// With -stats the counters also appear periodically, for logs of
		// long runs where no progress line is drawn.
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick:
			var b strings.Builder
			printRelayStats(&b, name, r.Stats())
			prog.Print(b.String())
		}
	}
	prog.Stop()
	r.Close()
	printRelayStats(e.stderr, name, r.Stats())
	return nil
}

func printRelayStats(w io.Writer, name string, st relay.RelayStats) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s in total, %d now", name, plural(int(st.ClientsTotal), "client"), st.Clients)
	if st.Rejected > 0 {
		fmt.Fprintf(&b, ", %d datagrams rejected (too many clients)", st.Rejected)
	}
	if st.ReadErrors+st.WriteErrors > 0 {
		fmt.Fprintf(&b, ", socket errors: %d read, %d write", st.ReadErrors, st.WriteErrors)
	}
	b.WriteString("\n")
	writeLinkStats(&b, "up   (client → server)", st.Up)
	writeLinkStats(&b, "down (server → client)", st.Down)
	io.WriteString(w, b.String())
}

func writeLinkStats(b *strings.Builder, dir string, s impair.LinkStats) {
	fmt.Fprintf(b, "  %s: %d datagrams (%s) in, %d delivered (%s)", dir, s.Sent, formatBytes(int64(s.SentBytes)),
		s.Delivered, formatBytes(int64(s.DeliveredBytes)))
	dropped := s.Dropped()
	fmt.Fprintf(b, ", dropped %d", dropped)
	if dropped > 0 && s.Sent > 0 {
		var why []string
		for _, x := range []struct {
			n    uint64
			name string
		}{{s.LostRandom, "random"}, {s.LostBurst, "burst"}, {s.LostBlackout, "blackout"}, {s.QueueDrops, "queue full"}, {s.LimitDrops, "limit"}} {
			if x.n > 0 {
				why = append(why, fmt.Sprintf("%s %d", x.name, x.n))
			}
		}
		fmt.Fprintf(b, " (%.2f%%: %s)", 100*float64(dropped)/float64(s.Sent), strings.Join(why, ", "))
	}
	fmt.Fprintf(b, ", reordered %d, duplicated %d, corrupted %d", s.Reordered, s.Duplicated, s.Corrupted)
	if s.Queued > 0 {
		fmt.Fprintf(b, ", %d discarded in flight", s.Queued)
	}
	b.WriteString("\n")
}
