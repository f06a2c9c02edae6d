package transport

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsgram/tlsgram/header"
	"github.com/tlsgram/tlsgram/session"
)

// Retry tokens (RFC 9000 §8.1.2) are valid this long: long enough for one round trip on any
// path, short enough that a captured token is of little use.
const retryTokenLifetime = 10 * time.Second

// Version Negotiation answers are rate-limited: each costs a send and could be aimed at a victim.
const (
	vnPerSecond = 100
	vnBurst     = 20
)

// Listener accepts tlsgram connections on one UDP socket. All its connections share the socket;
// datagrams are routed by connection ID. New clients are admitted by the socket's reader
// goroutine, and each handshake runs in its own goroutine with Config.HandshakeTimeout, so a slow
// or silent client never delays Accept for the others. At most Config.MaxHalfOpen handshakes run
// at once.
//
// Close stops accepting and aborts handshakes in progress and connections not yet accepted;
// connections already returned by Accept keep working, and the socket is closed when the last
// of them is closed. A Listener is safe for concurrent use.
type Listener struct {
	ep      *endpoint
	conf    *Config
	tlsConf *tls.Config
	network string

	acceptQ chan *Conn
	closing chan struct{} // closed by Close
	ctx     context.Context
	cancel  context.CancelFunc
	shared  bool // the socket is a Transport's: Close leaves it open

	mu     sync.Mutex    // guards the fields below
	closed bool          // Close was called (or the socket failed)
	err    error         // the socket error that closed the listener, if any
	space  chan struct{} // closed when Accept made room in acceptQ; nil if nobody waits
	hsWG   sync.WaitGroup

	// Half-open slots (Config.MaxHalfOpen): a session holds one from its creation until it is
	// queued for Accept or released. slots maps each holder to its source prefix ("" if its
	// address was not validated: those are not counted per prefix), prefixes counts per prefix.
	slots    map[*Conn]string // guarded by mu
	prefixes map[string]int   // guarded by mu
	halfOpen atomic.Int64
	tokenKey [32]byte
	resetKey []byte // Config.StatelessResetKey, or random

	// Reader goroutine only.
	w         batchWriter
	answers   []message   // datagrams answering this read batch's: see answer
	vn        tokenBucket // Version Negotiation answers
	refusals  tokenBucket // CLOSE answers to new clients after Close
	resets    tokenBucket // stateless resets
	newClient tokenBucket // new sessions from unvalidated addresses (Config.RetryRate)

	// newClientRefunds counts the handshakes that took a newClient token and completed since the
	// reader last looked: a completed handshake proved its address (see retryNeeded), so its
	// token goes back. Added to by handshake goroutines, taken by the reader.
	newClientRefunds atomic.Int64

	// Reader goroutine only: HMAC-SHA256 under resetKey and tokenKey, keyed once and Reset for
	// each MAC. A new HMAC per MAC cost five allocations and the key schedule, for every new
	// session (its reset token) and for every Initial of a Retry flood (its token).
	resetMAC, retryMAC hash.Hash
	macIn              [macInLen]byte // what is MACed: a local array would escape to the heap
	macSum             [sha256.Size]byte

	accepted, handshakeFailures                                   atomic.Uint64
	dropHalfOpen, dropShortInitial, dropInvalid, dropInvalidToken atomic.Uint64
	dropPrefix, resetsSent                                        atomic.Uint64
	dropClosed, retriesSent, versionNegotiations, dropVersion     atomic.Uint64
}

// Listen opens a UDP socket on address and returns a Listener for it. network is "udp", "udp4"
// or "udp6". tlsConf must hold a certificate (or GetCertificate / GetConfigForClient); it is
// cloned with MinVersion raised to TLS 1.3. A nil conf means the defaults documented on Config.
func Listen(network, address string, tlsConf *tls.Config, conf *Config) (*Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	cfg, err := prepare(tlsConf, conf)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return newListener(pc, network, tlsConf, cfg, true), nil
}

