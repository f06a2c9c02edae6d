package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/internal/impair"
)

// Relay defaults, used where RelayOptions leaves a field zero.
const (
	// DefaultIdleTimeout is how long a Relay remembers a silent client. Like a NAT binding: a
	// client that speaks again after it was forgotten gets a new upstream socket, so the target
	// sees a new source address. Keep it above the keep-alive interval of what you relay.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxClients bounds the clients a Relay tracks at once.
	DefaultMaxClients = 1024
	// DefaultSocketBuffer is the SO_RCVBUF and SO_SNDBUF a Relay asks for on each socket. The
	// kernel caps it at net.core.rmem_max and wmem_max.
	DefaultSocketBuffer = 4 << 20
)

// maxDatagram is the largest UDP payload (65535 minus the 8-byte UDP header, rounded up: IPv6
// jumbograms aside, nothing larger arrives).
const maxDatagram = 1 << 16

// RelayOptions tunes a Relay. The zero value gives the defaults.
type RelayOptions struct {
	// IdleTimeout: a client with no datagram in either direction for this long is forgotten,
	// its upstream socket closed and its datagrams in flight discarded. Default
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxClients bounds the clients tracked at once; datagrams from further clients are dropped
	// and counted in RelayStats.Rejected. Default DefaultMaxClients.
	MaxClients int
	// SocketBuffer is the receive and send buffer size asked for on every socket. Default
	// DefaultSocketBuffer.
	SocketBuffer int
}

// RelayStats is a snapshot of a Relay's counters.
type RelayStats struct {
	// Up (client → target) and Down (target → client) total the Links of every client the
	// Relay has had, current and forgotten. Queued counts current clients only: the copies of a
	// forgotten client are discarded.
	Up, Down impair.LinkStats
	// Clients is the number of clients tracked now; ClientsTotal the number ever tracked.
	Clients      int
	ClientsTotal uint64
	// Rejected counts datagrams dropped because MaxClients clients were tracked, or because the
	// upstream socket for a new client could not be opened.
	Rejected uint64
	// ReadErrors and WriteErrors count socket errors that did not stop the Relay (an ICMP port
	// unreachable from a target that is not listening shows up as a read error).
	ReadErrors, WriteErrors uint64
	// ReadBuffer and WriteBuffer are SO_RCVBUF and SO_SNDBUF of the listening socket as the
	// kernel reports them (Linux reports twice what it grants for payload); 0 if unknown.
	ReadBuffer, WriteBuffer int
	// MeanLate and MaxLate say how much later than the model's delivery time the relay wrote
	// datagrams out. Go's timers wake with about 1 ms of resolution on an idle Linux process
	// (the netpoller sleeps in whole milliseconds), so delayed datagrams are typically up to a
	// millisecond late; undelayed ones are written by the goroutine that read them, at once.
	MeanLate, MaxLate time.Duration
}

// Relay is a UDP relay on real sockets that impairs traffic with the model of [Link]: it listens
// on one address and forwards each client's datagrams to one target, and the target's answers
// back to the client.
//
// Each distinct client address gets its own upstream socket (so the target sees one source
// address per client, as behind a NAT) and its own pair of Links: client k (counting from 0 in
// order of first datagram) uses the up Config with Seed DeriveSeed(up.Seed, 2k) and the down
// Config with Seed DeriveSeed(down.Seed, 2k+1). Both Links start at the client's first datagram,
// so Blackouts are relative to it. A datagram due for delivery as soon as it arrives (no delay, no
// rate limit backlog) is forwarded by the goroutine that read it; the rest wait for a single
// timer-driven scheduler goroutine. Decisions are seeded, but which datagram is the i-th one the
// Link sees depends on real timing, and so do the delivery times.
//
// A Relay runs one goroutine reading from clients, one scheduler, and one reader per client's
// upstream socket. All its methods are safe for concurrent use.
type Relay struct {
	conn     *net.UDPConn // listening socket, also used to answer clients
	target   *net.UDPAddr
	up, down impair.Config
	opts     RelayOptions
	epoch    time.Time // reference for relayClient.lastSeen
	rdBuf    int       // SO_RCVBUF of conn
	wrBuf    int       // SO_SNDBUF of conn

	done chan struct{} // closed by Close
	kick chan struct{} // 1-slot: a wake-up earlier than the armed timer was scheduled
	wg   sync.WaitGroup

	readErrors  atomic.Uint64
	writeErrors atomic.Uint64
	rejected    atomic.Uint64
	lateSum     atomic.Int64 // nanoseconds, over lateCount deliveries
	lateCount   atomic.Int64
	lateMax     atomic.Int64

	// mu guards the fields below and direction.scheduled. Lock order: mu may be held while
	// taking a direction's mu, never the other way round.
	mu       sync.Mutex
	closed   bool
	serving  bool
	clients  map[netip.AddrPort]*relayClient
	nclients uint64              // clients ever tracked: the index of the next one
	retired  [2]impair.LinkStats // totals of forgotten clients: [0] up, [1] down
	wakes    []wake              // min-heap by at: when a direction next has something due
	armed    time.Time           // when the scheduler will look at wakes next
}

