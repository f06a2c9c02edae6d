package bench

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Markdown renders the report. charts are file names (relative to the
// report) embedded at the end; pass nil for none.
func Markdown(r *Results, charts []string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.Meta
	w("# tlsgram benchmark (%s mode)\n\n", m.Mode)
	w("%s · %s · %d cores (GOMAXPROCS %d) · %s · kernel %s · %s · %d repetition(s), medians shown · run took %s\n\n",
		m.Date.Format("2006-01-02 15:04 UTC"), nonEmpty(m.CPU, "unknown CPU"), m.Cores, m.GOMAXPROCS, m.OS, nonEmpty(m.Kernel, "?"), m.Go,
		m.Reps, time.Duration(m.Seconds*float64(time.Second)).Round(time.Second))
	if len(m.Modules) > 0 {
		var mods []string
		for k, v := range m.Modules {
			mods = append(mods, k+" "+v)
		}
		sort.Strings(mods)
		w("Modules: %s.\n\n", strings.Join(mods, ", "))
	}
	w("How to read this:\n\n")
	w("- Client and server run in this one process on 127.0.0.1; impaired links put the user-space relay (`internal/impair/relay`, seeded) between them, also in-process. CPU and allocation figures therefore cover both ends (and the relay when there is one).\n")
	w("- Every UDP contender sends Internet-sized datagrams (≤ 1452-byte UDP payloads); TCP segments are clamped to the same size where the contender says so. No loopback-jumbo figures are shown unless a contender's name says `jumbo`.\n")
	w("- The UDP relay is itself a program on the same two cores: on impaired links it forwards at most roughly what raw UDP shows there, and senders without congestion control (raw UDP, pion/dtls) overrun it, so their delivered fraction is low even without loss. The TCP relay moves a byte stream in large reads and is not a comparable ceiling.\n")
	w("- pion/dtls and raw UDP are unreliable: their goodput counts only distinct messages that arrived, with the delivered fraction in parentheses; their lost requests are counted as lost (%% in parentheses), never as latencies.\n")
	w("- `n/a`: the condition cannot apply (a TCP relay cannot drop or reorder segments). `error`/`timeout`: see the notes at the end. p99.9 of fewer than 1000 samples is the maximum and is marked `*`.\n")
	if m.Mode == "quick" {
		w("- Quick mode: short runs and fewer sessions; these numbers prove the suite works, they are noisy.\n")
	}
	w("\n")

	w("## Contenders\n\n| contender | what | max datagram | handshake RTTs (protocol) | settings |\n|---|---|---|---|---|\n")
	for _, c := range r.Contenders {
		kind := "stream"
		if !c.Reliable {
			kind = fmt.Sprintf("messages ≤ %d B", c.Message)
		}
		base := ""
		if c.Baseline {
			base = " (baseline)"
		}
		w("| %s%s | %s, %s/%s | %d | %s | %s |\n", c.Name, base, c.Label, kind, c.Network, c.MaxDatagram, rtts(c.HandshakeRTTs), c.Settings)
	}
	w("\n## Conditions\n\n| condition | link |\n|---|---|\n")
	for _, c := range r.Conditions {
		w("| %s | %s |\n", c.Name, c.Description)
	}
	w("\n")
	if sum := summaryTable(r); sum != "" {
		w("## Summary: %s ÷ each baseline\n\n%s", primary(r), sum)
	}

	conds := r.Conditions
	has := func(m Metric) bool {
		for _, x := range r.Metrics {
			if x == m {
				return true
			}
		}
		return false
	}
	header := func(first string, extra ...string) {
		w("| %s |", first)
		for _, e := range extra {
			w(" %s |", e)
		}
		for _, c := range conds {
			w(" %s |", c.Name)
		}
		w("\n|---|")
		for range extra {
			w("---|")
		}
		for range conds {
			w("---:|")
		}
		w("\n")
	}
	row := func(name string, metric Metric, extra []string, f func(*Summary) string) {
		w("| %s |", name)
		for _, e := range extra {
			w(" %s |", e)
		}
		for _, cond := range conds {
			w(" %s |", cellText(r.Cell(name, cond.Name, metric), f))
		}
		w("\n")
	}
	reliable := map[string]bool{}
	for _, c := range r.Contenders {
		reliable[c.Name] = c.Reliable
	}

	if has(MetricBulk) {
		w("## Bulk one-way goodput, MB/s (10⁶ B/s)\n\n")
		w("Bytes the receiver got within the %s sending window ÷ the window. Afterwards the stream is ended and must arrive completely within %s (else ‡).\n\n",
			r.Meta.Options["bulk_window"], r.Meta.Options["bulk_drain"])
		header("contender")
		for _, c := range r.Contenders {
			rel := c.Reliable
			row(c.Name, MetricBulk, nil, func(s *Summary) string {
				if rel {
					return fnum(s.MBps)
				}
				return fmt.Sprintf("%s (%s delivered)", fnum(s.MBps), pct(s.Fraction))
			})
		}
		w("\n### CPU and allocations per byte (both ends; impaired links include the relay)\n\n")
		w("Process CPU seconds per GB received / heap allocations per MB received, during the window.\n\n")
		header("contender")
		for _, c := range r.Contenders {
			row(c.Name, MetricBulk, nil, func(s *Summary) string {
				return fmt.Sprintf("%s s · %s", fnum(s.CPUPerGB), fnum(s.AllocsPerMB))
			})
		}
		w("\n")
		ratioTable(&b, r, MetricBulk, "Throughput ratios, every contender", "MB/s of the contender ÷ MB/s of the baseline, same repetition; > 1 is faster.")
	}
	for _, lm := range []struct {
		m     Metric
		title string
	}{{MetricRR64, "64 B"}, {MetricRR1K, "1 KiB"}} {
		if !has(lm.m) {
			continue
		}
		w("## Request/response latency, %s messages: p50 / p99 / p99.9 ms\n\n", lm.title)
		header("contender")
		for _, c := range r.Contenders {
			rel := c.Reliable
			row(c.Name, lm.m, nil, func(s *Summary) string { return latText(s, !rel) })
		}
		w("\n### CPU per request/response, %s: µs, both ends (impaired links include the relay)\n\n", lm.title)
		header("contender")
		for _, c := range r.Contenders {
			row(c.Name, lm.m, nil, cpuPerRTText)
		}
		w("\n")
		ratioTable(&b, r, lm.m, fmt.Sprintf("Latency ratios, %s, every contender", lm.title), "p50 of the contender ÷ p50 of the baseline, same repetition; < 1 is faster.")
	}
	if has(MetricLoadedPing) {
		writeLoadedPing(&b, r)
	}
	if has(MetricHandshake) {
		w("## Handshake: dial → first echoed byte, p50 / p99 ms\n\n")
		w("`RTTs` is what the protocol needs before the client may send (plus one for the echo); `measured` is p50 on rtt20 ÷ 20 ms, which includes the echo and CPU time. The TCP relay terminates TCP and delays only the bytes, so TCP's own SYN round trip is not on the delayed path: add one RTT to tls13-tcp on impaired links for a real path.\n\n")
		header("contender", "RTTs", "measured")
		for _, c := range r.Contenders {
			measured := "—"
			for _, cond := range conds {
				if cond.Name == "rtt20" {
					if x := r.Cell(c.Name, cond.Name, MetricHandshake); x != nil && x.Median != nil && x.Median.P50 > 0 {
						measured = fmt.Sprintf("%.1f", x.Median.P50/float64(cond.RTT().Milliseconds()))
					}
				}
			}
			row(c.Name, MetricHandshake, []string{rtts(c.HandshakeRTTs) + " + 1", measured}, func(s *Summary) string {
				t := fmt.Sprintf("%s / %s", fms(s.P50), fms(s.P99))
				if s.Lost > 0 {
					t += fmt.Sprintf(" (%d failed)", s.Lost)
				}
				return t
			})
		}
		w("\n")
	}
	if has(MetricIdle) || has(MetricRate) || has(MetricConcurrent) {
		w("## Sessions (clean loopback only: these measure the implementation, a relay would measure itself)\n\n")
		w("| contender | memory / idle session | goroutines / session | handshakes/s, sequential | handshakes/s, parallel | concurrent sessions: ok, time to last echo, p50 / p99 |\n|---|---:|---:|---:|---:|---:|\n")
		clean := ""
		var failures []string
		for _, cond := range conds {
			if cond.Clean() {
				clean = cond.Name
			}
		}
		for _, c := range r.Contenders {
			idle := cellText(r.Cell(c.Name, clean, MetricIdle), func(s *Summary) string { return kib(s.IdleBytes) })
			gor := cellText(r.Cell(c.Name, clean, MetricIdle), func(s *Summary) string { return fnum(s.IdleGoroutines) })
			seq := cellText(r.Cell(c.Name, clean, MetricRate), func(s *Summary) string { return fnum(s.RateSeq) })
			par := cellText(r.Cell(c.Name, clean, MetricRate), func(s *Summary) string {
				return fmt.Sprintf("%s (×%d)", fnum(s.RatePar), s.RateWorkers)
			})
			conc := cellText(r.Cell(c.Name, clean, MetricConcurrent), func(s *Summary) string {
				return fmt.Sprintf("%d/%d, %s s, %s / %s ms", s.ConcOK, s.ConcTarget, fnum(s.ConcSeconds), fnum(s.ConcP50), fnum(s.ConcP99))
			})
			w("| %s | %s | %s | %s | %s | %s |\n", c.Name, idle, gor, seq, par, conc)
			if x := r.Cell(c.Name, clean, MetricConcurrent); x != nil {
				for _, rep := range x.Reps {
					if rep.Concurrent != nil && rep.Concurrent.FirstError != "" {
						failures = append(failures, fmt.Sprintf("%s: %d of %d — first error: %s", c.Name,
							rep.Concurrent.Target-rep.Concurrent.OK, rep.Concurrent.Target, oneLine(rep.Concurrent.FirstError)))
						break
					}
				}
			}
		}
		w("\nMemory is live heap plus goroutine stacks per session, client and server end together (kernel socket buffers not included). Handshakes per second count dial, TLS (or DTLS) handshake, one echoed byte; clients run in the same process.\n\n")
		if len(failures) > 0 {
			w("Concurrent sessions that failed (in the first repetition that had failures):\n\n- %s\n\n", strings.Join(failures, "\n- "))
		}
	}
	if len(charts) > 0 {
		w("## Charts\n\n")
		for _, c := range charts {
			w("![%s](%s)\n\n", strings.TrimSuffix(path.Base(c), path.Ext(c)), c)
		}
	}
	var notes []string
	for _, x := range r.Cells {
		if x.Status != "ok" && x.Status != "n/a" && x.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s / %s / %s: **%s** — %s", x.Contender, x.Condition, x.Metric, x.Status, oneLine(x.Note)))
		}
		if x.Warning != "" {
			notes = append(notes, fmt.Sprintf("- %s / %s / %s: ‡ %s", x.Contender, x.Condition, x.Metric, oneLine(x.Warning)))
		}
	}
	if len(notes) > 0 {
		w("## Notes on failed and marked cells\n\n† some repetitions failed; ‡ succeeded with a caveat.\n\n%s\n", strings.Join(notes, "\n"))
	}
	return b.String()
}