// NewListener returns a Listener that serves tlsgram on pc, a socket the caller opened (or any
// net.PacketConn, such as an in-memory one for tests). The Listener takes ownership of pc and
// closes it after Close, once its last connection is closed. Socket buffer sizes are left as
// they are (Config.SocketBuffer applies to sockets the package opens).
func NewListener(pc net.PacketConn, tlsConf *tls.Config, conf *Config) (*Listener, error) {
	cfg, err := prepare(tlsConf, conf)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: pc.LocalAddr().Network(), Addr: pc.LocalAddr(), Err: err}
	}
	return newListener(pc, pc.LocalAddr().Network(), tlsConf, cfg, false), nil
}

func prepare(tlsConf *tls.Config, conf *Config) (*Config, error) {
	if tlsConf == nil {
		return nil, errors.New("tlsgram: nil *tls.Config")
	}
	cfg := conf.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func newListener(pc net.PacketConn, network string, tlsConf *tls.Config, cfg *Config, setBuffers bool) *Listener {
	ep := newEndpoint(pc, cfg, setBuffers, false, 0)
	l := newListenerOn(ep, network, tlsConf, cfg)
	ep.start()
	return l
}

// newListenerOn makes the Listener of ep, a new socket's endpoint or a Transport's.
func newListenerOn(ep *endpoint, network string, tlsConf *tls.Config, cfg *Config) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		ep:      ep,
		conf:    cfg,
		tlsConf: tls13(tlsConf),
		network: network,
		acceptQ: make(chan *Conn, cfg.AcceptQueueLen),
		closing: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		w:       ep.sock.newWriter(),
	}
	l.slots, l.prefixes = make(map[*Conn]string), make(map[string]int)
	_, _ = rand.Read(l.tokenKey[:])
	l.resetKey = cfg.StatelessResetKey
	if l.resetKey == nil {
		l.resetKey = make([]byte, 32)
		_, _ = rand.Read(l.resetKey)
	}
	l.resetMAC, l.retryMAC = hmac.New(sha256.New, l.resetKey), hmac.New(sha256.New, l.tokenKey[:])
	ep.mu.Lock()
	ep.ln = l
	ep.mu.Unlock()
	registerListener(l)
	return l
}

// tls13 clones c with MinVersion raised to TLS 1.3: the transport offers nothing older.
func tls13(c *tls.Config) *tls.Config {
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS13 {
		c.MinVersion = tls.VersionTLS13
	}
	return c
}

// Accept waits for and returns the next connection, whose TLS handshake has completed. The
// net.Conn is a *Conn. After Close, Accept returns an error matching net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptContext(context.Background())
	if err != nil {
		return nil, err // not a nil *Conn in a non-nil net.Conn
	}
	return c, nil
}

// AcceptContext is Accept that also returns when ctx is done, with an error wrapping ctx.Err()
// (a net.Error with Timeout() true for context.DeadlineExceeded). The listener stays open then,
// and a connection that completes its handshake later waits for the next call.
func (l *Listener) AcceptContext(ctx context.Context) (*Conn, error) {
	select {
	case <-ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: ctx.Err()}
	case c := <-l.acceptQ:
		l.mu.Lock()
		if l.space != nil {
			close(l.space)
			l.space = nil
		}
		l.mu.Unlock()
		l.accepted.Add(1)
		c.openWindow()
		return c, nil
	case <-l.closing:
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		} else {
			err = errors.Join(net.ErrClosed, err)
		}
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: err}
	}
}

// Addr returns the socket's local address.
func (l *Listener) Addr() net.Addr { return l.ep.sock.pc.LocalAddr() }

// Close stops accepting (see Listener for what happens to connections). It waits until the
// handshakes in progress have been aborted. A second Close returns an error matching
// net.ErrClosed.
func (l *Listener) Close() error {
	if !l.closeWith(nil) {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.Addr(), Err: net.ErrClosed}
	}
	return nil
}

