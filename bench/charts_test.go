package bench_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/bench"
)

// affine is a 2-D affine map: x' = a·x + c·y + e, y' = b·x + d·y + f (SVG's matrix order).
type affine struct{ a, b, c, d, e, f float64 }

var identity = affine{a: 1, d: 1}

func (m affine) then(n affine) affine { // n after m: n·m
	return affine{
		a: n.a*m.a + n.c*m.b, b: n.b*m.a + n.d*m.b,
		c: n.a*m.c + n.c*m.d, d: n.b*m.c + n.d*m.d,
		e: n.a*m.e + n.c*m.f + n.e, f: n.b*m.e + n.d*m.f + n.f,
	}
}

func (m affine) apply(x, y float64) (float64, float64) {
	return m.a*x + m.c*y + m.e, m.b*x + m.d*y + m.f
}

var transformRe = regexp.MustCompile(`(\w+)\(([^)]*)\)`)

// parseTransform reads the transforms gonum's SVG backend writes: scale, translate, rotate.
func parseTransform(s string) (affine, error) {
	m := identity
	var list []affine
	for _, x := range transformRe.FindAllStringSubmatch(s, -1) {
		var args []float64
		for _, a := range strings.FieldsFunc(x[2], func(r rune) bool { return r == ',' || r == ' ' }) {
			v, err := strconv.ParseFloat(a, 64)
			if err != nil {
				return m, err
			}
			args = append(args, v)
		}
		switch {
		case x[1] == "scale" && len(args) == 2:
			list = append(list, affine{a: args[0], d: args[1]})
		case x[1] == "translate" && len(args) == 2:
			list = append(list, affine{a: 1, d: 1, e: args[0], f: args[1]})
		case x[1] == "rotate" && len(args) == 1:
			r := args[0] * math.Pi / 180
			list = append(list, affine{a: math.Cos(r), b: math.Sin(r), c: -math.Sin(r), d: math.Cos(r)})
		default:
			return m, fmt.Errorf("transform %q not understood", x[0])
		}
	}
	// "A B" applies B to the point first, then A.
	for i := len(list) - 1; i >= 0; i-- {
		m = m.then(list[i])
	}
	return m, nil
}

// svgLabel is one text element of a chart: its string and the four corners of the box it
// covers on the page.
type svgLabel struct {
	text   string
	corner [4][2]float64
}

var fontSizeRe = regexp.MustCompile(`font-size:([\d.]+)px`)

// Text extents are estimated from the font size: a Liberation Sans character is at most
// about 0.56 em wide on average over a label (digits are 0.556 em), and glyphs reach 0.72 em
// above the baseline and 0.21 em below it.
const (
	charWidthEm = 0.56
	ascentEm    = 0.72
	descentEm   = 0.21
)

