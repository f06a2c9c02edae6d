package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is colour-blind safe (Okabe–Ito), one colour per contender.
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
	type chart struct {
		m    Metric
		file string
		draw func(*Results, Condition, Metric) *plot.Plot
	}
	charts := []chart{
		{MetricBulk, "throughput." + format, throughputPlot},
		{MetricRR64, "latency-64B." + format, latencyPlot},
		{MetricRR1K, "latency-1KiB." + format, latencyPlot},
		{MetricHandshake, "handshake." + format, latencyPlot},
	}
	for _, ch := range charts {
		if !has(ch.m) {
			continue
		}
		if err := tiles(r, ch.m, filepath.Join(dir, ch.file), ch.draw); err != nil {
			return names, fmt.Errorf("%s: %w", ch.file, err)
		}
		names = append(names, ch.file)
	}
	return names, nil
}

// tiles draws one panel per condition, three panels per row.
func tiles(r *Results, m Metric, path string, draw1 func(*Results, Condition, Metric) *plot.Plot) error {
	n := len(r.Conditions)
	if n == 0 {
		return nil
	}
	cols := min(3, n)
	rows := (n + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	for i, cond := range r.Conditions {
		plots[i/cols][i%cols] = draw1(r, cond, m)
	}
	w, h := vg.Length(cols)*8*vg.Centimeter, vg.Length(rows)*8*vg.Centimeter
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
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newPlot(title string, names []string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(10)
	if len(names) > 0 {
		p.NominalX(names...)
	}
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = vg.Points(7)
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	p.Y.Label.TextStyle.Font.Size = vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

func contenderNames(r *Results) []string {
	names := make([]string, len(r.Contenders))
	for i, c := range r.Contenders {
		names[i] = c.Name
	}
	return names
}

// throughputPlot: one bar per contender, MB/s; n/a and failed cells have
// no bar and say so in the axis label.
func throughputPlot(r *Results, cond Condition, m Metric) *plot.Plot {
	names := contenderNames(r)
	labels := make([]string, len(names))
	p := newPlot(cond.Name, nil)
	p.Y.Label.Text = "MB/s"
	for i, name := range names {
		labels[i] = name
		x := r.Cell(name, cond.Name, m)
		v, text := 0.0, ""
		switch {
		case x == nil:
		case x.Median != nil:
			v, text = x.Median.MBps, fnum(x.Median.MBps)
			if !r.Contenders[i].Reliable {
				text += " (" + pct(x.Median.Fraction) + ")"
			}
		default:
			labels[i] = name + " (" + x.Status + ")"
		}
		vals := make(plotter.Values, len(names))
		vals[i] = v
		bars, err := plotter.NewBarChart(vals, vg.Points(14))
		if err != nil {
			continue
		}
		bars.Color = palette[i%len(palette)]
		bars.LineStyle.Width = 0
		p.Add(bars)
		if v > 0 {
			// The value on top of the bar: a fast contender must not make
			// a slow one's bar unreadable.
			lab, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    []plotter.XY{{X: float64(i), Y: v}},
				Labels: []string{text},
			})
			if err == nil {
				for k := range lab.TextStyle {
					lab.TextStyle[k].Font.Size = vg.Points(6)
					lab.TextStyle[k].XAlign = draw.XCenter
				}
				lab.Offset = vg.Point{Y: vg.Points(2)}
				p.Add(lab)
			}
		}
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	p.Y.Max *= 1.1
	return p
}

// logTicks labels 1-2-5 steps of every decade a log axis spans (gonum's
// LogTicks labels powers of ten only, so a panel within one decade would
// have no labels at all).
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = fnum(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// latencyPlot: p50, p99 and p99.9 per contender on a log scale.
func latencyPlot(r *Results, cond Condition, m Metric) *plot.Plot {
	names := contenderNames(r)
	labels := make([]string, len(names))
	p := newPlot(cond.Name, nil)
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	type series struct {
		name  string
		get   func(*Summary) float64
		shape draw.GlyphDrawer
		off   float64
	}
	ss := []series{
		{"p50", func(s *Summary) float64 { return s.P50 }, draw.CircleGlyph{}, -0.2},
		{"p99", func(s *Summary) float64 { return s.P99 }, draw.TriangleGlyph{}, 0},
		{"p99.9", func(s *Summary) float64 { return s.P999 }, draw.CrossGlyph{}, 0.2},
	}
	if m == MetricHandshake {
		ss = ss[:2]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for si, s := range ss {
		var pts plotter.XYs
		for i, name := range names {
			labels[i] = name
			x := r.Cell(name, cond.Name, m)
			if x == nil || x.Median == nil {
				if x != nil {
					labels[i] = name + " (" + x.Status + ")"
				}
				continue
			}
			if v := s.get(x.Median); v > 0 {
				pts = append(pts, plotter.XY{X: float64(i) + s.off, Y: v})
				lo, hi = math.Min(lo, v), math.Max(hi, v)
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
		p.Legend.Add(s.name, sc)
	}
	p.NominalX(labels...)
	if math.IsInf(lo, 1) {
		lo, hi = 0.01, 1
	}
	// Headroom above the data for the legend.
	p.Y.Min, p.Y.Max = lo/1.5, hi*6
	return p
}
