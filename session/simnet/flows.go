package simnet

import (
	"bytes"
	"fmt"
	"math/rand"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/internal/impair"
	"github.com/tlsgram/tlsgram/session"
)

// Flow is one connection of a FlowsScenario: a one-way upload from its client.
type Flow struct {
	Config      *session.Config // nil: the defaults
	ClientBytes int
	Start       time.Duration // when the client dials, from the start of the run
	// AppRate, if positive, is how fast the client's application writes (bytes per second from
	// its handshake's end): an app-limited sender. Zero writes as fast as the connection takes.
	AppRate int
	// Pings, if positive, makes the flow a ping instead of an upload (ClientBytes is ignored):
	// once its handshake is done the client writes a PingSize-byte request (64 if zero), the
	// server echoes it, and the client writes the next request when the echo is all read, Pings
	// times — the bench's rr64, closed loop. FlowsResult.Pings records the round trips.
	Pings    int
	PingSize int
}

// Ping is one request/response of a ping flow: when the request was written (from the start of
// the run) and how long its echo took to be read.
type Ping struct {
	At, RTT time.Duration
}

// FlowsScenario runs several connections through one shared path: every client's datagrams go
// through the same Up link (and so the same bottleneck queue, when Up has a Rate) and every
// server's through the same Down link, as flows through one router. It measures how the
// congestion controllers share the path; it does not repeat Run's per-step invariants.
type FlowsScenario struct {
	Name     string
	Up, Down impair.Config // their Seed fields are overridden
	Flows    []Flow
	// Limit is the virtual time the whole run may take.
	Limit time.Duration
	// Sample, if positive, records every flow's delivered bytes every Sample (FlowsResult.Delivered).
	Sample time.Duration
	// ChangeAt, if positive, moves the path to UpAfter/DownAfter at that time, as a route change:
	// datagrams sent from then on take the new links, those in flight arrive by the old ones.
	ChangeAt           time.Duration
	UpAfter, DownAfter impair.Config
}

// FlowsResult describes a finished FlowsScenario.
type FlowsResult struct {
	Elapsed  time.Duration
	Done     []time.Duration // per flow: when its server had read everything
	Client   []session.Stats
	Up, Down impair.LinkStats
	// Delivered[k][i] is the bytes flow i's server had read at (k+1)·Sample.
	Delivered [][]int
	// Pings[i] are ping flow i's round trips, in order (nil for an upload).
	Pings [][]Ping
}

// Share returns each flow's share of the bytes the flows delivered between from and to (rounded
// to FlowsScenario.Sample), and the total delivered per second over that window.
func (r *FlowsResult) Share(sample, from, to time.Duration) (shares []float64, rate float64) {
	a, b := int(from/sample)-1, int(to/sample)-1
	if a < 0 || b >= len(r.Delivered) || b <= a {
		return nil, 0
	}
	total := 0
	got := make([]int, len(r.Delivered[b]))
	for i := range got {
		got[i] = r.Delivered[b][i] - r.Delivered[a][i]
		total += got[i]
	}
	shares = make([]float64, len(got))
	for i, g := range got {
		if total > 0 {
			shares[i] = float64(g) / float64(total)
		}
	}
	return shares, float64(total) / (to - from).Seconds()
}

type flowPair struct {
	ends              [2]*end
	cid               [2]uint64 // client's and server's connection IDs
	started, done     bool
	appStart, appNext time.Time // an app-limited client: when it began writing, when it writes next
	ping              *pinger   // nil for an upload
}

// pinger is a ping flow's application: the request outstanding and the round trips so far.
type pinger struct {
	size, count int
	sentAt      time.Time // when the outstanding request was written; zero when none is
	rtts        []Ping
}

// newPingFlow makes a ping flow's two ends: the server's stream after its handshake flight is
// the client's requests, echoed.
func newPingFlow(f Flow, rng *rand.Rand) *flowPair {
	size := f.PingSize
	if size <= 0 {
		size = 64
	}
	hs := simClientHello + simFinished
	p := &flowPair{ping: &pinger{size: size, count: f.Pings}}
	p.ends[0] = &end{sent: make([]byte, hs+f.Pings*size), appPaced: true}
	p.ends[1] = &end{sent: make([]byte, simServerFlight+f.Pings*size), appPaced: true}
	rng.Read(p.ends[0].sent)
	rng.Read(p.ends[1].sent[:simServerFlight])
	copy(p.ends[1].sent[simServerFlight:], p.ends[0].sent[hs:])
	return p
}