// svgLabels reads every text element of an SVG with the size of its page.
func svgLabels(r io.Reader) (labels []svgLabel, width, height float64, err error) {
	dec := xml.NewDecoder(r)
	stack := []affine{identity}
	var cur *svgLabel
	var curBox [4][2]float64
	var curM affine
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return labels, width, height, nil
		}
		if err != nil {
			return nil, 0, 0, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range t.Attr {
				attr[a.Name.Local] = a.Value
			}
			m, err := parseTransform(attr["transform"])
			if err != nil {
				return nil, 0, 0, err
			}
			m = m.then(stack[len(stack)-1])
			stack = append(stack, m)
			switch t.Name.Local {
			case "svg":
				width, _ = strconv.ParseFloat(strings.TrimSuffix(attr["width"], "pt"), 64)
				height, _ = strconv.ParseFloat(strings.TrimSuffix(attr["height"], "pt"), 64)
			case "text":
				x, _ := strconv.ParseFloat(attr["x"], 64)
				y, _ := strconv.ParseFloat(attr["y"], 64)
				fs := 10.0
				if f := fontSizeRe.FindStringSubmatch(attr["style"]); f != nil {
					fs, _ = strconv.ParseFloat(f[1], 64)
				}
				cur, curM = &svgLabel{}, m
				// In the text's own frame (y down), from the baseline start (x, y).
				curBox = [4][2]float64{{x, y - ascentEm*fs}, {x + fs, y - ascentEm*fs}, {x + fs, y + descentEm*fs}, {x, y + descentEm*fs}}
			}
		case xml.CharData:
			if cur != nil {
				cur.text += string(t)
			}
		case xml.EndElement:
			if t.Name.Local == "text" && cur != nil {
				fs := curBox[1][0] - curBox[0][0]
				w := charWidthEm * fs * float64(utf8.RuneCountInString(strings.TrimSpace(cur.text)))
				curBox[1][0], curBox[2][0] = curBox[0][0]+w, curBox[0][0]+w
				for i, p := range curBox {
					cur.corner[i][0], cur.corner[i][1] = curM.apply(p[0], p[1])
				}
				if strings.TrimSpace(cur.text) != "" {
					labels = append(labels, *cur)
				}
				cur = nil
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// overlap reports whether two convex quadrilaterals overlap by more than tol points
// (separating axis theorem over their edge normals).
func overlap(p, q [4][2]float64, tol float64) bool {
	for _, poly := range [][4][2]float64{p, q} {
		for i := range 4 {
			a, b := poly[i], poly[(i+1)%4]
			nx, ny := a[1]-b[1], b[0]-a[0]
			l := math.Hypot(nx, ny)
			if l == 0 {
				continue
			}
			nx, ny = nx/l, ny/l
			pmin, pmax := project(p, nx, ny)
			qmin, qmax := project(q, nx, ny)
			if pmax-tol <= qmin || qmax-tol <= pmin {
				return false
			}
		}
	}
	return true
}

func project(p [4][2]float64, nx, ny float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, c := range p {
		v := c[0]*nx + c[1]*ny
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// chartProblems lists labels of the SVG in file that overlap each other or leave the page.
func chartProblems(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	labels, w, h, err := svgLabels(f)
	require.NoError(t, err)
	require.NotEmpty(t, labels, file)
	const tol = 0.5 // points
	var problems []string
	for i, a := range labels {
		for _, c := range a.corner {
			if c[0] < -tol || c[0] > w+tol || c[1] < -tol || c[1] > h+tol {
				problems = append(problems, fmt.Sprintf("%s: %q is cut at the edge of the %gx%g page", filepath.Base(file), a.text, w, h))
				break
			}
		}
		for _, b := range labels[i+1:] {
			if overlap(a.corner, b.corner, tol) {
				problems = append(problems, fmt.Sprintf("%s: %q overlaps %q", filepath.Base(file), a.text, b.text))
			}
		}
	}
	return problems
}

// crowded is a run shaped to crowd a chart: long names, unreliable contenders, values spread
// over five decades, failed and n/a cells, every metric.
func crowded() *bench.Results {
	r := &bench.Results{Meta: bench.Meta{Mode: "quick", Reps: 1, Options: map[string]string{}},
		Conditions: bench.Conditions, Metrics: []bench.Metric{bench.MetricBulk, bench.MetricRR64, bench.MetricHandshake}}
	names := []string{"tlsgram", "tlsgram-1452", "tlsgram-newreno", "tlsgram-retry", "quic-go", "kcp-go",
		"pion-dtls", "tls13-tcp", "tls13-tcp-jumbo", "raw-udp"}
	for i, name := range names {
		reliable := !strings.Contains(name, "pion") && !strings.Contains(name, "raw")
		r.Contenders = append(r.Contenders, bench.ContenderInfo{Name: name, Reliable: reliable, Network: "udp"})
		for j, cond := range r.Conditions {
			v := math.Pow(10, float64((i*7+j*3)%50)/10-1) // 0.1 .. 10^4
			for _, m := range r.Metrics {
				c := &bench.Cell{Contender: name, Condition: cond.Name, Metric: m, Status: "ok",
					Median: &bench.Summary{MBps: v, Fraction: 0.0081, P50: v, P99: v * 3, P999: v * 4, N: 500, Lost: 7}}
				if (i+j)%9 == 4 {
					c.Status, c.Median = "timeout", nil
				}
				r.Cells = append(r.Cells, c)
			}
		}
	}
	return r
}

// TestChartLabelsDoNotCollide renders charts from a crowded run and checks the committed
// ones: no text may overlap other text or leave the page (the old charts had rotated names
// running into each other and bar values cut off at the top).
func TestChartLabelsDoNotCollide(t *testing.T) {
	dir := t.TempDir()
	files, err := bench.WriteCharts(crowded(), dir)
	require.NoError(t, err)
	require.Len(t, files, 3)
	var problems []string
	for _, f := range files {
		problems = append(problems, chartProblems(t, filepath.Join(dir, f))...)
	}
	committed, err := filepath.Glob("results/*.svg")
	require.NoError(t, err)
	require.NotEmpty(t, committed, "bench/results has no charts")
	for _, f := range committed {
		problems = append(problems, chartProblems(t, f)...)
	}
	require.Empty(t, problems, "labels collide:\n%s", strings.Join(problems, "\n"))
}

// TestChartCheckerFindsCollisions: the checker itself sees two labels drawn on top of each
// other, a rotated pair, and a label past the page's edge.
func TestChartCheckerFindsCollisions(t *testing.T) {
	svg := `<svg width="100pt" height="50pt"><g transform="scale(1, -1) translate(0, -50)">
<text x="10" y="-20" transform="scale(1, -1)" style="font-size:7px">tlsgram-1452</text>
<text x="14" y="-22" transform="scale(1, -1)" style="font-size:7px">tlsgram-newreno</text>
<g transform="rotate(45)"><text x="60" y="-10" transform="scale(1, -1)" style="font-size:7px">quic-go</text></g>
<g transform="rotate(45)"><text x="62" y="-13" transform="scale(1, -1)" style="font-size:7px">kcp-go</text></g>
<text x="90" y="-40" transform="scale(1, -1)" style="font-size:7px">195 (100% delivered)</text>
</g></svg>`
	file := filepath.Join(t.TempDir(), "c.svg")
	require.NoError(t, os.WriteFile(file, []byte(svg), 0o644))
	problems := strings.Join(chartProblems(t, file), "\n")
	require.Contains(t, problems, `"tlsgram-1452" overlaps "tlsgram-newreno"`)
	require.Contains(t, problems, `"quic-go" overlaps "kcp-go"`)
	require.Contains(t, problems, `"195 (100% delivered)" is cut`)
	require.NotContains(t, problems, `"tlsgram-1452" overlaps "quic-go"`)
}
