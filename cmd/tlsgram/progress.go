package main

import (
	"fmt"
	"io"
	"os"
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
	total          int64         // bytes there are to send, if known (> 0): percentage and time left
	totalReceived  bool          // the percentage counts received bytes (the demo sees both ends)
	rtt            time.Duration // smoothed RTT; 0 if unknown
	sessions       int           // shown when > 1 or when server is set
	server         bool
	unit           string // what sessions counts; default "session"
	extra          string // appended as is
}

// progressMode is how progress is shown (cmdFlags.progressMode picks it).
type progressMode int

const (
	progressOff    progressMode = iota
	progressRedraw              // one line on a terminal, redrawn in place
	progressLines               // one line per interval, for logs and pipes (iperf3's interval reports)
)

// progressDelay is how long a transfer runs before its redrawn line appears: only long
// transfers get one.
const progressDelay = time.Second

// redrawInterval is how often the redrawn line changes: often enough to look alive.
const redrawInterval = 500 * time.Millisecond

// progress shows progress on stderr until stopped. Rates are over the last interval, which is
// what a person watching wants; the time left is at the average rate so far, which jumps less.
type progress struct {
	w        io.Writer
	sample   func() progressSample
	mode     progressMode
	interval time.Duration

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	mu    sync.Mutex // guards drawn and writes to w
	drawn bool       // a redrawn progress line is on the screen
}

// startProgress starts showing progress in mode, every interval for progressLines; with
// progressOff it returns a progress whose Stop does nothing.
func startProgress(mode progressMode, interval time.Duration, w io.Writer, sample func() progressSample) *progress {
	if mode == progressRedraw {
		interval = redrawInterval
	}
	p := &progress{w: w, sample: sample, mode: mode, interval: interval,
		stop: make(chan struct{}), done: make(chan struct{})}
	if mode == progressOff {
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
			if p.mode == progressRedraw && now.Sub(start) < progressDelay {
				// Short transfers finish without a progress line.
				continue
			}
			s := p.sample()
			line := progressLine(s, last, now.Sub(lastT), now.Sub(start))
			p.mu.Lock()
			if p.mode == progressLines {
				fmt.Fprintf(p.w, "[%6.1f-%6.1f s]  %s\n", lastT.Sub(start).Seconds(), now.Sub(start).Seconds(), line)
			} else {
				fmt.Fprint(p.w, "\r\x1b[K"+line)
				p.drawn = true
			}
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

// progressLine is one report: s now, last one interval dt ago, elapsed since the start.
func progressLine(s, last progressSample, dt, elapsed time.Duration) string {
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
	fmt.Fprintf(&b, "%s %s", labels[0], formatBytes(s.sent))
	if s.total > 0 && !s.totalReceived {
		fmt.Fprintf(&b, " of %s, %s", formatBytes(s.total), percentLeft(s.sent, s.total, elapsed))
	}
	fmt.Fprintf(&b, " (%s)  %s %s", rate(s.sent, last.sent), labels[1], formatBytes(s.received))
	if s.total > 0 && s.totalReceived {
		fmt.Fprintf(&b, " of %s, %s", formatBytes(s.total), percentLeft(s.received, s.total, elapsed))
	}
	fmt.Fprintf(&b, " (%s)", rate(s.received, last.received))
	if s.rtt > 0 {
		fmt.Fprintf(&b, "  rtt %s", formatDuration(s.rtt))
	}
	if s.extra != "" {
		b.WriteString("  " + s.extra)
	}
	return b.String()
}

// percentLeft is "37%, 0:12 left": the share of total sent and the time the rest takes at the
// average rate so far.
func percentLeft(sent, total int64, elapsed time.Duration) string {
	pct := 100 * float64(min(sent, total)) / float64(total)
	left := "?"
	if sent > 0 && elapsed > 0 {
		rest := time.Duration(float64(total-min(sent, total)) / float64(sent) * float64(elapsed))
		left = formatClock(rest)
	}
	return fmt.Sprintf("%.0f%%, %s left", pct, left)
}

// formatClock writes a duration as m:ss or h:mm:ss, as progress bars do.
func formatClock(d time.Duration) string {
	sec := int64(d.Round(time.Second) / time.Second)
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// Stop erases the line and waits for the drawing goroutine to end.
func (p *progress) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

// inputSize is the size of r if it is a regular file (stdin redirected from one), else 0.
func inputSize(r io.Reader) int64 {
	f, ok := r.(*os.File)
	if !ok {
		return 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}
