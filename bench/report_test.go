package bench_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/bench"
	_ "github.com/tlsgram/tlsgram/bench/contenders"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	s := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	require.Equal(t, 5*time.Millisecond, bench.Percentile(s, 0.5))
	require.Equal(t, 10*time.Millisecond, bench.Percentile(s, 0.99))
	require.Equal(t, 1*time.Millisecond, bench.Percentile(s, 0))
	require.Equal(t, time.Duration(0), bench.Percentile(nil, 0.5))

	l := bench.Summarize(ms(9, 1, 5), 2)
	require.Equal(t, 3, l.N)
	require.Equal(t, 2, l.Lost)
	require.Equal(t, 5.0, l.P50)
	require.Equal(t, 9.0, l.P999)
	require.InDelta(t, 0.4, l.LostFraction(), 1e-9)
}

func TestMedianIgnoresNaN(t *testing.T) {
	require.Equal(t, 2.0, bench.Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, bench.Median([]float64{4, 1, 2, 3}))
	require.Equal(t, 1.0, bench.Median([]float64{math.NaN(), 1}))
	require.True(t, math.IsNaN(bench.Median(nil)))
}

func TestConditionsApplicability(t *testing.T) {
	for _, c := range bench.Conditions {
		ok, why := c.ApplicableTo("udp")
		require.True(t, ok, c.Name)
		require.Empty(t, why)
		ok, why = c.ApplicableTo("tcp")
		lossy := c.Up.DropsOrReorders() || c.Down.DropsOrReorders()
		require.Equal(t, !lossy, ok, c.Name)
		if !ok {
			require.Contains(t, why, "n/a")
		}
		// Every condition must translate into a valid relay config.
		_, err := bench.ImpairConfig(c.Up, 1)
		require.NoError(t, err, c.Name)
		_, err = bench.ImpairConfig(c.Down, 2)
		require.NoError(t, err, c.Name)
	}
}

// synthetic builds results by hand to test reporting without the network.
func synthetic() *bench.Results {
	lat := func(p50, p99, p999 float64) *bench.Latency {
		return &bench.Latency{N: 100, P50: p50, P99: p99, P999: p999, Max: p999}
	}
	return &bench.Results{
		Meta: bench.Meta{Mode: "quick", Reps: 1, Options: map[string]string{}},
		Contenders: []bench.ContenderInfo{
			{Name: "a", Reliable: true, Network: "udp"},
			{Name: "b", Reliable: true, Network: "tcp", Info: bench.Info{Baseline: true}},
		},
		Conditions: []bench.Condition{bench.Conditions[0], bench.Conditions[2]},
		Metrics:    []bench.Metric{bench.MetricBulk, bench.MetricRR64},
		Cells: []*bench.Cell{
			{Contender: "a", Condition: "clean", Metric: bench.MetricBulk, Status: "ok",
				Reps:   []bench.Rep{{Status: "ok", Bulk: &bench.Bulk{MBps: 10, WindowBytes: 10, Sent: 10, Delivered: 10, Drained: true}}},
				Median: &bench.Summary{MBps: 10}, Ratios: map[string]float64{"b": 0.5}},
			{Contender: "b", Condition: "clean", Metric: bench.MetricBulk, Status: "ok",
				Reps:   []bench.Rep{{Status: "ok", Bulk: &bench.Bulk{MBps: 20, WindowBytes: 20, Sent: 20, Delivered: 20, Drained: true}}},
				Median: &bench.Summary{MBps: 20}},
			{Contender: "a", Condition: "rtt20-loss1", Metric: bench.MetricBulk, Status: "timeout", Note: "receiver: context deadline exceeded"},
			{Contender: "b", Condition: "rtt20-loss1", Metric: bench.MetricBulk, Status: "n/a", Note: "n/a: TCP"},
			{Contender: "a", Condition: "clean", Metric: bench.MetricRR64, Status: "ok",
				Reps: []bench.Rep{{Status: "ok", Latency: lat(1, 2, 3)}}, Median: &bench.Summary{P50: 1, P99: 2, P999: 3, N: 100}},
			{Contender: "b", Condition: "clean", Metric: bench.MetricRR64, Status: "ok",
				Reps: []bench.Rep{{Status: "ok", Latency: lat(1, 2, 3)}}, Median: &bench.Summary{P50: 1, P99: 2, P999: 3, N: 100}},
			{Contender: "a", Condition: "rtt20-loss1", Metric: bench.MetricRR64, Status: "ok",
				Reps: []bench.Rep{{Status: "ok", Latency: lat(1, 2, 3)}}, Median: &bench.Summary{P50: 1, P99: 2, P999: 3, N: 100}},
			{Contender: "b", Condition: "rtt20-loss1", Metric: bench.MetricRR64, Status: "n/a"},
		},
	}
}

