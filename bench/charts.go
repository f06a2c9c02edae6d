package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is colour-blind safe (Okabe–Ito).
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{0, 158, 115, 255},   // green
	color.RGBA{204, 121, 167, 255}, // purple
	color.RGBA{86, 180, 233, 255},  // sky
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{240, 228, 66, 255},  // yellow
	color.RGBA{0, 0, 0, 255},       // black
}

var grey = color.RGBA{110, 110, 110, 255}

// Chart geometry. Contenders are rows (names read horizontally, so long names never collide
// with each other, as rotated column labels did), values run along a log axis (tlsgram's
// 0.7 MB/s on a lossy path and an unreliable sender's 118 MB/s both stay readable), and
// values are printed in the row label, never on the plot, where they would collide or be cut.
const (
	chartCols      = 2
	panelWidth     = 11 * vg.Centimeter
	rowHeight      = 0.85 * vg.Centimeter // per contender: well above the 7-point label height
	panelOverhead  = 2.6 * vg.Centimeter  // title, axis and tick labels of one panel
	legendHeight   = 1.4 * vg.Centimeter
	labelFontSize  = 7
	titleFontSize  = 10
	legendFontSize = 8
)

// WriteCharts draws the charts as SVG files in dir and returns their
// file names. SVG keeps them small enough to commit next to the README.
func WriteCharts(r *Results, dir string) ([]string, error) {
	return WriteChartsAs(r, dir, "svg")
}

// WriteChartsAs is WriteCharts with the format chosen: "svg" or "png".
func WriteChartsAs(r *Results, dir, format string) ([]string, error) {
	var names []string
	has := func(m Metric) bool {
		for _, x := range r.Metrics {
			if x == m {
				return true
			}
		}
		return false
	}
	charts := []struct {
		m    Metric
		file string
	}{
		{MetricBulk, "throughput." + format},
		{MetricRR64, "latency-64B." + format},
		{MetricRR1K, "latency-1KiB." + format},
		{MetricHandshake, "handshake." + format},
	}
	for _, ch := range charts {
		if !has(ch.m) {
			continue
		}
		var f figure
		if ch.m == MetricBulk {
			f = throughputFigure(r)
		} else {
			f = latencyFigure(r, ch.m)
		}
		if err := f.write(filepath.Join(dir, ch.file)); err != nil {
			return names, fmt.Errorf("%s: %w", ch.file, err)
		}
		names = append(names, ch.file)
	}
	return names, nil
}

// figure is a grid of panels (one per condition) above one legend for all of them: a legend
// inside a panel would cover data.
type figure struct {
	panels []*plot.Plot
	rows   int // contenders per panel
	legend plot.Legend
}

