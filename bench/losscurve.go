package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LossCurveRates are the random loss rates (each way, 20 ms RTT) of the goodput-versus-loss curve.
var LossCurveRates = []float64{0, 0.01, 0.02, 0.05, 0.10}

// LossCurveContenders are the contenders drawn, when registered: the picture users look at
// first — how each transport's goodput falls as a path gets lossier.
var LossCurveContenders = []string{"tlsgram", "tlsgram-cubic", "quic-go", "kcp-go"}

// LossCurveFile is the chart's file name.
const LossCurveFile = "losscurve.svg"

// LossPoint is the median bulk goodput of one contender at one loss rate.
type LossPoint struct {
	Contender string
	Loss      float64
	MBps      float64 // 0: failed
	Err       string  `json:",omitempty"`
}

func lossCondition(loss float64) Condition {
	i := Impairment{Delay: halfRTT20, Loss: loss}
	return cond(fmt.Sprintf("rtt20-loss%g", 100*loss), fmt.Sprintf("20 ms RTT, %g%% random loss each way", 100*loss), i)
}

// RunLossCurve measures bulk goodput for LossCurveContenders at LossCurveRates, reps times each.
func RunLossCurve(ctx context.Context, reps int, dur, drain time.Duration, seed int64, log io.Writer) []LossPoint {
	var out []LossPoint
	for _, name := range LossCurveContenders {
		c, ok := Lookup(name)
		if !ok {
			continue
		}
		for _, loss := range LossCurveRates {
			var rates []float64
			p := LossPoint{Contender: name, Loss: loss}
			for rep := range reps {
				b, err := MeasureBulk(ctx, c, lossCondition(loss), seed+int64(rep), dur, drain)
				if err != nil {
					p.Err = err.Error()
				} else {
					rates = append(rates, b.MBps)
				}
				if log != nil {
					fmt.Fprintf(log, "loss curve rep %d/%d %-14s loss %4.1f%%: %.2f MB/s %s\n", rep+1, reps, name, 100*loss, b.MBps, p.Err)
				}
			}
			if len(rates) > 0 {
				sort.Float64s(rates)
				p.MBps = rates[len(rates)/2]
				p.Err = ""
			}
			out = append(out, p)
		}
	}
	return out
}

// WriteLossCurve appends the curve's table to w and writes the chart into dir.
func WriteLossCurve(w io.Writer, dir string, pts []LossPoint) error {
	if len(pts) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n## Goodput versus random loss (20 ms RTT), MB/s\n\nMedian bulk goodput over the repetitions; loss applies each way.\n\n![goodput versus loss](%s)\n\n", LossCurveFile)
	var names []string
	byName := map[string]map[float64]LossPoint{}
	for _, p := range pts {
		if byName[p.Contender] == nil {
			byName[p.Contender] = map[float64]LossPoint{}
			names = append(names, p.Contender)
		}
		byName[p.Contender][p.Loss] = p
	}
	head := []string{"contender"}
	for _, l := range LossCurveRates {
		head = append(head, fmt.Sprintf("%g%%", 100*l))
	}
	fmt.Fprintf(w, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(LossCurveRates)))
	for _, n := range names {
		row := []string{n}
		for _, l := range LossCurveRates {
			p, ok := byName[n][l]
			switch {
			case !ok:
				row = append(row, "")
			case p.Err != "":
				row = append(row, "error")
			default:
				row = append(row, fmt.Sprintf("%.3g", p.MBps))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	return os.WriteFile(filepath.Join(dir, LossCurveFile), []byte(lossCurveSVG(names, byName)), 0o644)
}

// lossCurveSVG draws one line per contender: loss rate across, goodput up on a log scale (the
// values span three decades).
func lossCurveSVG(names []string, byName map[string]map[float64]LossPoint) string {
	const w, h, left, right, top, bottom = 720, 420, 70, 150, 30, 50
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range byName {
		for _, p := range m {
			if p.MBps > 0 {
				lo, hi = min(lo, p.MBps), max(hi, p.MBps)
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0.1, 100
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	maxLoss := LossCurveRates[len(LossCurveRates)-1]
	x := func(l float64) float64 { return left + (w-left-right)*l/maxLoss }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(math.Log10(v)-d0)/(d1-d0)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Bulk goodput vs random loss each way, 20 ms RTT (MB/s, log scale)</text>`+"\n", left)
	for d := d0; d <= d1; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	for _, l := range LossCurveRates {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%g%%</text>`+"\n",
			x(l), x(l), top, h-bottom, x(l), h-bottom+18, 100*l)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">random loss each way</text>`+"\n", (left+w-right)/2, h-12)
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}
	for i, n := range names {
		col := colors[i%len(colors)]
		var path []string
		for _, l := range LossCurveRates {
			if p, ok := byName[n][l]; ok && p.MBps > 0 {
				path = append(path, fmt.Sprintf("%.1f,%.1f", x(l), y(p.MBps)))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(l), y(p.MBps), col)
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(path, " "))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+10, w-right+30, top+20*i+10, top+20*i+10, col, w-right+35, top+20*i+14, n)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
