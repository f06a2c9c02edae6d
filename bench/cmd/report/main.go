// Command report runs the tlsgram benchmark suite — tlsgram against
// pion/dtls, TLS over TCP, quic-go, kcp-go and raw UDP, on a clean loopback
// and on impaired links — and writes report.md, results.json and SVG charts
// to an output folder. The Markdown report also goes to standard output.
//
//	go run ./bench/cmd/report -quick            # ~2 minutes, checks sanity (what .ci/run runs)
//	go run ./bench/cmd/report                   # full run: 3 repetitions, medians
//	go run ./bench/cmd/report -readme bench/README.md -summary README.md   # full run, then update the READMEs' figures
//	go run ./bench/cmd/report -from bench/results/results.json -readme bench/README.md -summary README.md   # re-render only
//
// It exits with status 1 when the results are not sane (see bench.Check):
// a clean-link measurement failed, a reliable contender lost bytes,
// percentiles are out of order, or the run budget was exhausted.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsgram/tlsgram/bench"
	_ "github.com/tlsgram/tlsgram/bench/contenders" // registers every contender
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		quick       = flag.Bool("quick", false, "quick mode: short measurements, 1 repetition, fewer sessions (~2 minutes)")
		out         = flag.String("out", filepath.Join("bench", "out"), "output folder for report.md, results.json and charts")
		reps        = flag.Int("n", 0, "repetitions of each measurement (default: 1 quick, 3 full)")
		contenders  = flag.String("contenders", "", "comma-separated contenders, or \"all\" to include optional ones (default: every non-optional one)")
		conditions  = flag.String("conditions", "", "comma-separated conditions, or \"all\" (default: every non-optional one)")
		metrics     = flag.String("metrics", "", "comma-separated metrics: bulk, rr64, rr1k, handshake, pingload, idle, hsrate, concurrent (default: all)")
		timeout     = flag.Duration("timeout", 0, "budget for the whole run; later measurements are reported as skipped (default: 5m quick, 90m full)")
		bulk        = flag.Duration("bulk", 0, "sending time of each bulk transfer (default: preset)")
		latency     = flag.Duration("latency", 0, "time of each request/response run (default: preset)")
		concurrent  = flag.Int("concurrent", 0, "concurrent sessions (default: 200 quick, 1000 full)")
		seed        = flag.Int64("seed", 1, "seed of the impairment relays")
		check       = flag.Bool("check", true, "exit 1 if the results are not sane")
		readme      = flag.String("readme", "", "also replace the results section of this README and put its charts and results.json in bench/results")
		summary     = flag.String("summary", "", "also replace the summary section of this README (the project's) after -readme")
		from        = flag.String("from", "", "do not measure: render the report from this results.json")
		list        = flag.Bool("list", false, "list contenders and conditions and exit")
		chartFolder = flag.String("readme-charts", filepath.Join("bench", "results"), "where -readme puts its charts")
		png         = flag.Bool("png", false, "also write the charts as PNG")
		fairness    = flag.Bool("fairness", true, "also measure fairness: flow pairs through one shared bottleneck (full mode; quick mode skips it)")
		losscurve   = flag.Bool("losscurve", true, "also measure the goodput-versus-loss curve (full mode; quick mode skips it)")
	)
	flag.Parse()

	if *list {
		for _, c := range bench.Contenders() {
			i := c.Info()
			opt := ""
			if i.Optional {
				opt = " (optional)"
			}
			fmt.Printf("contender %-16s %s%s\n", c.Name(), i.Label, opt)
		}
		for _, c := range bench.Conditions {
			opt := ""
			if c.Optional {
				opt = " (optional)"
			}
			fmt.Printf("condition %-20s %s%s\n", c.Name, c.Description, opt)
		}
		return nil
	}

	var res *bench.Results
	var extras func(w io.Writer, dir string) error
	if *from != "" {
		r, err := bench.ReadResults(*from)
		if err != nil {
			return err
		}
		res = r
	} else {
		opts := bench.Full()
		if *quick {
			opts = bench.Quick()
		}
		if *reps > 0 {
			opts.Reps = *reps
		}
		if *timeout > 0 {
			opts.Budget = *timeout
		}
		if *bulk > 0 {
			opts.BulkDuration = *bulk
		}
		if *latency > 0 {
			opts.LatencyDuration = *latency
		}
		if *concurrent > 0 {
			opts.ConcurrentSessions = *concurrent
		}
		opts.Seed = *seed
		var err error
		if opts.Contenders, err = pickContenders(*contenders); err != nil {
			return err
		}
		if opts.Conditions, err = pickConditions(*conditions); err != nil {
			return err
		}
		if opts.Metrics, err = pickMetrics(*metrics); err != nil {
			return err
		}
		opts.Log = os.Stderr
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		// Run returns within its budget plus one measurement's timeout;
		// this is the last line of defence if a contender wedges the
		// process in a way the per-measurement watchdog cannot undo.
		hard := time.AfterFunc(opts.Budget+5*time.Minute, func() {
			fmt.Fprintln(os.Stderr, "report: hard timeout: the run did not end within its budget + 5 minutes")
			os.Exit(2)
		})
		defer hard.Stop()
		fmt.Fprintf(os.Stderr, "tlsgram bench: %d contenders × %d conditions, %d repetition(s), budget %s\n",
			len(opts.Contenders), len(opts.Conditions), opts.Reps, opts.Budget)
		res = bench.Run(ctx, opts)
		if !opts.Quick {
			extras = measureExtras(ctx, opts, *fairness, *losscurve)
		}
	}

	if err := bench.WriteAll(res, *out); err != nil {
		return err
	}
	if *png {
		if _, err := bench.WriteChartsAs(res, *out, "png"); err != nil {
			return err
		}
	}
	if *readme != "" {
		if err := bench.UpdateReadme(res, *readme, *chartFolder); err != nil {
			return err
		}
	}
	if *summary != "" {
		if err := bench.UpdateSummary(res, *summary, *chartFolder); err != nil {
			return err
		}
	}
	if extras != nil {
		if err := appendToReport(filepath.Join(*out, bench.ReportFile), *out, extras); err != nil {
			return err
		}
	}
	md, err := os.ReadFile(filepath.Join(*out, bench.ReportFile))
	if err != nil {
		return err
	}
	os.Stdout.Write(md)
	fmt.Fprintf(os.Stderr, "\nwrote %s (took %s)\n", *out, time.Duration(res.Meta.Seconds*float64(time.Second)).Round(time.Second))

	problems, warnings := bench.Check(res)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "FAIL:", p)
	}
	if *check && len(problems) > 0 {
		return fmt.Errorf("%d sanity problem(s)", len(problems))
	}
	return nil
}