// closeWith closes the listener; err is the socket failure that caused it, if any. It reports
// whether this call closed it.
func (l *Listener) closeWith(err error) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	l.err = err
	close(l.closing)
	if l.space != nil {
		close(l.space)
		l.space = nil
	}
	l.mu.Unlock()

	l.cancel()    // ends every handshake in progress
	l.hsWG.Wait() // no handshake goroutine is left to fill acceptQ
	for {
		select {
		case c := <-l.acceptQ:
			c.abort(session.CodeNoError, "listener closed")
			continue
		default:
		}
		break
	}
	if l.shared {
		l.ep.detach(l)
	} else {
		l.ep.shutdown()
	}
	unregisterListener(l)
	return true
}

// fail is called by the reader when the socket failed.
func (l *Listener) fail(err error) {
	go l.closeWith(err) // closeWith waits for handshakes, which must not hold up the reader
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		Accepted:             l.accepted.Load(),
		HandshakeFailures:    l.handshakeFailures.Load(),
		HalfOpen:             int(l.halfOpen.Load()),
		DroppedHalfOpen:      l.dropHalfOpen.Load(),
		DroppedPrefix:        l.dropPrefix.Load(),
		StatelessResets:      l.resetsSent.Load(),
		DroppedShortInitial:  l.dropShortInitial.Load(),
		DroppedInvalid:       l.dropInvalid.Load(),
		DroppedInvalidToken:  l.dropInvalidToken.Load(),
		DroppedUnknownConnID: l.ep.dropUnknownCID.Load(),
		DroppedMalformed:     l.ep.dropMalformed.Load(),
		DroppedTruncated:     l.ep.dropTruncated.Load(),
		DroppedClosed:        l.dropClosed.Load(),
		RetriesSent:          l.retriesSent.Load(),
		VersionNegotiations:  l.versionNegotiations.Load(),
		DroppedVersion:       l.dropVersion.Load(),
		SocketReceiveBuffer:  l.ep.rcvBuf,
		SocketSendBuffer:     l.ep.sndBuf,
	}
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// handleUnknown looks at a long-header datagram whose connection ID no connection owns: a new
// client's Initial (or a retransmission of one we dropped), an unknown version, or junk. It
// runs on the reader goroutine and must stay cheap: no TLS work happens here.
func (l *Listener) handleUnknown(m *message, now time.Time) {
	dg := m.buf.bytes()
	version, dcid, scid, ok := header.PeekLongHeader(dg)
	if !ok {
		l.ep.dropMalformed.Add(1)
		return
	}
	if version == 0 { // Version Negotiation is for clients
		l.dropInvalid.Add(1)
		return
	}
	if version != header.Version1 {
		l.versionNegotiate(m, dcid, scid, now)
		return
	}
	// RFC 9000 §14.1: a server drops an Initial in a datagram below 1200 bytes, which keeps the
	// 3× amplification allowance meaningful.
	if len(dg) < header.MinInitialDatagramSize {
		l.dropShortInitial.Add(1)
		return
	}
	h, _, err := header.Open(dg)
	if err != nil || h.Type != header.TypeInitial {
		l.dropInvalid.Add(1)
		return
	}
	if l.isClosed() {
		l.dropClosed.Add(1)
		l.refuse(m, &h, now)
		return
	}
	validated := false
	var origDCID uint64
	if len(h.Token) > 0 {
		// RFC 9000 §8.1.3: an invalid token may be dropped; the client would otherwise only
		// get another Retry.
		if origDCID, validated = l.checkToken(h.Token, m, h.DstConnID, now); !validated {
			l.dropInvalidToken.Add(1)
			return
		}
	}
	half := l.halfOpen.Load()
	charged := false
	if !validated {
		var retry bool
		if retry, charged = l.retryNeeded(half, now); retry {
			l.sendRetry(m, h.SrcConnID, h.DstConnID, now)
			return
		}
	}
	if half >= int64(l.conf.MaxHalfOpen) {
		l.refundNewClient(charged)
		l.dropHalfOpen.Add(1)
		return
	}
	l.newSession(m, &h, validated, origDCID, charged, now)
}

