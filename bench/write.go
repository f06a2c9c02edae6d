package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Output file names inside the output folder.
const (
	ReportFile  = "report.md"
	ResultsFile = "results.json"
)

// WriteAll writes report.md, results.json and the charts to dir.
func WriteAll(r *Results, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	charts, cerr := WriteCharts(r, dir)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte(Markdown(r, charts)), 0o644); err != nil {
		return err
	}
	return cerr
}

// ReadResults loads a results.json written by WriteAll.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Markers delimit the generated section of bench/README.md.
const (
	readmeBegin = "<!-- bench:results:begin -->"
	readmeEnd   = "<!-- bench:results:end -->"
)

// Markers delimit the generated summary in the project's README.
const (
	summaryBegin = "<!-- bench:summary:begin -->"
	summaryEnd   = "<!-- bench:summary:end -->"
)

// UpdateReadme replaces the text between the result markers in the README
// at path with the report of r, its charts and results.json written to
// chartDir (relative links from the README). Only what a reader needs is
// committed: the Markdown, the SVG charts and the results they come from
// (so they can be re-rendered with -from), a few tens of kB.
func UpdateReadme(r *Results, path, chartDir string) error {
	charts, err := writeCommitted(r, path, chartDir)
	if err != nil {
		return err
	}
	md := Markdown(r, charts)
	// Demote the report's headings by one level under the README's own.
	md = strings.ReplaceAll("\n"+md, "\n#", "\n##")[1:]
	return replaceMarked(path, readmeBegin, readmeEnd, md)
}

// UpdateSummary replaces the text between the summary markers in the README at path with
// SummaryMarkdown of r, linking the charts UpdateReadme wrote to chartDir.
func UpdateSummary(r *Results, path, chartDir string) error {
	var charts []string
	for _, c := range []string{"throughput.svg", "latency-64B.svg"} {
		if _, err := os.Stat(filepath.Join(chartDir, c)); err != nil {
			continue
		}
		rel, err := filepath.Rel(filepath.Dir(path), filepath.Join(chartDir, c))
		if err != nil {
			return err
		}
		charts = append(charts, filepath.ToSlash(rel))
	}
	return replaceMarked(path, summaryBegin, summaryEnd, SummaryMarkdown(r, charts))
}

// writeCommitted writes the charts and results.json to chartDir and returns the charts' paths
// relative to the README at path.
func writeCommitted(r *Results, path, chartDir string) ([]string, error) {
	if err := os.MkdirAll(chartDir, 0o755); err != nil {
		return nil, err
	}
	charts, err := WriteCharts(r, chartDir)
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(chartDir, ResultsFile), append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(filepath.Dir(path), chartDir)
	if err != nil {
		return nil, err
	}
	for k := range charts {
		charts[k] = filepath.ToSlash(filepath.Join(rel, charts[k]))
	}
	return charts, nil
}

// replaceMarked replaces the text between begin and end in the file at path with md.
func replaceMarked(path, begin, end, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %s … %s not found", path, begin, end)
	}
	out := s[:i+len(begin)] + "\n" + md + "\n" + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}