// pingStep runs a ping flow's applications after their appStep: the server echoes what it has
// read, and the client, once the outstanding echo is all read, records its round trip and
// writes the next request. Each writes in the same step, as an application woken by its read
// would, so the round trips measure the path and not the simulation's steps.
func (p *flowPair) pingStep(now, start time.Time, step func(k int) error) error {
	client, server, pg := p.ends[0], p.ends[1], p.ping
	hs := simClientHello + simFinished
	if server.c.HandshakeComplete() {
		if echo := min(len(server.sent), simServerFlight+max(len(server.in)-hs, 0)); echo > server.avail {
			server.allow(echo)
			if err := step(1); err != nil {
				return err
			}
		}
	}
	if !client.c.HandshakeComplete() {
		return nil
	}
	answered := max(len(client.in)-simServerFlight, 0) / pg.size
	if !pg.sentAt.IsZero() && answered > len(pg.rtts) {
		pg.rtts = append(pg.rtts, Ping{At: pg.sentAt.Sub(start), RTT: now.Sub(pg.sentAt)})
		pg.sentAt = time.Time{}
	}
	if pg.sentAt.IsZero() && len(pg.rtts) < pg.count {
		client.allow(hs + (len(pg.rtts)+1)*pg.size)
		pg.sentAt = now
		return step(0)
	}
	return nil
}