// measureExtras runs the measurements that are not contender × condition cells (issue 9): the
// fairness pairs and the loss curve. It returns what writes them into the report.
func measureExtras(ctx context.Context, opts bench.Options, fairness, losscurve bool) func(io.Writer, string) error {
	var fs []bench.Fairness
	var pts []bench.LossPoint
	if fairness {
		fs = bench.RunFairness(ctx, opts.Reps, opts.BulkDuration, opts.Seed, os.Stderr)
	}
	if losscurve {
		pts = bench.RunLossCurve(ctx, opts.Reps, opts.BulkDuration, opts.DrainTimeout, opts.Seed, os.Stderr)
	}
	return func(w io.Writer, dir string) error {
		if err := bench.WriteFairness(w, fs); err != nil {
			return err
		}
		return bench.WriteLossCurve(w, dir, pts)
	}
}

func appendToReport(path, dir string, write func(io.Writer, string) error) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := write(f, dir); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func pickContenders(s string) ([]bench.Contender, error) {
	all := bench.Contenders()
	if s == "all" {
		return all, nil
	}
	if s == "" {
		var out []bench.Contender
		for _, c := range all {
			if !c.Info().Optional {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var out []bench.Contender
	for _, name := range split(s) {
		c, ok := bench.Lookup(name)
		if !ok {
			var names []string
			for _, c := range all {
				names = append(names, c.Name())
			}
			return nil, fmt.Errorf("unknown contender %q (have %s)", name, strings.Join(names, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

func pickConditions(s string) ([]bench.Condition, error) {
	if s == "all" {
		return bench.Conditions, nil
	}
	if s == "" {
		var out []bench.Condition
		for _, c := range bench.Conditions {
			if !c.Optional {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var out []bench.Condition
	for _, name := range split(s) {
		c, err := bench.LookupCondition(name)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func pickMetrics(s string) ([]bench.Metric, error) {
	if s == "" {
		return bench.AllMetrics, nil
	}
	var out []bench.Metric
	for _, name := range split(s) {
		found := false
		for _, m := range bench.AllMetrics {
			if string(m) == name {
				out = append(out, m)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown metric %q", name)
		}
	}
	return out, nil
}