// retryNeeded decides whether a new client whose address is not validated gets a Retry instead
// of a session: always if the configuration says so; while half-open slots are filling up; and
// beyond Config.RetryRate new such clients a second. The rate matters because spoofed handshakes
// that end fast cost TLS work (a key exchange and a signature each) without holding slots long.
// charged reports that the client took a token of the rate: it is given back if its handshake
// completes (refundNewClient).
//
// Only handshakes that do not complete count against the rate. A spoofed client never completes
// one: its Finished needs the server's flight, which went to the address it forged. A real one
// does, and has proven its address as a Retry would have. Counting every new client, as this
// did, sent a Retry (a round trip, and the ClientHello sent again) to most clients of a listener
// serving more than RetryRate handshakes a second: 1575 of 2000 in BenchmarkHandshake at about
// 500 a second.
func (l *Listener) retryNeeded(half int64, now time.Time) (retry, charged bool) {
	switch {
	case l.conf.RequireAddressValidation:
		return true, false
	case l.conf.RetryThreshold > 0 && half >= int64(l.conf.RetryThreshold):
		return true, false
	case l.conf.RetryRate > 0:
		rate := float64(l.conf.RetryRate)
		l.newClient.refund(float64(l.newClientRefunds.Swap(0)))
		if !l.newClient.allow(now, rate, rate) {
			return true, false
		}
		return false, true
	}
	return false, false
}

// refundNewClient gives back the newClient token of a client that took one (charged): its
// handshake completed, or it got no session after all.
func (l *Listener) refundNewClient(charged bool) {
	if charged {
		l.newClientRefunds.Add(1)
	}
}

// takeSlot reserves a half-open slot for a new session from m's address, if a validated one's
// prefix has room. The caller gives it to the session with holdSlot, or back with dropSlot.
func (l *Listener) takeSlotLocked(m *message, validated bool) (prefix string, ok bool) {
	if validated {
		prefix = sourcePrefix(m)
		if l.prefixes[prefix] >= l.conf.MaxHalfOpenPerPrefix {
			return "", false
		}
		l.prefixes[prefix]++
	}
	l.halfOpen.Add(1)
	return prefix, true
}

func (l *Listener) dropSlotLocked(prefix string) {
	l.halfOpen.Add(-1)
	if prefix == "" {
		return
	}
	if l.prefixes[prefix]--; l.prefixes[prefix] <= 0 {
		delete(l.prefixes, prefix)
	}
}

// releaseSlot frees c's half-open slot, if it holds one: when c is queued for Accept, or when it
// is released without having been.
func (l *Listener) releaseSlot(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prefix, ok := l.slots[c]; ok {
		delete(l.slots, c)
		l.dropSlotLocked(prefix)
	}
}

// sourcePrefix is the network a client's address belongs to: its /24 for IPv4, its /48 for
// IPv6, the whole host for other kinds of address.
func sourcePrefix(m *message) string {
	if m.ap.IsValid() {
		a := m.ap.Addr().Unmap()
		bits := 48
		if a.Is4() {
			bits = 24
		}
		p, _ := a.Prefix(bits)
		return p.String()
	}
	if m.addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(m.addr.String())
	if err != nil {
		return m.addr.String()
	}
	return host
}