func TestReportWritesMarkdownJSONAndCharts(t *testing.T) {
	dir := t.TempDir()
	r := synthetic()
	require.NoError(t, bench.WriteAll(r, dir))
	md, err := os.ReadFile(filepath.Join(dir, bench.ReportFile))
	require.NoError(t, err)
	s := string(md)
	require.Contains(t, s, "| a | 10.0 | timeout |")
	require.Contains(t, s, "| b (baseline) |")
	require.Contains(t, s, "n/a")
	require.Contains(t, s, "| a ÷ b | 0.500 |")
	require.Contains(t, s, "receiver: context deadline exceeded")
	back, err := bench.ReadResults(filepath.Join(dir, bench.ResultsFile))
	require.NoError(t, err)
	require.Len(t, back.Cells, len(r.Cells))
	for _, f := range []string{"throughput.svg", "latency-64B.svg"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		require.Greater(t, st.Size(), int64(1000), f)
	}
}

func TestUpdateReadmeReplacesOnlyTheMarkedSection(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("intro\n<!-- bench:results:begin -->\nold\n<!-- bench:results:end -->\noutro\n"), 0o644))
	require.NoError(t, bench.UpdateReadme(synthetic(), readme, filepath.Join(dir, "results")))
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(b)
	require.True(t, strings.HasPrefix(s, "intro\n"))
	require.True(t, strings.HasSuffix(s, "<!-- bench:results:end -->\noutro\n"))
	require.NotContains(t, s, "\nold\n")
	require.Contains(t, s, "## tlsgram benchmark")
	require.Contains(t, s, "](results/throughput.svg)")
	// The results the charts come from are committed next to them, so they can be re-rendered.
	back, err := bench.ReadResults(filepath.Join(dir, "results", bench.ResultsFile))
	require.NoError(t, err)
	require.Len(t, back.Cells, len(synthetic().Cells))
}

func TestCheckFlagsInsaneResults(t *testing.T) {
	r := synthetic()
	problems, warnings := bench.Check(r)
	require.Empty(t, problems)
	require.Len(t, warnings, 1) // the timeout on an impaired link

	r.Cells[0].Reps[0].Bulk.Delivered = 9 // a reliable stream lost a byte
	r.Cells[4].Reps[0].Latency.P99 = 0.5  // p99 < p50
	r.Cells[1].Status, r.Cells[1].Note = "error", "boom"
	problems, _ = bench.Check(r)
	require.Len(t, problems, 3, "%q", problems)
}

// TestSmoke runs a few cheap measurements end to end over real loopback
// sockets, so the harness cannot rot between full runs.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the network for a few seconds")
	}
	opts := bench.Quick()
	opts.BulkDuration = 200 * time.Millisecond
	opts.LatencyDuration = 100 * time.Millisecond
	opts.Handshakes = 3
	opts.Metrics = []bench.Metric{bench.MetricBulk, bench.MetricRR64, bench.MetricHandshake}
	opts.Conditions = []bench.Condition{bench.Conditions[0], bench.Conditions[2]} // clean, rtt20-loss1
	opts.Budget = time.Minute
	for _, name := range []string{"tls13-tcp", "raw-udp", "tlsgram"} {
		c, ok := bench.Lookup(name)
		require.True(t, ok, name)
		opts.Contenders = append(opts.Contenders, c)
	}
	r := bench.Run(context.Background(), opts)
	problems, _ := bench.Check(r)
	require.Empty(t, problems)
	require.Equal(t, "n/a", r.Cell("tls13-tcp", "rtt20-loss1", bench.MetricBulk).Status)
	udp := r.Cell("raw-udp", "clean", bench.MetricBulk)
	require.Equal(t, "ok", udp.Status)
	require.Greater(t, udp.Median.Fraction, 0.0)
	require.LessOrEqual(t, udp.Median.Fraction, 1.0)
	require.Contains(t, r.Cell("tlsgram", "clean", bench.MetricBulk).Ratios, "tls13-tcp")
}

