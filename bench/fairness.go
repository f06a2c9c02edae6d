package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// FairnessPair is one fairness measurement: flow A starts, flow B joins Offset later, and both
// send bulk through one shared bottleneck.
type FairnessPair struct{ A, B string }

// FairnessPairs are the pairs the suite measures (issue 9): two tlsgram flows, and tlsgram's
// default controller against a CUBIC flow of its own and against quic-go.
var FairnessPairs = []FairnessPair{
	{"tlsgram", "tlsgram"},
	{"tlsgram", "tlsgram-cubic"},
	{"tlsgram-cubic", "tlsgram"},
	{"tlsgram", "quic-go"},
}

// FairnessCondition is the shared bottleneck: the rtt20-50mbit link.
var FairnessCondition = Condition{Name: "rtt20-50mbit-shared", Description: "two flows through one 20 ms RTT, 50 Mbit/s bottleneck with a 125 kB drop-tail queue",
	Up: Impairment{Delay: halfRTT20, RateBits: rate50M, QueueBytes: queue50M}, Down: Impairment{Delay: halfRTT20}}

// Fairness is the outcome of one pair: each flow's share of what both delivered while both were
// sending (after Warmup), and the link's utilisation then.
type Fairness struct {
	A, B           string
	ShareA, ShareB float64
	Utilisation    float64
	Err            string `json:",omitempty"`
}

// MeasureFairness runs a's and b's bulk senders through one shared bottleneck (cond's Up and
// Down, as one pair of impair.Links for both flows); b starts offset after a. Shares are counted
// from warmup after b started until dur after a started.
func MeasureFairness(ctx context.Context, a, b Contender, cond Condition, seed int64, dur, offset, warmup time.Duration) (Fairness, error) {
	res := Fairness{A: a.Name(), B: b.Name()}
	flows := []Contender{a, b}
	var sinks []*streamSink
	var handlers []func(net.Conn)
	for range flows {
		sink := &streamSink{done: make(chan struct{})}
		sinks = append(sinks, sink)
		handlers = append(handlers, sink.run)
	}
	sp, err := openSharedPath(flows, cond, seed, handlers)
	if err != nil {
		return res, err
	}
	defer sp.Close()
	r := sp.relay

	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(flows))
	var connMu sync.Mutex // guards conns
	var conns []net.Conn
	closeConns := func() {
		connMu.Lock()
		defer connMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	for i := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				select {
				case <-time.After(offset):
				case <-ctx.Done():
					return
				}
			}
			conn, err := sp.dial(ctx, i)
			if err != nil {
				errs[i] = err
				return
			}
			connMu.Lock()
			conns = append(conns, conn)
			connMu.Unlock()
			writeBulk(conn, stop)
		}()
	}
	from := start.Add(offset + warmup)
	end := start.Add(dur)
	var got0 [2]int64
	select {
	case <-time.After(time.Until(from)):
	case <-ctx.Done():
	}
	got0[0], got0[1] = sinks[0].bytes.Load(), sinks[1].bytes.Load()
	select {
	case <-time.After(time.Until(end)):
	case <-ctx.Done():
	}
	d0, d1 := sinks[0].bytes.Load()-got0[0], sinks[1].bytes.Load()-got0[1]
	close(stop)
	closeConns() // unblocks writers stuck on a full window
	wg.Wait()
	closeConns() // a dial that completed meanwhile
	r.Close()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	total := d0 + d1
	if total <= 0 {
		return res, errors.New("nothing delivered while both flows were sending")
	}
	res.ShareA, res.ShareB = float64(d0)/float64(total), float64(d1)/float64(total)
	if rate := cond.Up.RateBits; rate > 0 {
		res.Utilisation = float64(total) * 8 / end.Sub(from).Seconds() / float64(rate)
	}
	return res, nil
}