// newSession creates the server side of a connection for a client's first Initial and starts
// its driver and its handshake.
//
// charged says that the client took a newClient token (retryNeeded), which goes back if the
// handshake completes.
func (l *Listener) newSession(m *message, h *header.Header, validated bool, origDCID uint64, charged bool, now time.Time) {
	ep := l.ep
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.refundNewClient(charged)
		l.dropClosed.Add(1)
		return
	}
	prefix, ok := l.takeSlotLocked(m, validated)
	if !ok {
		l.mu.Unlock()
		l.refundNewClient(charged)
		l.dropPrefix.Add(1)
		return
	}
	l.hsWG.Add(1) // under mu, so Close's Wait sees every handshake
	l.mu.Unlock()

	ep.mu.Lock()
	// After a Retry, the client already addresses the connection ID we chose in it (and which the
	// token covers); otherwise we choose ours now and also accept the client's random initial
	// DCID until the client switches (RFC 9000 §7.2).
	var local uint64
	var ids []uint64
	if validated {
		local = h.DstConnID
		ids = []uint64{local}
	} else {
		local = ep.newConnIDLocked()
		ids = []uint64{local, h.DstConnID}
	}
	core := session.NewServer(l.conf.sessionConfig(), local, h.SrcConnID, h.DstConnID, now, validated)
	if validated {
		core.SetRetried(origDCID)
	}
	// Nobody reads the connection before Accept returns it: until then it keeps the small
	// window of the handshake (Conn.openWindow).
	core.HoldReceiveWindow(true, now)
	core.SetStatelessResetToken(l.resetToken(local))
	c := newConn(ep, core, l.network, *m, ep.sock.remoteAddr(m), l.conf)
	c.tls = tls.Server(c.bio, l.tlsConf)
	ok = ep.registerLocked(c, ids...)
	ep.mu.Unlock()
	l.mu.Lock()
	if ok {
		l.slots[c] = prefix
	} else {
		l.dropSlotLocked(prefix)
	}
	l.mu.Unlock()
	if !ok {
		l.hsWG.Done()
		l.refundNewClient(charged)
		l.dropInvalid.Add(1)
		return
	}
	// Observed before the first step, which the deliver below may run.
	c.observe()
	_, _, _ = c.deliver(m.buf) // the queue is empty: this cannot fail
	m.buf = nil
	go l.handshake(c, charged)
}

// handshake runs one server-side TLS handshake and queues the connection for Accept. charged:
// see newSession.
func (l *Listener) handshake(c *Conn, charged bool) {
	defer l.hsWG.Done()
	ctx, cancel := context.WithTimeout(l.ctx, l.conf.HandshakeTimeout)
	defer cancel()
	err := c.tls.HandshakeContext(ctx)
	if err != nil {
		// The session keeps its half-open slot until it is released: a spoofed handshake that
		// fails at once must not free room for the next one (endpoint.release).
		l.handshakeFailures.Add(1)
		code, reason := handshakeCloseCode(err, ctx)
		c.abort(code, reason)
		return
	}
	c.setHandshakeComplete()
	l.refundNewClient(charged) // the client proved its address
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.abort(session.CodeNoError, "listener closed")
			return
		}
		select {
		case l.acceptQ <- c:
			l.mu.Unlock()
			l.releaseSlot(c)
			return
		default:
		}
		if l.space == nil {
			l.space = make(chan struct{})
		}
		space := l.space
		l.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			l.handshakeFailures.Add(1)
			c.abort(session.CodeRefused, "accept queue full")
			return
		}
	}
}

// handshakeCloseCode picks the CLOSE code for a failed handshake.
func handshakeCloseCode(err error, ctx context.Context) (uint64, string) {
	var te *session.TimeoutError
	if errors.As(err, &te) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return session.CodeHandshakeTimeout, "handshake timeout"
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return session.CodeNoError, "closed during handshake"
	}
	// The reason is TLS's own error, which names the cause ("tls: client requested unsupported
	// application protocols", "tls: failed to verify certificate: ..."); the alert TLS sent
	// travels with the CLOSE (session.Conn.Close), so the peer's TLS reports it too.
	return session.CodeTLS, err.Error()
}

// versionNegotiate answers a padded first datagram of an unknown version with the versions we
// speak (RFC 9000 §6, §17.2.1), at a bounded rate. Short datagrams are not answered, so the
// answer never exceeds what was received.
func (l *Listener) versionNegotiate(m *message, dcid, scid uint64, now time.Time) {
	if len(m.buf.bytes()) < header.MinInitialDatagramSize || !l.vn.allow(now, vnPerSecond, vnBurst) {
		l.dropVersion.Add(1)
		return
	}
	pb := l.ep.sendPool.get()
	versions := [1]uint32{header.Version1}
	pb.n = len(header.AppendVersionNegotiation(pb.b[:0], scid, dcid, versions[:]))
	l.versionNegotiations.Add(1) // before sending: whoever receives the answer sees it counted
	l.answer(pb, m)
}