type relayClient struct {
	addr     netip.AddrPort
	upstream *net.UDPConn // connected to the target
	lastSeen atomic.Int64 // nanoseconds since Relay.epoch of the latest datagram either way
	gone     atomic.Bool  // forgotten (idle) or relay closed
	up, down direction
}

// direction is one Link of a client with where its deliveries go.
type direction struct {
	c        *relayClient
	toTarget bool

	// mu guards link and closed. It is held while delivering, so that the datagrams of one
	// direction leave in the order the Link hands them out even when the reader and the
	// scheduler both deliver.
	mu     sync.Mutex
	link   *impair.Link
	closed bool

	scheduled time.Time // guarded by Relay.mu: the live entry for this direction in wakes
}

type wake struct {
	at time.Time
	d  *direction
}

// NewRelay is NewRelayOptions with the default options.
func NewRelay(listen, target string, up, down impair.Config) (*Relay, error) {
	return NewRelayOptions(listen, target, up, down, RelayOptions{})
}

// NewRelayOptions binds a UDP socket to listen (e.g. "127.0.0.1:0"; see Addr for the port)
// and returns a Relay that will forward to target, impairing client → target traffic with up and
// target → client traffic with down. Nothing is read until Start or Serve.
func NewRelayOptions(listen, target string, up, down impair.Config, opts RelayOptions) (*Relay, error) {
	if err := up.Validate(); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if err := down.Validate(); err != nil {
		return nil, fmt.Errorf("down: %w", err)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.SocketBuffer <= 0 {
		opts.SocketBuffer = DefaultSocketBuffer
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("relay: target: %w", err)
	}
	laddr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen address: %w", err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	setSocketBuffers(conn, opts.SocketBuffer)
	r := &Relay{
		conn:    conn,
		target:  taddr,
		up:      up,
		down:    down,
		opts:    opts,
		epoch:   time.Now(),
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		clients: make(map[netip.AddrPort]*relayClient),
	}
	r.rdBuf, r.wrBuf = socketBuffers(conn)
	return r, nil
}

// Addr returns the address clients should send to.
func (r *Relay) Addr() net.Addr { return r.conn.LocalAddr() }

// Start starts the relay in the background. It fails if the Relay is closed or already running.
func (r *Relay) Start() error {
	if err := r.begin(); err != nil {
		return err
	}
	go func() {
		defer r.wg.Done()
		r.readClients()
	}()
	return nil
}

// Serve runs the relay in the calling goroutine until Close, then returns nil. It fails at
// once if the Relay is closed or already running.
func (r *Relay) Serve() error {
	if err := r.begin(); err != nil {
		return err
	}
	defer r.wg.Done()
	r.readClients()
	return nil
}

// begin starts the scheduler and accounts for the client reader the caller is about to run.
func (r *Relay) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	if r.serving {
		return errors.New("relay: already running")
	}
	r.serving = true
	r.wg.Add(2)
	go r.runScheduler()
	return nil
}

// Close stops the relay: it closes every socket, discards the datagrams in flight and waits for
// the Relay's goroutines to end. It returns promptly and may be called more than once.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	clients := make([]*relayClient, 0, len(r.clients))
	for _, c := range r.clients {
		c.gone.Store(true)
		clients = append(clients, c)
	}
	r.mu.Unlock()

	close(r.done)
	err := r.conn.Close()
	for _, c := range clients {
		c.upstream.Close()
	}
	r.wg.Wait()
	return err
}

// Stats returns a snapshot of the Relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := RelayStats{
		Up:           r.retired[0],
		Down:         r.retired[1],
		Clients:      len(r.clients),
		ClientsTotal: r.nclients,
		Rejected:     r.rejected.Load(),
		ReadErrors:   r.readErrors.Load(),
		WriteErrors:  r.writeErrors.Load(),
		ReadBuffer:   r.rdBuf,
		WriteBuffer:  r.wrBuf,
		MaxLate:      time.Duration(r.lateMax.Load()),
	}
	if n := r.lateCount.Load(); n > 0 {
		s.MeanLate = time.Duration(r.lateSum.Load() / n)
	}
	for _, c := range r.clients {
		s.Up.Add(c.up.stats())
		s.Down.Add(c.down.stats())
	}
	return s
}