// writeBulk writes bulk frames (see streamSink) to conn until stop is closed or a Write fails.
func writeBulk(conn net.Conn, stop <-chan struct{}) {
	buf := make([]byte, bulkFrame)
	for seq := uint64(0); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		binary.BigEndian.PutUint64(buf[1:9], seq)
		buf[len(buf)-1] = byte(seq)
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

// sharedPath is the set-up of a measurement of several flows through one bottleneck: each
// flow's contender listens, the first conn each listener accepts runs that flow's handler, and
// one sharedRelay carries all the flows through the same pair of links.
type sharedPath struct {
	flows []Contender
	lns   []Listener
	relay *sharedRelay
}

// openSharedPath starts flows' listeners (reliable UDP contenders only: the relay forwards
// datagrams) and the relay in front of them, with cond's links seeded from seed.
func openSharedPath(flows []Contender, cond Condition, seed int64, handlers []func(net.Conn)) (*sharedPath, error) {
	up, err := ImpairConfig(cond.Up, seed)
	if err != nil {
		return nil, err
	}
	down, err := ImpairConfig(cond.Down, seed+1)
	if err != nil {
		return nil, err
	}
	sp := &sharedPath{flows: flows}
	var targets []string
	for i, c := range flows {
		if ok, why := sharedApplicable(c, cond); !ok {
			sp.Close()
			return nil, fmt.Errorf("%s: %s", c.Name(), why)
		}
		ln, err := c.Listen("127.0.0.1:0")
		if err != nil {
			sp.Close()
			return nil, err
		}
		sp.lns = append(sp.lns, ln)
		handler := handlers[i]
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			handler(conn)
		}()
		targets = append(targets, ln.Addr().String())
	}
	r, err := newSharedRelay(up, down, targets)
	if err != nil {
		sp.Close()
		return nil, err
	}
	sp.relay = r
	return sp, nil
}

// sharedApplicable reports whether contender c can be measured through a sharedRelay on cond.
func sharedApplicable(c Contender, cond Condition) (bool, string) {
	if !c.Reliable() || c.Network() != "udp" {
		return false, "n/a: needs a reliable UDP contender (the shared relay forwards datagrams of reliable flows)"
	}
	return cond.ApplicableTo(c.Network())
}

// dial connects flow i through the relay.
func (sp *sharedPath) dial(ctx context.Context, i int) (net.Conn, error) {
	return sp.flows[i].Dial(ctx, sp.relay.fronts[i].LocalAddr().String())
}

// Close stops the relay and the listeners.
func (sp *sharedPath) Close() {
	if sp.relay != nil {
		sp.relay.Close()
	}
	for _, ln := range sp.lns {
		ln.Close()
	}
}

// sharedRelay forwards several flows, each from its own front socket to its own target, through
// one pair of impair.Links: a bottleneck they share, as flows through one router. A datagram
// carries its flow's index in a leading byte while inside the Links (one byte in 1200: the rate
// accounting is 0.1% pessimistic).
type sharedRelay struct {
	fronts    []*net.UDPConn // what each flow's client dials
	upstreams []*net.UDPConn // connected to each flow's target
	clients   []atomic.Pointer[netip.AddrPort]

	mu       sync.Mutex // guards up, down and closed
	up, down *impair.Link
	closed   bool

	kick chan struct{}
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newSharedRelay(up, down impair.Config, targets []string) (*sharedRelay, error) {
	now := time.Now()
	r := &sharedRelay{up: impair.NewLink(up, now), down: impair.NewLink(down, now),
		clients: make([]atomic.Pointer[netip.AddrPort], len(targets)),
		kick:    make(chan struct{}, 1), done: make(chan struct{})}
	for _, t := range targets {
		front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			r.Close()
			return nil, err
		}
		r.fronts = append(r.fronts, front)
		ta, err := net.ResolveUDPAddr("udp", t)
		if err != nil {
			r.Close()
			return nil, err
		}
		upstream, err := net.DialUDP("udp", nil, ta)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.upstreams = append(r.upstreams, upstream)
		for _, c := range []*net.UDPConn{front, upstream} {
			c.SetReadBuffer(4 << 20)
			c.SetWriteBuffer(4 << 20)
		}
	}
	for i := range targets {
		r.wg.Add(2)
		go r.read(i, true)
		go r.read(i, false)
	}
	r.wg.Add(1)
	go r.schedule()
	return r, nil
}

