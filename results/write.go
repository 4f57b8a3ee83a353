package results

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files written into a run folder.
const (
	SummaryFile = "summary.json"
	ReportFile  = "report.md"
	EventsFile  = "events.jsonl"
)

// WriteSummary writes summary.json atomically (temp file + rename), so a
// reader never sees half a report even if the controller dies mid-write.
func WriteSummary(dir string, s *Summary) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return writeAtomic(filepath.Join(dir, SummaryFile), append(data, '\n'))
}

// ReadSummary loads a run folder's summary.json.
func ReadSummary(dir string) (*Summary, error) {
	data, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return &s, nil
}

// WriteReports writes every derived report of a summary into dir.
func WriteReports(dir string, s *Summary) error {
	var b strings.Builder
	if err := Markdown(&b, s); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ReportFile), []byte(b.String()))
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Markdown renders a summary small enough for a CI job summary.
func Markdown(w io.Writer, s *Summary) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	icon := "✅ pass"
	if s.Verdict != VerdictPass {
		icon = "❌ fail"
	}
	p("# faultline run `%s`: %s\n\n", s.RunID, icon)
	p("Scenario **%s**, seed %d, %s → %s (%.0f s). Startup (first container created → all nodes healthy): %.2f s.\n\n",
		s.Scenario, s.Seed, s.StartedAt.UTC().Format("2006-01-02 15:04:05Z"), s.EndedAt.UTC().Format("15:04:05Z"),
		s.EndedAt.Sub(s.StartedAt).Seconds(), s.StartupS)

	p("## Checks\n\n| check | expression | value | result |\n|---|---|---:|---|\n")
	for _, c := range s.Checks {
		res := "pass"
		if !c.Pass {
			res = "**FAIL**"
		}
		p("| %s | `%s` | %s | %s |\n", c.Name, c.Expr, num(c.Value), res)
	}

	p("\n## What users felt, per region\n\n| region | requests | errors | error rate | p50 ms | p90 ms | p99 ms | max ms | requests/s over time |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, name := range sortedRegions(s.Regions) {
		r := s.Regions[name]
		p("| %s | %d | %d | %.2f%% | %s | %s | %s | %s | `%s` |\n", name, r.Requests, r.Errors, 100*r.ErrorRate,
			num(r.LatencyMS.P50), num(r.LatencyMS.P90), num(r.LatencyMS.P99), num(r.LatencyMS.Max), sparkline(r.Series))
	}
	p("| **all** | %d | %d | %.2f%% | %s | %s | %s | %s | |\n", s.Total.Requests, s.Total.Errors, 100*s.Total.ErrorRate,
		num(s.Total.LatencyMS.P50), num(s.Total.LatencyMS.P90), num(s.Total.LatencyMS.P99), num(s.Total.LatencyMS.Max))

	if len(s.Faults) > 0 {
		p("\n## Faults\n\n| kind | targets | injected at s | healed at s | detect s | recover s |\n|---|---|---:|---:|---:|---:|\n")
		for i, f := range s.Faults {
			detect, recover := "–", "–"
			if i < len(s.Recovery) {
				if d := s.Recovery[i].DetectS; d >= 0 {
					detect = num(d)
					recover = "never"
					if r := s.Recovery[i].RecoverS; r >= 0 {
						recover = num(r)
					}
				}
			}
			p("| %s | %s | %s | %s | %s | %s |\n", f.Kind, strings.Join(f.Targets, ", "), num(f.InjectedAt), num(f.HealedAt), detect, recover)
		}
	}
	if len(s.Loadgen) > 0 {
		p("\n## Load generators\n\n| region | CPU s | CPU %% of one core |\n|---|---:|---:|\n")
		for _, name := range sortedKeys(s.Loadgen) {
			l := s.Loadgen[name]
			p("| %s | %.2f | %.1f |\n", name, l.CPUSeconds, l.CPUPercent)
		}
	}
	return nil
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// sparkline draws a series' throughput with errored seconds as "x", so the
// error spike of a fault is visible even in a plain-text report.
func sparkline(series []Second) string {
	const bars = "▁▂▃▄▅▆▇█"
	peak := 0.0
	for _, pt := range series {
		peak = max(peak, pt.RPS)
	}
	var b strings.Builder
	runes := []rune(bars)
	for _, pt := range series {
		switch {
		case pt.Errors > 0:
			b.WriteRune('x')
		case peak == 0:
			b.WriteRune(runes[0])
		default:
			b.WriteRune(runes[int(pt.RPS/peak*float64(len(runes)-1))])
		}
	}
	return b.String()
}

func sortedRegions(m map[string]Region) []string { return sortedKeys(m) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
