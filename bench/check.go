package bench

import "fmt"

// Check asserts that a run produced sane results — not fast ones. On the
// clean link every measurement of every contender must have succeeded,
// every reliable contender must have delivered every byte it sent, and
// every unreliable one something; everywhere, throughput is positive and
// latency percentiles are ordered p50 ≤ p99 ≤ p99.9. Failures on impaired
// links are returned separately as warnings: they are findings about a
// contender, not a broken suite.
func Check(r *Results) (problems, warnings []string) {
	reliable := map[string]bool{}
	for _, c := range r.Contenders {
		reliable[c.Name] = c.Reliable
	}
	clean := map[string]bool{}
	for _, c := range r.Conditions {
		clean[c.Name] = c.Clean()
	}
	for _, x := range r.Cells {
		where := fmt.Sprintf("%s / %s / %s", x.Contender, x.Condition, x.Metric)
		switch x.Status {
		case "n/a":
			continue
		case "skipped":
			problems = append(problems, where+": skipped (run budget exhausted)")
			continue
		case "ok", "partial":
		default:
			if clean[x.Condition] {
				problems = append(problems, fmt.Sprintf("%s: %s: %s", where, x.Status, x.Note))
			} else {
				warnings = append(warnings, fmt.Sprintf("%s: %s: %s", where, x.Status, x.Note))
			}
			continue
		}
		if x.Status == "partial" {
			msg := fmt.Sprintf("%s: partial: %s", where, x.Note)
			if clean[x.Condition] {
				problems = append(problems, msg)
			} else {
				warnings = append(warnings, msg)
			}
		}
		for i, rep := range x.Reps {
			if rep.Status != "ok" {
				continue
			}
			w := fmt.Sprintf("%s rep %d", where, i+1)
			if b := rep.Bulk; b != nil {
				if b.MBps <= 0 || b.Delivered <= 0 {
					problems = append(problems, w+": no throughput")
				}
				switch {
				case !reliable[x.Contender]:
				case b.Drained && b.Delivered != b.Sent:
					problems = append(problems, fmt.Sprintf("%s: reliable contender delivered %d of %d bytes", w, b.Delivered, b.Sent))
				case !b.Drained && clean[x.Condition]:
					problems = append(problems, fmt.Sprintf("%s: reliable contender did not deliver everything on a clean link: %s", w, rep.Warning))
				case !b.Drained:
					warnings = append(warnings, fmt.Sprintf("%s: %s", w, rep.Warning))
				}
				if b.Fraction > 1 {
					problems = append(problems, fmt.Sprintf("%s: delivered fraction %.3f > 1", w, b.Fraction))
				}
			}
			if l := rep.Latency; l != nil {
				if l.N == 0 {
					problems = append(problems, w+": no samples")
				}
				if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
					problems = append(problems, fmt.Sprintf("%s: percentiles out of order: p50 %.3f p99 %.3f p99.9 %.3f max %.3f", w, l.P50, l.P99, l.P999, l.Max))
				}
			}
			// Refusing some of many simultaneous clients is a finding about
			// the contender (quic-go refuses beyond its handshake queue),
			// not a broken suite; refusing all of them is an error above.
			if c := rep.Concurrent; c != nil && c.OK < c.Target {
				warnings = append(warnings, fmt.Sprintf("%s: %d of %d concurrent sessions succeeded (%s)", w, c.OK, c.Target, c.FirstError))
			}
			if rt := rep.Rate; rt != nil && rt.Sequential <= 0 {
				problems = append(problems, w+": no handshakes per second")
			}
			if id := rep.Idle; id != nil && id.Sessions <= 0 {
				problems = append(problems, w+": no idle sessions")
			}
		}
	}
	return problems, warnings
}