// refuse answers a new client's Initial after Close with a CLOSE frame (code CodeRefused), so
// that its Dial fails at once instead of retransmitting until its handshake timeout. The answer
// is a Handshake packet as the server's first would be, far smaller than the Initial, and
// rate-limited like Version Negotiation. (Once the socket is closed, the kernel's ICMP port
// unreachable does the same for a Dial on Linux.)
func (l *Listener) refuse(m *message, h *header.Header, now time.Time) {
	if !l.refusals.allow(now, vnPerSecond, vnBurst) {
		return
	}
	out := header.Header{Type: header.TypeHandshake, Version: header.Version1, DstConnID: h.SrcConnID,
		SrcConnID: h.DstConnID, PNLen: 4}
	pb := l.ep.sendPool.get()
	b := header.AppendHeader(pb.b[:0], &out)
	b = header.AppendClose(b, session.CodeRefused, []byte(reasonListenerClosed))
	pb.n = len(header.Seal(b, 0))
	l.answer(pb, m)
}

const reasonListenerClosed = "listener closed"

// answer queues pb, an answer to the datagram m (a Retry, Version Negotiation, refusal or
// stateless reset), to go out with the other answers to the same read batch in one batch write
// (flushAnswers). Under a flood of spoofed Initials a system call per Retry made the reader
// slower than the flood: the socket's buffer filled with spoofed datagrams, and a legitimate
// client's Initial queued behind thousands of them.
func (l *Listener) answer(pb *packetBuf, m *message) {
	l.answers = append(l.answers, message{buf: pb, ap: m.ap, addr: m.addr})
}

// flushAnswers sends what answer queued. The reader calls it after each read batch.
func (l *Listener) flushAnswers() {
	if len(l.answers) > 0 {
		l.ep.writeAnswers(l.w, l.answers)
		l.answers = l.answers[:0]
	}
}

// resetToken is the stateless reset token of the connection with ID cid: a MAC of the ID under
// the reset key, which a restarted process with the same key computes again.
func (l *Listener) resetToken(cid uint64) [header.StatelessResetTokenLen]byte {
	mac := l.resetMAC
	mac.Reset()
	b := l.macIn[:len(resetLabel)+8]
	copy(b, resetLabel)
	binary.BigEndian.PutUint64(b[len(resetLabel):], cid)
	mac.Write(b)
	var tok [header.StatelessResetTokenLen]byte
	copy(tok[:], mac.Sum(l.macSum[:0]))
	return tok
}

const resetLabel = "tlsgram stateless reset"

// macInLen is the most resetToken and tokenMAC MAC at once.
const macInLen = max(len(resetLabel)+8, 8+8+8+16+2)

// Stateless resets are rate-limited like Version Negotiation, and this large at most: like a
// short packet with a few frames.
const (
	resetPerSecond = 100
	resetBurst     = 20
	maxResetLen    = 43
)

// statelessReset answers a short header datagram for a connection ID we do not know — a client
// of a process that ran before us — with a stateless reset (RFC 9000 §10.3), so that the client
// learns at once that the connection is gone. The reset is smaller than the datagram, and a
// datagram that is not larger than the smallest reset gets none, so two endpoints cannot make
// each other answer forever (§10.3.3).
func (l *Listener) statelessReset(m *message, cid uint64, now time.Time) {
	n := len(m.buf.bytes())
	if n <= header.MinStatelessResetLen || !l.resets.allow(now, resetPerSecond, resetBurst) {
		return
	}
	size := min(n-1, maxResetLen)
	var random [maxResetLen]byte
	_, _ = rand.Read(random[:size-header.StatelessResetTokenLen])
	tok := l.resetToken(cid)
	pb := l.ep.sendPool.get()
	pb.n = len(header.AppendStatelessReset(pb.b[:0], size, &tok, random[:]))
	l.resetsSent.Add(1)
	l.answer(pb, m)
}