func (d *direction) stats() impair.LinkStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Stats()
}

// readClients reads datagrams from clients until the listening socket is closed.
func (r *Relay) readClients() {
	buf := make([]byte, maxDatagram)
	var last *relayClient // most datagrams come from the same client as the previous one
	for {
		n, addr, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.readErrors.Add(1)
			continue
		}
		now := time.Now()
		c := last
		if c == nil || c.addr != addr || c.gone.Load() {
			if c = r.client(addr, now); c == nil {
				continue
			}
			last = c
		}
		c.lastSeen.Store(int64(now.Sub(r.epoch)))
		r.forward(&c.up, now, buf[:n], buf)
	}
}

// readUpstream reads the target's answers to one client until its socket is closed.
func (r *Relay) readUpstream(c *relayClient) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.upstream.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED after an ICMP port unreachable, for one: the socket stays usable.
			r.readErrors.Add(1)
			continue
		}
		now := time.Now()
		c.lastSeen.Store(int64(now.Sub(r.epoch)))
		r.forward(&c.down, now, buf[:n], buf)
	}
}

// client returns the client at addr, creating it (upstream socket, Links, reader) on its first
// datagram. It returns nil if the datagram is to be dropped. Only readClients calls it, so two
// calls never race to create the same client.
func (r *Relay) client(addr netip.AddrPort, now time.Time) *relayClient {
	r.mu.Lock()
	if c := r.clients[addr]; c != nil || r.closed {
		r.mu.Unlock()
		return c
	}
	if len(r.clients) >= r.opts.MaxClients {
		r.mu.Unlock()
		r.rejected.Add(1)
		return nil
	}
	r.mu.Unlock()

	upstream, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		r.rejected.Add(1)
		return nil
	}
	setSocketBuffers(upstream, r.opts.SocketBuffer)
	c := &relayClient{addr: addr, upstream: upstream}
	c.up = direction{c: c, toTarget: true}
	c.down = direction{c: c}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		upstream.Close()
		return nil
	}
	k := r.nclients
	r.nclients++
	up, down := r.up, r.down
	up.Seed = impair.DeriveSeed(r.up.Seed, 2*k)
	down.Seed = impair.DeriveSeed(r.down.Seed, 2*k+1)
	c.up.link = impair.NewLink(up, now)
	c.down.link = impair.NewLink(down, now)
	r.clients[addr] = c
	r.wg.Add(1)
	r.mu.Unlock()
	go r.readUpstream(c)
	return c
}

// forward gives one datagram to d's Link, delivers whatever is due already (with no delay, the
// datagram itself) and schedules the rest. buf is scratch space for delivery, and may be b's
// own array: Send has copied b by then.
func (r *Relay) forward(d *direction, now time.Time, b, buf []byte) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.link.Send(now, b)
	r.deliverLocked(d, now, buf)
	next := d.link.NextDelivery()
	d.mu.Unlock()
	if !next.IsZero() {
		r.schedule(d, next)
	}
}

// deliverLocked writes every copy of d that is due at now. d.mu must be held.
func (r *Relay) deliverLocked(d *direction, now time.Time, buf []byte) {
	for {
		due := d.link.NextDelivery()
		n, ok := d.link.Receive(now, buf)
		if !ok {
			return
		}
		r.noteLateness(now.Sub(due))
		var err error
		if d.toTarget {
			_, err = d.c.upstream.Write(buf[:n])
		} else {
			_, err = r.conn.WriteToUDPAddrPort(buf[:n], d.c.addr)
		}
		if err != nil {
			r.writeErrors.Add(1)
		}
	}
}

func (r *Relay) noteLateness(late time.Duration) {
	if late < 0 {
		late = 0 // now went backwards in the Link (a reader's now after the scheduler's)
	}
	r.lateSum.Add(int64(late))
	r.lateCount.Add(1)
	for {
		m := r.lateMax.Load()
		if int64(late) <= m || r.lateMax.CompareAndSwap(m, int64(late)) {
			return
		}
	}
}

// schedule makes sure the scheduler looks at d by at, waking it if its timer is set later.
func (r *Relay) schedule(d *direction, at time.Time) {
	r.mu.Lock()
	kick := r.scheduleLocked(d, at) && (r.armed.IsZero() || at.Before(r.armed))
	r.mu.Unlock()
	if kick {
		select {
		case r.kick <- struct{}{}:
		default: // a kick is pending already
		}
	}
}