func (f figure) write(path string) error {
	n := len(f.panels)
	if n == 0 {
		return nil
	}
	cols := min(chartCols, n)
	gridRows := (n + cols - 1) / cols
	panelHeight := vg.Length(f.rows)*rowHeight + panelOverhead
	w := vg.Length(cols) * panelWidth
	h := vg.Length(gridRows)*panelHeight + legendHeight
	var img interface {
		vg.CanvasSizer
		io.WriterTo
	}
	if strings.HasSuffix(path, ".png") {
		img = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	} else {
		img = vgsvg.New(w, h)
	}
	dc := draw.New(img)
	// White background: the SVG is shown on dark pages too.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	grid := draw.Crop(dc, 0, 0, legendHeight, 0)
	plots := make([][]*plot.Plot, gridRows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	for i, p := range f.panels {
		plots[i/cols][i%cols] = p
	}
	t := draw.Tiles{Rows: gridRows, Cols: cols, PadX: vg.Centimeter, PadY: 0.6 * vg.Centimeter,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5}
	canvases := plot.Align(plots, t, grid)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	legend := draw.Crop(dc, 3*vg.Millimeter, 0, 2*vg.Millimeter, -(h - legendHeight))
	f.legend.Draw(legend)

	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(file); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// chartFont is Liberation Sans, metric-compatible with Arial and Helvetica: a viewer without
// it substitutes a font of the same widths, so labels keep the room measured for them.
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

func styled(size float64) font.Font {
	f := chartFont
	f.Size = vg.Points(size)
	return f
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = styled(legendFontSize)
	l.Top, l.Left = true, true
	return l
}

// newPanel is one condition's panel: contenders as rows, first at the top, labelled by label.
func newPanel(title string, labels []string, xLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = styled(titleFontSize)
	rows := make([]string, len(labels))
	for i, l := range labels {
		rows[len(labels)-1-i] = l // NominalY counts from the bottom
	}
	p.NominalY(rows...)
	p.Y.Tick.Label.Font = styled(labelFontSize)
	// Room between the labels and the marks, should a viewer's font run wider.
	p.Y.Padding = vg.Points(10)
	p.X.Label.Text = xLabel
	p.X.Label.TextStyle.Font = styled(labelFontSize + 1)
	p.X.Tick.Label.Font = styled(labelFontSize)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0 // rows need no lines across
	p.Add(grid)
	return p
}

// rowY is the y of contender i (of n) in a panel made by newPanel.
func rowY(i, n int) float64 { return float64(n - 1 - i) }

// logRange pads [lo, hi] so that marks do not sit on the panel's edge: by a tenth of the span
// in decades, at least 0.05 decade (12%).
func logRange(lo, hi float64) (float64, float64) {
	if math.IsInf(lo, 1) || lo <= 0 {
		return 0.01, 1
	}
	f := math.Pow(10, math.Max(0.05, 0.1*math.Log10(hi/lo)))
	return lo / f, hi * f
}

// throughputFigure: MB/s per contender on a log axis, a stem from the axis to a dot. The row
// label carries the value; unreliable contenders get a hollow dot and the share of what they
// sent that arrived.
func throughputFigure(r *Results) figure {
	n := len(r.Contenders)
	f := figure{rows: n, legend: newLegend()}
	var reliableKey, unreliableKey *plotter.Scatter
	for _, cond := range r.Conditions {
		labels := make([]string, n)
		lo, hi := math.Inf(1), math.Inf(-1)
		type mark struct {
			y, v     float64
			reliable bool
			color    color.Color
		}
		var marks []mark
		for i, c := range r.Contenders {
			x := r.Cell(c.Name, cond.Name, MetricBulk)
			switch {
			case x == nil:
				labels[i] = c.Name + "  —"
			case x.Median != nil && x.Median.MBps > 0:
				v := x.Median.MBps
				labels[i] = c.Name + "  " + fnum(v)
				if !c.Reliable {
					labels[i] += " (" + pct(x.Median.Fraction) + " arrived)"
				}
				if x.Warning != "" {
					labels[i] += " ‡"
				}
				marks = append(marks, mark{rowY(i, n), v, c.Reliable, palette[i%len(palette)]})
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			default:
				labels[i] = c.Name + "  " + x.Status
			}
		}
		p := newPanel(cond.Name, labels, "MB/s (log scale)")
		p.X.Min, p.X.Max = logRange(lo, hi)
		for _, m := range marks {
			stem, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: m.y}, {X: m.v, Y: m.y}})
			if err != nil {
				continue
			}
			stem.Color = m.color
			stem.Width = vg.Points(2)
			p.Add(stem)
			dot, err := plotter.NewScatter(plotter.XYs{{X: m.v, Y: m.y}})
			if err != nil {
				continue
			}
			dot.GlyphStyle.Color = m.color
			dot.GlyphStyle.Radius = vg.Points(3.5)
			dot.GlyphStyle.Shape = draw.CircleGlyph{}
			if !m.reliable {
				dot.GlyphStyle.Shape = draw.RingGlyph{}
				if unreliableKey == nil {
					k := *dot
					k.GlyphStyle.Color = grey
					unreliableKey = &k
				}
			} else if reliableKey == nil {
				k := *dot
				k.GlyphStyle.Color = grey
				reliableKey = &k
			}
			p.Add(dot)
		}
		f.panels = append(f.panels, p)
	}
	if reliableKey != nil {
		f.legend.Add("reliable stream: MB/s the receiver got", reliableKey)
	}
	if unreliableKey != nil {
		f.legend.Add("unreliable messages (no retransmission): MB/s that arrived, and their share of what was sent", unreliableKey)
	}
	return f
}

