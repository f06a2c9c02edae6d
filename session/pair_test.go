package session

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A minimal two-endpoint driver with a virtual clock, for the core's own unit tests. The full
// simulated network with the seeded impairment model lives in session/simnet.

type flight struct {
	at   time.Time
	to   int
	data []byte
}

type pair struct {
	t     *testing.T
	now   time.Time
	ends  [2]*Conn
	queue []flight
	rng   *rand.Rand
	loss  float64
	delay time.Duration
	buf   []byte
	// app side
	out  [2][]byte // what each end still has to write
	in   [2][]byte // what each end read
	eof  [2]bool
	done [2]bool // CloseWrite called
}

func newPair(t *testing.T, conf *Config, seed int64) *pair {
	now := time.Unix(1_700_000_000, 0)
	p := &pair{t: t, now: now, rng: rand.New(rand.NewSource(seed)), delay: 10 * time.Millisecond, buf: make([]byte, 65536)}
	p.ends[0] = NewClient(conf, 0x1111, 0x2222, now)
	p.ends[1] = NewServer(conf, 0x3333, 0x1111, 0x2222, now, false)
	return p
}

func (p *pair) step() {
	for i, c := range p.ends {
		for {
			n, ok := c.PollDatagram(p.now, p.buf)
			if !ok {
				break
			}
			if p.rng.Float64() < p.loss {
				continue
			}
			d := append([]byte(nil), p.buf[:n]...)
			p.queue = append(p.queue, flight{at: p.now.Add(p.delay), to: 1 - i, data: d})
		}
	}
}

func (p *pair) app() {
	for i, c := range p.ends {
		if !c.HandshakeComplete() {
			// The TLS handshake is the transport's business; here the stream is usable at once.
			c.SetHandshakeComplete(p.now)
		}
		for len(p.out[i]) > 0 && c.SendSpace() > 0 {
			n := min(len(p.out[i]), c.SendSpace(), 7777)
			w, err := c.Write(p.out[i][:n])
			require.NoError(p.t, err)
			p.out[i] = p.out[i][w:]
		}
		if len(p.out[i]) == 0 && !p.done[i] {
			c.CloseWrite()
			p.done[i] = true
		}
		p.readAvailable(i)
	}
}

// readAvailable reads what end i has to read, up to EOF, and returns how many bytes it read.
func (p *pair) readAvailable(i int) int {
	total := 0
	for !p.eof[i] {
		n, err := p.ends[i].Read(p.buf)
		p.in[i] = append(p.in[i], p.buf[:n]...)
		total += n
		if err == io.EOF {
			p.eof[i] = true
			break
		}
		require.NoError(p.t, err)
		if n == 0 {
			break
		}
	}
	return total
}

// run drives the pair until both ends read EOF and all data is acknowledged, or until limit.
func (p *pair) run(limit time.Duration) {
	end := p.now.Add(limit)
	for p.now.Before(end) {
		p.app()
		p.step()
		if p.eof[0] && p.eof[1] && p.ends[0].AllAcked() && p.ends[1].AllAcked() {
			return
		}
		// Deliver everything due now.
		next := time.Time{}
		rest := p.queue[:0]
		for _, f := range p.queue {
			if !f.at.After(p.now) {
				p.ends[f.to].HandleDatagram(p.now, f.data)
				continue
			}
			rest = append(rest, f)
			if next.IsZero() || f.at.Before(next) {
				next = f.at
			}
		}
		p.queue = rest
		delivered := len(rest) != len(p.queue)
		_ = delivered
		for _, c := range p.ends {
			if t := c.NextTimeout(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if next.IsZero() {
			p.t.Fatalf("deadlock at %v: nothing scheduled", p.now)
		}
		if next.After(p.now) {
			p.app()
			p.step()
			// Polling may have queued packets due earlier than next.
			for _, f := range p.queue {
				if f.at.Before(next) {
					next = f.at
				}
			}
			if next.After(p.now) {
				p.now = next
			}
		}
		for _, c := range p.ends {
			if t := c.NextTimeout(); !t.IsZero() && !t.After(p.now) {
				c.HandleTimeout(p.now)
			}
		}
	}
	p.t.Fatalf("not done after %v: eof=%v acked=%v/%v in=%d/%d", limit, p.eof, p.ends[0].AllAcked(), p.ends[1].AllAcked(), len(p.in[0]), len(p.in[1]))
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func TestPairCleanTransfer(t *testing.T) {
	p := newPair(t, nil, 1)
	a := randBytes(p.rng, 3<<20)
	b := randBytes(p.rng, 1<<20)
	p.out[0], p.out[1] = a, b
	p.run(60 * time.Second)
	require.True(t, bytes.Equal(a, p.in[1]), "client→server bytes differ")
	require.True(t, bytes.Equal(b, p.in[0]), "server→client bytes differ")
	t.Logf("client stats: %+v", p.ends[0].Stats())
}

func TestPairLossyTransfer(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		p := newPair(t, nil, seed)
		p.loss = 0.1
		a := randBytes(p.rng, 300<<10)
		b := randBytes(p.rng, 200<<10)
		p.out[0], p.out[1] = a, b
		p.run(300 * time.Second)
		require.True(t, bytes.Equal(a, p.in[1]), "seed %d: client→server bytes differ", seed)
		require.True(t, bytes.Equal(b, p.in[0]), "seed %d: server→client bytes differ", seed)
	}
}