// RunFlows simulates s with the given seed. It fails if a flow does not deliver its bytes exactly
// within s.Limit.
func RunFlows(s FlowsScenario, seed int64) (FlowsResult, error) {
	var res FlowsResult
	start := time.Unix(1_700_000_000, 0)
	now := start
	rng := rand.New(rand.NewSource(seed))
	links := newLinks(s.Up, s.Down, seed, 1, start)
	var old [2]*impair.Link // the links before ChangeAt, draining
	changed := s.ChangeAt <= 0
	var packetKey [session.PacketKeyLen]byte
	rng.Read(packetKey[:])
	pairs := make([]*flowPair, len(s.Flows))
	byCID := map[uint64]*end{}
	for i, f := range s.Flows {
		cid := [2]uint64{rng.Uint64() | 1, rng.Uint64() | 1}
		var p *flowPair
		if f.Pings > 0 {
			p = newPingFlow(f, rng)
		} else {
			p = &flowPair{}
			p.ends[0] = &end{sent: make([]byte, simClientHello+simFinished+f.ClientBytes), appPaced: f.AppRate > 0}
			p.ends[1] = &end{sent: make([]byte, simServerFlight)}
			rng.Read(p.ends[0].sent)
			rng.Read(p.ends[1].sent)
		}
		p.cid = cid
		pairs[i] = p
	}
	res.Done = make([]time.Duration, len(s.Flows))
	buf := make([]byte, session.MaxDatagramSizeLimit)
	readBuf := make([]byte, 64<<10)
	deadline := start.Add(s.Limit)
	nextSample := start.Add(s.Sample)
	fail := func(format string, args ...any) (FlowsResult, error) {
		return res, fmt.Errorf("flows %s seed %d at t=%v: %s", s.Name, seed, now.Sub(start), fmt.Sprintf(format, args...))
	}
	for {
		if !changed && !now.Before(start.Add(s.ChangeAt)) {
			changed = true
			old = links
			links = newLinks(s.UpAfter, s.DownAfter, seed, 3, now)
		}
		// Dial the flows whose time has come; the server learns of its connection with the
		// client's first datagram, but is created now (its Initial DCID is agreed in advance).
		for i, p := range pairs {
			if p.started || now.Before(start.Add(s.Flows[i].Start)) {
				continue
			}
			p.started = true
			conf, initial := s.Flows[i].Config, rng.Uint64()|1
			if conf == nil {
				conf = &session.Config{}
			}
			// Each core's secrets come from the seed too, as in Run, so that a run replays
			// exactly (Config.Rand would otherwise be crypto/rand).
			clientConf, serverConf := *conf, *conf
			clientConf.Rand = rand.New(rand.NewSource(impair.DeriveSeed(seed, uint64(16+2*i))))
			serverConf.Rand = rand.New(rand.NewSource(impair.DeriveSeed(seed, uint64(17+2*i))))
			p.ends[0].c = session.NewClient(&clientConf, p.cid[0], initial, now)
			p.ends[1].c = session.NewServer(&serverConf, p.cid[1], p.cid[0], initial, now, false)
			p.ends[0].allow(simClientHello)
			byCID[p.cid[0]] = p.ends[0]
			byCID[p.cid[1]] = p.ends[1]
			byCID[initial] = p.ends[1] // the client's first datagrams, before it knows the server's CID
		}
		all := true
		for i, p := range pairs {
			if !p.started {
				all = false
				continue
			}
			if rate := s.Flows[i].AppRate; rate > 0 && p.ends[0].c.HandshakeComplete() {
				// The application has written AppRate bytes per second since the handshake.
				if p.appStart.IsZero() {
					p.appStart = now
				}
				e := p.ends[0]
				hs := simClientHello + simFinished
				// It writes whole 16 KiB records, as TLS would; writing the few bytes each
				// step allows would make as many tiny datagrams.
				const record = 16 << 10
				written := int(float64(rate)*now.Sub(p.appStart).Seconds()) / record * record
				e.allow(max(e.avail, min(len(e.sent), hs+written)))
				p.appNext = time.Time{}
				if e.avail < len(e.sent) {
					next := p.appStart.Add(time.Duration(float64(written+record) / float64(rate) * float64(time.Second)))
					p.appNext = next
					if !next.After(now) {
						p.appNext = now.Add(time.Microsecond) // rounding must not stop the clock
					}
				}
			}
			step := func(k int) error {
				readErr, err := p.ends[k].appStep(k == 0, now, packetKey[:], false, 16<<10, readBuf)
				if err == nil {
					err = readErr
				}
				if err != nil {
					return fmt.Errorf("flow %d end %d: %w", i, k, err)
				}
				return nil
			}
			for k := range p.ends {
				if err := step(k); err != nil {
					return fail("%v", err)
				}
			}
			if p.ping != nil {
				if err := p.pingStep(now, start, step); err != nil {
					return fail("%v", err)
				}
			}
			if !p.done && p.ends[1].eof {
				p.done = true
				res.Done[i] = now.Sub(start)
			}
			if !p.ends[0].c.Done() || !p.ends[1].c.Done() {
				all = false
			}
		}
		for _, p := range pairs {
			if !p.started {
				continue
			}
			for k, e := range p.ends {
				for {
					n, ok := e.c.PollDatagram(now, buf)
					if !ok {
						break
					}
					links[k].Send(now, buf[:n])
				}
			}
		}
		if all {
			break
		}
		for s.Sample > 0 && !nextSample.After(now) {
			row := make([]int, len(pairs))
			for i, p := range pairs {
				row[i] = len(p.ends[1].in)
			}
			res.Delivered = append(res.Delivered, row)
			nextSample = nextSample.Add(s.Sample)
		}

		next := time.Time{}
		earliest := func(t time.Time) {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		for i, p := range pairs {
			if !p.started {
				earliest(start.Add(s.Flows[i].Start))
				continue
			}
			earliest(p.ends[0].c.NextTimeout())
			earliest(p.ends[1].c.NextTimeout())
			earliest(p.appNext)
		}
		for _, l := range [4]*impair.Link{links[0], links[1], old[0], old[1]} {
			if l != nil {
				earliest(l.NextDelivery())
			}
		}
		if s.Sample > 0 {
			earliest(nextSample)
		}
		if next.IsZero() {
			return fail("deadlock: no timer armed and nothing in flight")
		}
		if next.After(deadline) {
			return fail("not finished within %v", s.Limit)
		}
		if next.After(now) {
			now = next
		}
		for _, l := range [4]*impair.Link{links[0], links[1], old[0], old[1]} {
			for l != nil {
				n, ok := l.Receive(now, buf)
				if !ok {
					break
				}
				cid, _, ok := header.PeekDstConnID(buf[:n])
				if e := byCID[cid]; ok && e != nil {
					e.c.HandleDatagram(now, buf[:n])
				}
			}
		}
		for _, p := range pairs {
			for _, e := range p.ends {
				if e.c == nil {
					continue
				}
				if t := e.c.NextTimeout(); !t.IsZero() && !t.After(now) {
					e.c.HandleTimeout(now)
				}
			}
		}
	}
	res.Elapsed = now.Sub(start)
	res.Up, res.Down = links[0].Stats(), links[1].Stats()
	for i, p := range pairs {
		res.Client = append(res.Client, p.ends[0].c.Stats())
		if !bytes.Equal(p.ends[0].sent, p.ends[1].in) {
			return fail("flow %d: client→server stream differs: sent %d bytes, server read %d", i, len(p.ends[0].sent), len(p.ends[1].in))
		}
		var pings []Ping
		if p.ping != nil {
			if !bytes.Equal(p.ends[1].sent, p.ends[0].in) {
				return fail("flow %d: server→client echo differs: sent %d bytes, client read %d", i, len(p.ends[1].sent), len(p.ends[0].in))
			}
			pings = p.ping.rtts
		}
		res.Pings = append(res.Pings, pings)
	}
	return res, nil
}
