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

// UpdateReadme replaces the text between the result markers in the README
// at path with the report of r, its charts copied to chartDir (relative
// links from the README). Only the figures a reader needs are committed:
// the Markdown and the SVG charts, a few tens of kB.
func UpdateReadme(r *Results, path, chartDir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %s … %s not found", path, readmeBegin, readmeEnd)
	}
	if err := os.MkdirAll(chartDir, 0o755); err != nil {
		return err
	}
	charts, err := WriteCharts(r, chartDir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(path), chartDir)
	if err != nil {
		return err
	}
	for k := range charts {
		charts[k] = filepath.ToSlash(filepath.Join(rel, charts[k]))
	}
	md := Markdown(r, charts)
	// Demote the report's headings by one level under the README's own.
	md = strings.ReplaceAll("\n"+md, "\n#", "\n##")[1:]
	out := s[:i+len(readmeBegin)] + "\n" + md + "\n" + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}
