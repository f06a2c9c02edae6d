package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counter counts bytes through an io.Reader or io.Writer; progress lines and
// summaries read it from another goroutine.
type counter struct{ n atomic.Int64 }

func (c *counter) Load() int64 { return c.n.Load() }
func (c *counter) add(n int)   { c.n.Add(int64(n)) }

// meter is a counter, or several (a session's and the server's total).
type meter interface {
	add(n int)
	Load() int64
}

// multiCounter adds to all its counters and reports the first.
type multiCounter []*counter

func (m multiCounter) add(n int) {
	for _, c := range m {
		c.add(n)
	}
}
func (m multiCounter) Load() int64 { return m[0].Load() }

type countingReader struct {
	r io.Reader
	c meter
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.add(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	c meter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.c.add(n)
	return n, err
}

// progressSample is what a progress line shows.
type progressSample struct {
	labels         [2]string // of sent and received; default "sent", "received"
	sent, received int64
	rtt            time.Duration // smoothed RTT; 0 if unknown
	sessions       int           // shown when > 1 or when server is set
	server         bool
	unit           string // what sessions counts; default "session"
	extra          string // appended as is
}

// progressDelay is how long a transfer runs before its progress line
// appears: only long transfers get one.
const progressDelay = time.Second

// progress redraws one line on stderr (a terminal) until stopped. The rates
// are over the last interval, which is what a person watching wants.
type progress struct {
	w        io.Writer
	sample   func() progressSample
	interval time.Duration

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	mu    sync.Mutex // guards drawn and writes to w
	drawn bool       // a progress line is on the screen
}

// startProgress starts drawing if enabled; otherwise it returns a progress
// whose Stop does nothing.
func startProgress(enabled bool, w io.Writer, sample func() progressSample) *progress {
	p := &progress{w: w, sample: sample, interval: 500 * time.Millisecond,
		stop: make(chan struct{}), done: make(chan struct{})}
	if !enabled {
		close(p.done)
		return p
	}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	last := p.sample()
	lastT := time.Now()
	start := lastT
	for {
		select {
		case <-p.stop:
			p.mu.Lock()
			p.eraseLocked()
			p.mu.Unlock()
			return
		case now := <-t.C:
			if now.Sub(start) < progressDelay {
				// Short transfers finish without a progress line.
				continue
			}
			s := p.sample()
			line := progressLine(s, last, now.Sub(lastT))
			p.mu.Lock()
			fmt.Fprint(p.w, "\r\x1b[K"+line)
			p.drawn = true
			p.mu.Unlock()
			last, lastT = s, now
		}
	}
}

// eraseLocked removes the progress line so that what follows starts clean.
func (p *progress) eraseLocked() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// Print writes text (whole lines) to the progress writer without mixing it
// into the progress line, which is redrawn at the next tick.
func (p *progress) Print(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eraseLocked()
	io.WriteString(p.w, text)
}

func progressLine(s, last progressSample, dt time.Duration) string {
	var b strings.Builder
	if s.server || s.sessions > 1 {
		unit := s.unit
		if unit == "" {
			unit = "session"
		}
		b.WriteString(plural(s.sessions, unit) + "  ")
	}
	labels := s.labels
	if labels[0] == "" {
		labels = [2]string{"sent", "received"}
	}
	rate := func(now, before int64) string {
		if dt <= 0 {
			return "-"
		}
		return formatBytes(int64(float64(now-before)/dt.Seconds())) + "/s"
	}
	fmt.Fprintf(&b, "%s %s (%s)  %s %s (%s)", labels[0], formatBytes(s.sent), rate(s.sent, last.sent),
		labels[1], formatBytes(s.received), rate(s.received, last.received))
	if s.rtt > 0 {
		fmt.Fprintf(&b, "  rtt %s", formatDuration(s.rtt))
	}
	if s.extra != "" {
		b.WriteString("  " + s.extra)
	}
	return b.String()
}

// Stop erases the line and waits for the drawing goroutine to end.
func (p *progress) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}