// scheduleLocked records a wake-up for d at at unless an earlier one is pending; it reports
// whether it added one. r.mu must be held.
func (r *Relay) scheduleLocked(d *direction, at time.Time) bool {
	if at.IsZero() || !d.scheduled.IsZero() && !at.Before(d.scheduled) {
		return false
	}
	d.scheduled = at
	r.pushWake(wake{at: at, d: d})
	return true
}

// runScheduler delivers what the reader goroutines could not deliver at once, when it is due,
// and forgets idle clients.
func (r *Relay) runScheduler() {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	buf := make([]byte, maxDatagram)
	sweepEvery := max(r.opts.IdleTimeout/4, time.Millisecond)
	nextSweep := time.Now().Add(sweepEvery)
	for {
		now := time.Now()
		if !now.Before(nextSweep) {
			r.sweep(now)
			nextSweep = now.Add(sweepEvery)
		}
		r.mu.Lock()
		for len(r.wakes) > 0 && !r.wakes[0].at.After(now) {
			w := r.popWake()
			if !w.d.scheduled.Equal(w.at) {
				continue // superseded by an earlier wake-up, which has been handled
			}
			w.d.scheduled = time.Time{}
			r.mu.Unlock()
			var next time.Time
			w.d.mu.Lock()
			if !w.d.closed {
				r.deliverLocked(w.d, time.Now(), buf) // not now: earlier writes took time
				next = w.d.link.NextDelivery()
			}
			w.d.mu.Unlock()
			r.mu.Lock()
			r.scheduleLocked(w.d, next)
		}
		r.armed = nextSweep
		if len(r.wakes) > 0 && r.wakes[0].at.Before(r.armed) {
			r.armed = r.wakes[0].at
		}
		wait := time.Until(r.armed) // not from now: delivering took time
		r.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-r.done:
			return
		case <-r.kick:
		case <-timer.C:
		}
	}
}

// sweep forgets clients idle for longer than IdleTimeout.
func (r *Relay) sweep(now time.Time) {
	cutoff := int64(now.Sub(r.epoch) - r.opts.IdleTimeout)
	r.forget(func(c *relayClient) bool { return c.lastSeen.Load() < cutoff })
}

// Rebind makes the relay act like a NAT whose mappings all changed at once (RFC 9000 §9.3's NAT
// rebinding): every client is forgotten, with its upstream socket and the datagrams in flight,
// so the next datagram from a client reaches the target from a new source port, and the
// target's answers to the old port go nowhere.
func (r *Relay) Rebind() {
	r.forget(func(*relayClient) bool { return true })
}

// forget drops the clients for which drop is true, as if idle.
func (r *Relay) forget(drop func(*relayClient) bool) {
	var idle []*relayClient
	r.mu.Lock()
	for addr, c := range r.clients {
		if !drop(c) {
			continue
		}
		delete(r.clients, addr)
		c.gone.Store(true)
		for i, d := range [2]*direction{&c.up, &c.down} {
			d.mu.Lock()
			d.closed = true
			s := d.link.Stats()
			d.mu.Unlock()
			s.Queued = 0 // discarded
			r.retired[i].Add(s)
		}
		idle = append(idle, c)
	}
	r.mu.Unlock()
	for _, c := range idle {
		c.upstream.Close() // ends readUpstream
	}
}

// The wake-up queue is a binary min-heap by time (see Link's queue for why not container/heap).

func (r *Relay) pushWake(w wake) {
	r.wakes = append(r.wakes, w)
	i := len(r.wakes) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !r.wakes[i].at.Before(r.wakes[p].at) {
			break
		}
		r.wakes[i], r.wakes[p] = r.wakes[p], r.wakes[i]
		i = p
	}
}

func (r *Relay) popWake() wake {
	top := r.wakes[0]
	last := len(r.wakes) - 1
	r.wakes[0] = r.wakes[last]
	r.wakes[last] = wake{}
	r.wakes = r.wakes[:last]
	i := 0
	for {
		c := 2*i + 1
		if c >= last {
			break
		}
		if c+1 < last && r.wakes[c+1].at.Before(r.wakes[c].at) {
			c++
		}
		if !r.wakes[c].at.Before(r.wakes[i].at) {
			break
		}
		r.wakes[i], r.wakes[c] = r.wakes[c], r.wakes[i]
		i = c
	}
	return top
}

// setSocketBuffers asks for large socket buffers: a relay that reads slower than a burst
// arrives loses datagrams in the kernel, which would look like impairment we did not configure.
func setSocketBuffers(c *net.UDPConn, size int) {
	_ = c.SetReadBuffer(size)  // best effort: the kernel caps it, and a smaller buffer still works
	_ = c.SetWriteBuffer(size) // likewise
}