// latencyFigure: p50, p99 and p99.9 (handshake: p50, p99) per contender on a log axis.
func latencyFigure(r *Results, m Metric) figure {
	n := len(r.Contenders)
	f := figure{rows: n, legend: newLegend()}
	type series struct {
		name  string
		get   func(*Summary) float64
		shape draw.GlyphDrawer
		off   float64
	}
	ss := []series{
		{"p50", func(s *Summary) float64 { return s.P50 }, draw.CircleGlyph{}, 0.22},
		{"p99", func(s *Summary) float64 { return s.P99 }, draw.TriangleGlyph{}, 0},
		{"p99.9 (the maximum when fewer than 1000 samples)", func(s *Summary) float64 { return s.P999 }, draw.CrossGlyph{}, -0.22},
	}
	if m == MetricHandshake {
		ss = ss[:2]
	}
	keys := make([]*plotter.Scatter, len(ss))
	for _, cond := range r.Conditions {
		labels := make([]string, n)
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, c := range r.Contenders {
			labels[i] = c.Name
			x := r.Cell(c.Name, cond.Name, m)
			switch {
			case x == nil:
				labels[i] += "  —"
			case x.Median == nil:
				labels[i] += "  " + x.Status
			default:
				for _, s := range ss {
					if v := s.get(x.Median); v > 0 {
						lo, hi = math.Min(lo, v), math.Max(hi, v)
					}
				}
				switch s := x.Median; {
				case m == MetricHandshake && s.Lost > 0:
					labels[i] += fmt.Sprintf(" (%d failed)", s.Lost)
				case m != MetricHandshake && (!c.Reliable || s.Lost > 0):
					labels[i] += fmt.Sprintf(" (%s lost)", pct(float64(s.Lost)/float64(max(1, s.N+s.Lost))))
				}
			}
		}
		p := newPanel(cond.Name, labels, "ms (log scale)")
		p.X.Min, p.X.Max = logRange(lo, hi)
		for si, s := range ss {
			var pts plotter.XYs
			for i, c := range r.Contenders {
				x := r.Cell(c.Name, cond.Name, m)
				if x == nil || x.Median == nil {
					continue
				}
				if v := s.get(x.Median); v > 0 {
					pts = append(pts, plotter.XY{X: v, Y: rowY(i, n) + s.off})
				}
			}
			if len(pts) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				continue
			}
			sc.GlyphStyle.Shape = s.shape
			sc.GlyphStyle.Radius = vg.Points(2.5)
			sc.GlyphStyle.Color = palette[si%len(palette)]
			p.Add(sc)
			if keys[si] == nil {
				keys[si] = sc
			}
		}
		f.panels = append(f.panels, p)
	}
	for si, s := range ss {
		if keys[si] != nil {
			f.legend.Add(s.name, keys[si])
		}
	}
	return f
}

// logTicks labels a log axis so that it always has a few labels and they never crowd: across
// more than three decades only powers of ten, across more than one 1-2-5 steps (gonum's
// LogTicks labels powers of ten only, so a panel within one decade would have none), within a
// decade every digit, and within a narrow range (20 to 23 ms) steps of a linear axis.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	span := math.Log10(hi / lo)
	if span < 0.3 {
		return linearTicks(lo, hi)
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			switch {
			case m == 1, span <= 1, span <= 3 && (m == 2 || m == 5):
				t.Label = strconv.FormatFloat(v, 'g', 4, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// linearTicks labels about five evenly spaced round values between lo and hi.
func linearTicks(lo, hi float64) []plot.Tick {
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
	}
	return ticks
}
