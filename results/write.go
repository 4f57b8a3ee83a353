package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Files written into a run folder.
const (
	SummaryFile = "summary.json"
	ReportFile  = "report.md"
	EventsFile  = "events.jsonl"
)

// WriteSummary writes summary.json atomically (temp file + rename), so a
// reader never sees half a report even if the controller dies mid-write. It
// first fills the fields derived from others (see derive).
func WriteSummary(dir string, s *Summary) error {
	derive(s)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return writeAtomic(filepath.Join(dir, SummaryFile), append(data, '\n'))
}

// derive fills the fields that follow from faults, series and recoveries, so
// every writer of a summary gets them without computing them itself.
func derive(s *Summary) {
	s.BaselineP99MS = BaselineP99(s.Faults, s.Regions)
	s.RecoveryStats = SummarizeRecovery(s.Recovery)
	generatorLimits(s)
}

// derived is s with its derived fields filled, leaving the caller's summary
// as it was: renderers accept summaries read from older runs.
func derived(s *Summary) *Summary {
	c := *s
	derive(&c)
	return &c
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

// Reports are the files WriteReports derives from a summary, by file name.
var Reports = []struct {
	File   string
	Render func(io.Writer, *Summary) error
}{
	{ReportFile, Markdown},
	{HTMLFile, HTML},
	{JUnitFile, JUnit},
}

// WriteReports writes every derived report of a summary into dir: report.md,
// report.html and junit.xml. It renders all of them even when one fails, so
// one broken renderer does not hide the others' evidence.
func WriteReports(dir string, s *Summary) error {
	var errs []error
	for _, r := range Reports {
		var b bytes.Buffer
		if err := r.Render(&b, s); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := writeAtomic(filepath.Join(dir, r.File), b.Bytes()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// maxFaultRows bounds the fault table of report.md: a long nemesis run lists
// its faults in report.html and summarises them by kind here.
const maxFaultRows = 20

// Markdown renders a summary small enough for a CI job summary.
func Markdown(w io.Writer, s *Summary) error {
	s = derived(s)
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	icon := "✅ pass"
	if s.Verdict != VerdictPass {
		icon = "❌ fail"
	}
	p("# faultline run `%s`: %s\n\n", s.RunID, icon)
	p("Scenario **%s**, seed %d, %s → %s (%.0f s). Startup (first container created → all nodes healthy): %.2f s.\n\n",
		s.Scenario, s.Seed, s.StartedAt.UTC().Format("2006-01-02 15:04:05Z"), s.EndedAt.UTC().Format("15:04:05Z"),
		s.EndedAt.Sub(s.StartedAt).Seconds(), s.StartupS)
	if s.Error != "" {
		p("> **Run error:** %s\n\n", strings.ReplaceAll(s.Error, "\n", " "))
	}

	p("## Checks\n\n| check | expression | value | result |\n|---|---|---:|---|\n")
	for _, c := range s.Checks {
		res := "pass"
		if !c.Pass {
			res = "**FAIL**"
		}
		p("| %s | `%s` | %s | %s |\n", c.Name, c.Expr, num(c.Value), res)
	}

	p("\n## What users felt, per region\n\n| region | requests | errors | error rate | p50 ms | p90 ms | p99 ms | max ms | requests/s over time (x: errors) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, name := range sortedRegions(s.Regions) {
		r := s.Regions[name]
		p("| %s | %d | %d | %.2f%% | %s | %s | %s | %s | `%s` |\n", name, r.Requests, r.Errors, 100*r.ErrorRate,
			num(r.LatencyMS.P50), num(r.LatencyMS.P90), num(r.LatencyMS.P99), num(r.LatencyMS.Max), sparkline(r.Series))
	}
	p("| **all** | %d | %d | %.2f%% | %s | %s | %s | %s | |\n", s.Total.Requests, s.Total.Errors, 100*s.Total.ErrorRate,
		num(s.Total.LatencyMS.P50), num(s.Total.LatencyMS.P90), num(s.Total.LatencyMS.P99), num(s.Total.LatencyMS.Max))

	if len(s.Faults) > 0 {
		p("\n## Faults and recovery\n\n| fault | injected at s | healed at s | detect s | recover s | unavailable s |\n|---|---:|---:|---:|---:|---:|\n")
		for i, f := range s.Faults {
			if i == maxFaultRows {
				p("| … %d more in report.html | | | | | |\n", len(s.Faults)-i)
				break
			}
			detect, recover, unavail := "–", "–", "–"
			if i < len(s.Recovery) {
				detect, recover, unavail = recoveryCells(s.Recovery[i])
			}
			label := faultLabel(f)
			if f.Error != "" {
				label += " (failed: " + f.Error + ")"
			}
			p("| %s | %s | %s | %s | %s | %s |\n", label, secs(f.InjectedAt), secs(f.HealedAt), detect, recover, unavail)
		}
		for _, st := range repeated(s.RecoveryStats) {
			p("\n%d× %s: detect p50 %s s (max %s), recover p50 %s s (max %s), unavailable p50 %s s (max %s); %d unnoticed, %d never recovered.\n",
				st.Count, st.Kind, num(st.DetectP50S), num(st.DetectMaxS), num(st.RecoverP50S), num(st.RecoverMaxS),
				num(st.UnavailP50S), num(st.UnavailMaxS), st.Unnoticed, st.NeverRecovered)
		}
		p("\nRecovered = error rate ≤ %s%% and p99 ≤ max(%s× baseline, baseline + %s ms) in every region, held two seconds", num(100*RecoveryBound), num(P99Factor), num(P99SlackMS))
		if len(s.BaselineP99MS) > 0 {
			var parts []string
			for _, name := range sortedKeys(s.BaselineP99MS) {
				parts = append(parts, fmt.Sprintf("%s %s", name, num(s.BaselineP99MS[name])))
			}
			p("; baseline p99 ms: %s", strings.Join(parts, ", "))
		}
		p(".\n")
	}
	if len(s.Capacity) > 0 {
		p("\n## Capacity (step load until the SLO breaks)\n\n| region | max sustainable req/s | steps met | SLO | what broke |\n|---|---:|---:|---|---|\n")
		for _, name := range sortedKeys(s.Capacity) {
			c := s.Capacity[name]
			broke := c.Broke
			if broke == "" {
				broke = "nothing: capacity is at least this"
			}
			p("| %s | %s | %d | p99 ≤ %s ms, errors ≤ %s%% | %s |\n", name, num(c.RateRPS), c.Steps, num(c.SLOP99MS), num(100*c.SLOErrorRate), broke)
		}
	}
	if len(s.ClosedModel) > 0 {
		p("\n## Closed model: X = N / (R + Z)\n\n| region | users N | think Z s | response R s | throughput X req/s | N/(R+Z) | error | law holds (±%s%%) |\n|---|---:|---:|---:|---:|---:|---:|---|\n", num(100*LawTolerance))
		for _, name := range sortedKeys(s.ClosedModel) {
			c := s.ClosedModel[name]
			p("| %s | %d | %s | %s | %s | %s | %s%% | %s |\n", name, c.Users, num(c.ThinkS), num(c.ResponseS), num(c.ThroughputRPS), num(c.PredictedRPS), num(100*c.LawError), yesNo(c.LawHolds))
		}
	}
	for _, sec := range sections(s) {
		p("%s", sec.markdown())
	}
	if len(s.Loadgen) > 0 {
		var parts []string
		for _, name := range sortedKeys(s.Loadgen) {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", name, s.Loadgen[name].CPUPercent))
		}
		p("\nLoad generator CPU (%% of one core): %s.\n", strings.Join(parts, ", "))
		if note := generatorNote(s); note != "" {
			p("\n> ⚠️ %s\n", note)
		}
	}
	p("\nDetails: `report.html` (plots), `summary.json`, `events.jsonl`, `junit.xml` in the run folder.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write %s: %w", ReportFile, err)
	}
	return nil
}

// num formats a figure with the precision a reader needs: whole numbers
// bare, large ones rounded, small ones to three significant digits (an error
// rate of 0.0084 must not read as 0.01).
func num(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// secs formats a time on the run's axis to the hundredth of a second.
func secs(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// sparklineWidth bounds the sparkline so a long run still fits a CI summary
// table; each character then stands for several seconds.
const sparklineWidth = 60

// sparkline draws a series' throughput with errored seconds as "x", so the
// error spike of a fault is visible even in a plain-text report.
func sparkline(series []Second) string {
	const bars = "▁▂▃▄▅▆▇█"
	per := (len(series) + sparklineWidth - 1) / sparklineWidth
	type cell struct {
		rps    float64
		errors int64
	}
	var cells []cell
	peak := 0.0
	for i := 0; i < len(series); i += per {
		var c cell
		chunk := series[i:min(i+per, len(series))]
		for _, pt := range chunk {
			c.rps += pt.RPS / float64(len(chunk))
			c.errors += pt.Errors
		}
		peak = max(peak, c.rps)
		cells = append(cells, c)
	}
	var b strings.Builder
	runes := []rune(bars)
	for _, c := range cells {
		switch {
		case c.errors > 0:
			b.WriteRune('x')
		case peak == 0:
			b.WriteRune(runes[0])
		default:
			b.WriteRune(runes[int(c.rps/peak*float64(len(runes)-1))])
		}
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
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
