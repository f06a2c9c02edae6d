package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// cmdFlags is a flag set with the options every subcommand shares.
type cmdFlags struct {
	*flag.FlagSet
	name        string
	synopsis    string
	description string
	e           *env

	verbose  bool
	stats    bool
	json     bool
	progress string
	interval durationValue
}

// newFlags makes the flag set of one subcommand. withSession adds -stats and
// -progress, which only mean something where a session runs.
func newFlags(e *env, name, synopsis, description string, withSession bool) *cmdFlags {
	f := &cmdFlags{
		FlagSet:     flag.NewFlagSet(name, flag.ContinueOnError),
		name:        name,
		synopsis:    synopsis,
		description: description,
		e:           e,
	}
	// The flag package would print its error and the whole usage text; we
	// print one line instead (see parse), and the usage only for -h.
	f.SetOutput(io.Discard)
	f.BoolVar(&f.verbose, "v", false, "log what happens (log/slog, debug level) on stderr")
	if withSession {
		f.BoolVar(&f.stats, "stats", false, "print the session statistics on stderr at the end")
		f.StringVar(&f.progress, "progress", "auto",
			"progress on stderr, the `mode`: auto (a redrawn line when stderr is a terminal and the data is not), "+
				"always (that line on a terminal, one line per -interval otherwise, like iperf3), line, lines, never")
		f.interval = durationValue(time.Second)
		f.Var(&f.interval, "interval", "time between progress lines when they are not redrawn (-progress always or lines)")
	}
	return f
}

// addJSON adds -json, for the commands that print a summary.
func (f *cmdFlags) addJSON(where string) {
	f.BoolVar(&f.json, "json", false, "print the summary (with -stats, the statistics too) as one JSON object "+where+
		", like iperf3 -J (fields: see the README's \"JSON output\")")
}

func (f *cmdFlags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n\nFlags:\n", f.name, f.synopsis, strings.TrimSpace(f.description))
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// parse parses args, allowing flags after positional arguments
// ("connect ADDR -pin X" works as well as "connect -pin X ADDR"); "--" ends
// the flags. It returns the positional arguments. -h prints the usage on
// stdout and returns flag.ErrHelp; a bad flag gives a one-line usageError.
func (f *cmdFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.e.stdout)
				return nil, flag.ErrHelp
			}
			return nil, usagef("%v (see '%s -h')", err, f.name)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch f.progress {
	case "", "auto", "always", "line", "lines", "never":
	default:
		return nil, usagef("invalid value %q for flag -progress: want auto, always, line, lines or never", f.progress)
	}
	if f.interval <= 0 && f.Lookup("interval") != nil {
		return nil, usagef("-interval must be positive")
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	f.e.log = slog.New(slog.NewTextHandler(f.e.stderr, &slog.HandlerOptions{Level: level}))
	return pos, nil
}

// progressMode says how progress is shown: not at all, as one line redrawn in place (a
// terminal), or as one line per interval (a log or a pipe). usesStdio says whether the
// session's data goes through stdin and stdout.
func (f *cmdFlags) progressMode(usesStdio bool) progressMode {
	switch f.progress {
	case "never":
		return progressOff
	case "line":
		return progressRedraw
	case "lines":
		return progressLines
	case "always":
		if f.e.stderrTTY {
			return progressRedraw
		}
		return progressLines
	}
	if f.e.stderrTTY && !(usesStdio && f.e.stdioTTY) {
		return progressRedraw
	}
	return progressOff
}

// sizeValue is a byte count written as 1048576, 64MiB, 100M, 1.5GB.
type sizeValue int64

func (s *sizeValue) String() string { return formatBytes(int64(*s)) }
func (s *sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

// parseSize accepts a decimal number with an optional unit. K, M, G, T and
// KiB, MiB, GiB, TiB are powers of 1024 (as in dd and iperf3); KB, MB, GB, TB
// are powers of 1000; B is bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("%q is not a size (examples: 65536, 64MiB, 100M, 1.5GB)", s)
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (examples: 65536, 64MiB, 100M, 1.5GB)", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, K/KiB, M/MiB, G/GiB, KB, MB, GB)", s, t[i:])
	}
	v := x * mult
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// probValue is a probability written as 0.02 or 2%.
type probValue float64

func (p *probValue) String() string {
	if *p == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(*p)*100, 'g', -1, 64) + "%"
}
func (p *probValue) Set(v string) error {
	x, err := parseProb(v)
	if err != nil {
		return err
	}
	*p = probValue(x)
	return nil
}

func parseProb(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	t = strings.TrimSuffix(t, "%")
	x, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(x) {
		return 0, fmt.Errorf("%q is not a probability (write 0.02 or 2%%)", s)
	}
	if pct {
		x /= 100
	}
	if x < 0 || x > 1 {
		if !pct && x > 1 && x <= 100 {
			return 0, fmt.Errorf("%q is not a probability between 0 and 1 (did you mean %s%%?)", s, t)
		}
		return 0, fmt.Errorf("%q is not a probability between 0 and 1 (0%%..100%%)", s)
	}
	return x, nil
}

// durationValue is a non-negative time.Duration.
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 20ms, 1.5s, 2m)", v)
	}
	if x < 0 {
		return fmt.Errorf("%q: duration must not be negative", v)
	}
	*d = durationValue(x)
	return nil
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	x := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		x /= unit
		if x < unit || u == "TiB" {
			return fmt.Sprintf("%.1f %s", x, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// formatRate gives bytes per second as MiB/s and Mbit/s; both are in use
// (iperf3 reports bits, file tools bytes).
func formatRate(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	bps := float64(bytes) / d.Seconds()
	return fmt.Sprintf("%s/s (%.1f Mbit/s)", formatBytes(int64(bps)), bps*8/1e6)
}

// formatDuration rounds for humans: 3 significant digits or so.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