// SummaryMarkdown is the short form of the report for the project's README: the run, the
// summary table, the absolute goodput and 64 B latency tables folded below it, and the charts
// (file names relative to the README).
func SummaryMarkdown(r *Results, charts []string) string {
	var b strings.Builder
	m := r.Meta
	fmt.Fprintf(&b, "%s run of %s · %s · %d cores · %s · %s · %d repetition(s), medians · took %s.\n\n",
		m.Mode, m.Date.Format("2006-01-02 15:04 UTC"), nonEmpty(m.CPU, "unknown CPU"), m.Cores, m.OS, m.Go, m.Reps,
		time.Duration(m.Seconds*float64(time.Second)).Round(time.Second))
	b.WriteString(summaryTable(r))
	full := Markdown(r, nil)
	for _, t := range []string{"## Bulk one-way goodput", "## Request/response latency, 64 B", "## Handshake"} {
		sec := sectionOf(full, t)
		if sec == "" {
			continue
		}
		title, body, _ := strings.Cut(sec, "\n")
		fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n%s\n\n</details>\n\n", strings.TrimPrefix(title, "## "), strings.TrimSpace(body))
	}
	for _, c := range charts {
		fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(path.Base(c), path.Ext(c)), c)
	}
	return b.String()
}

// sectionOf returns the "## " section of md whose heading starts with title, up to the next
// "## " heading or folded block, without its sub-sections ("### ").
func sectionOf(md, title string) string {
	i := strings.Index(md, "\n"+title)
	if i < 0 {
		return ""
	}
	s := md[i+1:]
	for _, end := range []string{"\n## ", "\n### ", "\n<details>"} {
		if j := strings.Index(s, end); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

func ratioTable(b *strings.Builder, r *Results, m Metric, title, explain string) {
	bases := r.Baselines()
	if len(bases) == 0 {
		return
	}
	// Folded: the summary table above says what most readers want; this is the detail.
	fmt.Fprintf(b, "<details><summary>%s</summary>\n\n%s\n\n| contender ÷ baseline |", title, explain)
	for _, c := range r.Conditions {
		fmt.Fprintf(b, " %s |", c.Name)
	}
	b.WriteString("\n|---|")
	for range r.Conditions {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, c := range r.Contenders {
		if c.Baseline {
			continue
		}
		for _, base := range bases {
			fmt.Fprintf(b, "| %s ÷ %s |", c.Name, base)
			for _, cond := range r.Conditions {
				x := r.Cell(c.Name, cond.Name, m)
				v, ok := 0.0, false
				if x != nil {
					v, ok = x.Ratios[base]
				}
				switch {
				case ok:
					fmt.Fprintf(b, " %s |", fnum(v))
				case x != nil && x.Status == "n/a":
					b.WriteString(" n/a |")
				default:
					if bx := r.Cell(base, cond.Name, m); bx != nil && bx.Status == "n/a" {
						b.WriteString(" n/a |")
					} else {
						b.WriteString(" — |")
					}
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n</details>\n\n")
}

// primary is the contender the report is about: tlsgram, or else the first that is not a
// baseline.
func primary(r *Results) string {
	first := ""
	for _, c := range r.Contenders {
		if c.Name == "tlsgram" {
			return c.Name
		}
		if first == "" && !c.Baseline {
			first = c.Name
		}
	}
	return first
}

// summaryMetrics are the rows of the summary table, with which way is better.
var summaryMetrics = []struct {
	m      Metric
	name   string
	higher bool // a higher ratio is better for the contender
}{
	{MetricBulk, "goodput", true},
	{MetricRR64, "latency p50, 64 B", false},
	{MetricRR1K, "latency p50, 1 KiB", false},
	{MetricHandshake, "handshake p50", false},
}

// behindBy is how far a ratio must be on the wrong side of 1 to be shown in bold as "behind".
const behindBy = 0.10

// summaryTable is one table of the primary contender ÷ each baseline, metric by metric, or ""
// if the run has no ratios. Cells where the contender is behind by more than 10% are bold.
func summaryTable(r *Results) string {
	name := primary(r)
	bases := r.Baselines()
	var b strings.Builder
	rows := 0
	for _, sm := range summaryMetrics {
		for _, base := range bases {
			var cells []string
			any := false
			for _, cond := range r.Conditions {
				x := r.Cell(name, cond.Name, sm.m)
				v, ok := 0.0, false
				if x != nil {
					v, ok = x.Ratios[base]
				}
				switch {
				case ok:
					any = true
					t := fnum(v)
					if sm.higher && v < 1-behindBy || !sm.higher && v > 1+behindBy {
						t = "**" + t + "**"
					}
					cells = append(cells, t)
				case x != nil && x.Status == "n/a", r.Cell(base, cond.Name, sm.m) != nil && r.Cell(base, cond.Name, sm.m).Status == "n/a":
					cells = append(cells, "n/a")
				default:
					cells = append(cells, "—")
				}
			}
			if !any {
				continue
			}
			better := "> 1: faster"
			if !sm.higher {
				better = "< 1: faster"
			}
			fmt.Fprintf(&b, "| %s (%s) | %s | %s |\n", sm.name, better, base, strings.Join(cells, " | "))
			rows++
		}
	}
	if rows == 0 {
		return ""
	}
	var h strings.Builder
	fmt.Fprintf(&h, "%s's median ÷ the baseline's, same repetition. **Bold**: %s is behind by more than %.0f%%. Every contender's ratios are folded under each table below.\n\n",
		name, name, 100*behindBy)
	h.WriteString("| metric | baseline |")
	for _, c := range r.Conditions {
		fmt.Fprintf(&h, " %s |", c.Name)
	}
	h.WriteString("\n|---|---|")
	for range r.Conditions {
		h.WriteString("---:|")
	}
	h.WriteString("\n")
	return h.String() + b.String() + "\n"
}

func cellText(x *Cell, f func(*Summary) string) string {
	if x == nil {
		return "—"
	}
	mark := ""
	if x.Warning != "" {
		mark = " ‡"
	}
	switch x.Status {
	case "ok":
		return f(x.Median) + mark
	case "partial":
		return f(x.Median) + " †" + mark
	case "n/a":
		return "n/a"
	}
	return x.Status
}

func latText(s *Summary, unreliable bool) string {
	p999 := fms(s.P999)
	if s.N < 1000 {
		p999 += "*"
	}
	t := fmt.Sprintf("%s / %s / %s", fms(s.P50), fms(s.P99), p999)
	if unreliable || s.Lost > 0 {
		t += fmt.Sprintf(" (%s lost)", pct(float64(s.Lost)/float64(max(1, s.N+s.Lost))))
	}
	return t
}

// fnum prints 3 significant digits without exponent for usual magnitudes.
func fnum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	case math.Abs(v) >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func fms(ms float64) string { return fnum(ms) }

func rtts(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func pct(f float64) string {
	switch {
	case f >= 0.9995 && f <= 1:
		return "100%"
	case f >= 0.1:
		return fmt.Sprintf("%.1f%%", 100*f)
	}
	return fmt.Sprintf("%.2g%%", 100*f)
}

func kib(b float64) string { return fnum(b/1024) + " KiB" }

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