// read forwards flow i's datagrams: from its client into the up Link (fromClient), or from its
// target into the down Link.
func (r *sharedRelay) read(i int, fromClient bool) {
	defer r.wg.Done()
	buf := make([]byte, 1+maxUDP)
	for {
		var n int
		var err error
		if fromClient {
			var from netip.AddrPort
			n, from, err = r.fronts[i].ReadFromUDPAddrPort(buf[1:])
			if err == nil {
				r.clients[i].Store(&from)
			}
		} else {
			n, err = r.upstreams[i].Read(buf[1:])
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		buf[0] = byte(i)
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		if fromClient {
			r.up.Send(time.Now(), buf[:1+n])
		} else {
			r.down.Send(time.Now(), buf[:1+n])
		}
		r.mu.Unlock()
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

const maxUDP = 1 << 16

// schedule delivers what the Links have due and sleeps until the next delivery or a kick.
func (r *sharedRelay) schedule() {
	defer r.wg.Done()
	buf := make([]byte, 1+maxUDP)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		now := time.Now()
		for _, d := range [2]struct {
			l        *impair.Link
			toTarget bool
		}{{r.up, true}, {r.down, false}} {
			for {
				n, ok := d.l.Receive(now, buf)
				if !ok {
					break
				}
				if n < 1 || int(buf[0]) >= len(r.fronts) {
					continue
				}
				i := int(buf[0])
				if d.toTarget {
					r.upstreams[i].Write(buf[1:n])
				} else if c := r.clients[i].Load(); c != nil {
					r.fronts[i].WriteToUDPAddrPort(buf[1:n], *c)
				}
			}
		}
		next := time.Time{}
		for _, t := range []time.Time{r.up.NextDelivery(), r.down.NextDelivery()} {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		r.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-r.kick:
			if !timer.Stop() {
				<-timer.C
			}
		case <-r.done:
			return
		}
	}
}

// Close stops the relay and waits for its goroutines.
func (r *sharedRelay) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.done)
		for _, c := range append(append([]*net.UDPConn(nil), r.fronts...), r.upstreams...) {
			c.Close()
		}
		r.wg.Wait()
	})
	return nil
}

// RunFairness measures every pair of FairnessPairs whose contenders are registered, reps times,
// and returns the median shares of each pair (by B's share).
func RunFairness(ctx context.Context, reps int, dur time.Duration, seed int64, log io.Writer) []Fairness {
	var out []Fairness
	for _, p := range FairnessPairs {
		a, okA := Lookup(p.A)
		b, okB := Lookup(p.B)
		if !okA || !okB {
			continue
		}
		var runs []Fairness
		for rep := range reps {
			f, err := MeasureFairness(ctx, a, b, FairnessCondition, seed+int64(rep), dur, dur/6, dur/6)
			if err != nil {
				f.Err = err.Error()
			}
			if log != nil {
				fmt.Fprintf(log, "fairness rep %d/%d %s + %s: %.0f%% / %.0f%%, link %.0f%% %s\n", rep+1, reps, p.A, p.B, 100*f.ShareA, 100*f.ShareB, 100*f.Utilisation, f.Err)
			}
			runs = append(runs, f)
		}
		out = append(out, medianFairness(runs))
	}
	return out
}

func medianFairness(runs []Fairness) Fairness {
	ok := runs[:0:0]
	for _, f := range runs {
		if f.Err == "" {
			ok = append(ok, f)
		}
	}
	if len(ok) == 0 {
		return runs[0]
	}
	for i := range ok {
		for j := i + 1; j < len(ok); j++ {
			if ok[j].ShareB < ok[i].ShareB {
				ok[i], ok[j] = ok[j], ok[i]
			}
		}
	}
	return ok[len(ok)/2]
}

// WriteFairness appends the fairness table to the report in Markdown.
func WriteFairness(w io.Writer, fs []Fairness) error {
	if len(fs) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n## Fairness: two flows through one bottleneck\n\n%s. Flow B joins after a sixth of the run; shares of what both delivered from a sixth later until the end (medians over the repetitions, by B's share).\n\n", FairnessCondition.Description)
	fmt.Fprintln(w, "| flow A | flow B | A's share | B's share | link used |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, f := range fs {
		if f.Err != "" {
			fmt.Fprintf(w, "| %s | %s | error: %s | | |\n", f.A, f.B, f.Err)
			continue
		}
		_, err := fmt.Fprintf(w, "| %s | %s | %.0f%% | %.0f%% | %.0f%% |\n", f.A, f.B, 100*f.ShareA, 100*f.ShareB, 100*f.Utilisation)
		if err != nil {
			return err
		}
	}
	return nil
}