// tokenBucket is a rate limiter for the reader goroutine's answers. The zero value is full.
type tokenBucket struct {
	used float64 // tokens taken and not yet refilled
	last time.Time
}

// refund puts n tokens back (never more than the bucket holds).
func (b *tokenBucket) refund(n float64) {
	b.used = max(0, b.used-n)
}

// allow takes a token from a bucket of burst tokens that refills at rate a second.
func (b *tokenBucket) allow(now time.Time, rate, burst float64) bool {
	if !b.last.IsZero() {
		b.used = max(0, b.used-now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.used+1 > burst {
		return false
	}
	b.used++
	return true
}

// sendRetry answers an Initial with a stateless Retry (RFC 9000 §8.1.2, §17.2.5): a fresh
// connection ID and a token binding the client's address, that ID and the time. The client
// repeats its Initial with the token, to the new ID; only then does the server keep state.
func (l *Listener) sendRetry(m *message, clientCID, origDCID uint64, now time.Time) {
	l.ep.mu.Lock()
	newCID := l.ep.newConnIDLocked()
	l.ep.mu.Unlock()
	var tok [retryTokenLen]byte
	l.makeToken(tok[:0], m, newCID, origDCID, now)
	h := header.Header{
		Type:      header.TypeRetry,
		Version:   header.Version1,
		DstConnID: clientCID,
		SrcConnID: newCID,
		Token:     tok[:],
	}
	pb := l.ep.sendPool.get()
	b := header.AppendHeader(pb.b[:0], &h)
	pb.n = len(header.Seal(b, 0))
	l.retriesSent.Add(1) // before sending, like versionNegotiations
	l.answer(pb, m)
}

// A Retry token is an 8-byte timestamp (Unix milliseconds), the 8-byte DCID of the client's
// first Initial, and a 16-byte truncated HMAC-SHA256 over both, the client's address and the
// connection ID of the Retry. The server learns the original DCID from it, and binds it into the
// packet key (session.Conn.PacketKeyContext), as QUIC's original_destination_connection_id does.
const retryTokenLen = 8 + 8 + 16

func (l *Listener) makeToken(b []byte, m *message, cid, origDCID uint64, now time.Time) []byte {
	ts := uint64(now.UnixMilli())
	b = binary.BigEndian.AppendUint64(b, ts)
	b = binary.BigEndian.AppendUint64(b, origDCID)
	mac := l.tokenMAC(ts, origDCID, m, cid)
	return append(b, mac[:]...)
}

// checkToken verifies a Retry token for an Initial from m to cid and returns the original DCID
// it carries.
func (l *Listener) checkToken(tok []byte, m *message, cid uint64, now time.Time) (origDCID uint64, ok bool) {
	if len(tok) != retryTokenLen {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(tok)
	origDCID = binary.BigEndian.Uint64(tok[8:])
	issued := time.UnixMilli(int64(ts))
	if now.Sub(issued) > retryTokenLifetime || issued.Sub(now) > time.Second {
		return 0, false
	}
	mac := l.tokenMAC(ts, origDCID, m, cid)
	return origDCID, hmac.Equal(tok[16:], mac[:])
}

func (l *Listener) tokenMAC(ts, origDCID uint64, m *message, cid uint64) (sum [16]byte) {
	mac := l.retryMAC
	mac.Reset()
	b := l.macIn[:8+8+8+16+2]
	binary.BigEndian.PutUint64(b[0:], ts)
	binary.BigEndian.PutUint64(b[8:], cid)
	binary.BigEndian.PutUint64(b[16:], origDCID)
	if l.ep.sock.udp != nil {
		a := m.ap.Addr().As16()
		copy(b[24:], a[:])
		binary.BigEndian.PutUint16(b[40:], m.ap.Port())
		mac.Write(b[:])
	} else {
		mac.Write(b[:24])
		if m.addr != nil {
			mac.Write([]byte(m.addr.String()))
		}
	}
	copy(sum[:], mac.Sum(l.macSum[:0]))
	return sum
}