// TestQuickSuite is what `go run ./bench/cmd/report -quick` does, with a
// smaller budget: every default contender on a clean and a lossy link, all
// metrics, then the report files. It takes about a minute, so it runs only
// when TLSGRAM_BENCH is set (.ci/run runs the command itself instead).
func TestQuickSuite(t *testing.T) {
	if os.Getenv("TLSGRAM_BENCH") == "" {
		t.Skip("set TLSGRAM_BENCH=1 to run the quick benchmark suite (~1 minute)")
	}
	opts := bench.Quick()
	opts.Conditions = []bench.Condition{bench.Conditions[0], bench.Conditions[2]}
	opts.Budget = 3 * time.Minute
	for _, c := range bench.Contenders() {
		if !c.Info().Optional {
			opts.Contenders = append(opts.Contenders, c)
		}
	}
	r := bench.Run(context.Background(), opts)
	dir := t.TempDir()
	require.NoError(t, bench.WriteAll(r, dir))
	back, err := bench.ReadResults(filepath.Join(dir, bench.ResultsFile))
	require.NoError(t, err)
	problems, warnings := bench.Check(back)
	for _, w := range warnings {
		t.Log("warning:", w)
	}
	require.Empty(t, problems)
	for _, c := range back.Contenders {
		x := back.Cell(c.Name, "clean", bench.MetricBulk)
		require.Equal(t, "ok", x.Status, c.Name)
		require.Greater(t, x.Median.MBps, 0.0, c.Name)
		if c.Reliable {
			for _, rep := range x.Reps {
				require.True(t, rep.Bulk.Drained, c.Name)
				require.Equal(t, rep.Bulk.Sent, rep.Bulk.Delivered, c.Name)
			}
		}
		for _, m := range []bench.Metric{bench.MetricRR64, bench.MetricRR1K, bench.MetricHandshake} {
			x := back.Cell(c.Name, "clean", m)
			require.Equal(t, "ok", x.Status, "%s %s", c.Name, m)
			require.LessOrEqual(t, x.Median.P50, x.Median.P99, "%s %s", c.Name, m)
			require.LessOrEqual(t, x.Median.P99, x.Median.P999, "%s %s", c.Name, m)
		}
	}
	for _, f := range []string{bench.ReportFile, "throughput.svg", "latency-64B.svg", "latency-1KiB.svg", "handshake.svg"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
	}
}

// TestSummaryTableAndFoldedRatios: one summary table of the main contender ÷ each baseline,
// with the cells where it is behind in bold, and every contender's ratios folded below.
func TestSummaryTableAndFoldedRatios(t *testing.T) {
	r := synthetic()
	md := bench.Markdown(r, nil)
	require.Contains(t, md, "## Summary: a ÷ each baseline")
	require.Contains(t, md, "| goodput (> 1: faster) | b | **0.500** | n/a |", "a at half of b's goodput is behind: bold")
	require.Contains(t, md, "<details><summary>Throughput ratios, every contender</summary>")
	require.Less(t, strings.Index(md, "## Summary"), strings.Index(md, "<details>"), "the summary comes before the details")
	require.Equal(t, strings.Count(md, "<details>"), strings.Count(md, "</details>"))

	r.Cells[0].Ratios["b"] = 1.05
	require.Contains(t, bench.Markdown(r, nil), "| goodput (> 1: faster) | b | 1.05 | n/a |", "within 10%: not bold")

	// The project README's summary: the table, the absolute figures folded, the charts.
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("intro\n<!-- bench:summary:begin -->\nold\n<!-- bench:summary:end -->\nwords\n"), 0o644))
	charts := filepath.Join(dir, "bench", "results")
	require.NoError(t, os.MkdirAll(charts, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(charts, "throughput.svg"), []byte("<svg/>"), 0o644))
	require.NoError(t, bench.UpdateSummary(r, readme, charts))
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(b)
	require.NotContains(t, s, "\nold\n")
	require.True(t, strings.HasSuffix(s, "<!-- bench:summary:end -->\nwords\n"))
	require.Contains(t, s, "| goodput (> 1: faster) | b | 1.05 | n/a |")
	require.Contains(t, s, "<details><summary>Bulk one-way goodput")
	require.Contains(t, s, "![throughput](bench/results/throughput.svg)")
}

// TestReportPingUnderLoad: the ping-under-load table has a column per rate-limited condition
// only, shows loaded p50 / p99, the idle p50 and the link used, and n/a where it cannot apply.
func TestReportPingUnderLoad(t *testing.T) {
	bottleneck, err := bench.LookupCondition("rtt20-50mbit")
	require.NoError(t, err)
	r := synthetic()
	r.Conditions = append(r.Conditions, bottleneck)
	r.Metrics = append(r.Metrics, bench.MetricLoadedPing)
	r.Cells = append(r.Cells,
		&bench.Cell{Contender: "a", Condition: bottleneck.Name, Metric: bench.MetricLoadedPing, Status: "ok",
			Median: &bench.Summary{P50: 23.5, P99: 30.25, IdleP50: 21, Utilisation: 0.953}},
		&bench.Cell{Contender: "b", Condition: bottleneck.Name, Metric: bench.MetricLoadedPing, Status: "n/a"})
	md := bench.Markdown(r, nil)
	require.Contains(t, md, "## Ping under load")
	require.Contains(t, md, "| contender | rtt20-50mbit |\n")
	require.Contains(t, md, "| a | 23.5 / 30.2 (21.0), 95.3% |")
	require.Contains(t, md, "| b | n/a |")
}
