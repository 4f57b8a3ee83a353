package results

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// DefaultTolerance is the relative change compare lets pass.
const DefaultTolerance = 0.2

// Delta is one key figure of two runs side by side.
type Delta struct {
	Scope  string // a region, or "all"
	Metric string
	A, B   float64 // +Inf for a fault that never recovered
	// Missing names the run ("A" or "B") that lacks this scope.
	Missing    string
	Regression bool
}

// Comparison is run B measured against run A.
type Comparison struct {
	A, B      string // run ids
	Tolerance float64
	Deltas    []Delta
}

// Regressions are the deltas flagged as worse beyond the tolerance.
func (c Comparison) Regressions() []Delta {
	var out []Delta
	for _, d := range c.Deltas {
		if d.Regression {
			out = append(out, d)
		}
	}
	return out
}

// A compared figure: which way is worse, and the smallest absolute change
// that means anything (a 0.3 ms p50 change is noise, and recovery is only
// measured to the second), so tiny baselines do not turn noise into
// regressions.
type keyFigure struct {
	name     string
	lowerBad bool
	floor    float64
	regionOK bool
	get      func(s *Summary, scope string) float64
}

var keyFigures = []keyFigure{
	{name: "requests", lowerBad: true, regionOK: true, get: func(s *Summary, sc string) float64 { return float64(totalsOf(s, sc).Requests) }},
	{name: "error_rate", floor: 0.001, regionOK: true, get: func(s *Summary, sc string) float64 { return totalsOf(s, sc).ErrorRate }},
	{name: "p50_ms", floor: 1, regionOK: true, get: func(s *Summary, sc string) float64 { return totalsOf(s, sc).LatencyMS.P50 }},
	{name: "p99_ms", floor: 1, regionOK: true, get: func(s *Summary, sc string) float64 { return totalsOf(s, sc).LatencyMS.P99 }},
	{name: "max_ms", floor: 1, regionOK: true, get: func(s *Summary, sc string) float64 { return totalsOf(s, sc).LatencyMS.Max }},
	{name: "startup_s", floor: 0.25, get: func(s *Summary, _ string) float64 { return s.StartupS }},
	{name: "detect_s", floor: 1, get: func(s *Summary, _ string) float64 {
		return worstRecovery(s, false, func(r Recovery) float64 { return r.DetectS })
	}},
	{name: "recover_s", floor: 1, get: func(s *Summary, _ string) float64 {
		return worstRecovery(s, true, func(r Recovery) float64 { return r.RecoverS })
	}},
	{name: "unavailable_s", floor: 1, get: func(s *Summary, _ string) float64 {
		return worstRecovery(s, true, func(r Recovery) float64 { return r.UnavailableS })
	}},
}

const allScope = "all"

func totalsOf(s *Summary, scope string) Totals {
	if scope == allScope {
		return s.Total
	}
	r := s.Regions[scope]
	return Totals{Requests: r.Requests, Errors: r.Errors, ErrorRate: r.ErrorRate, LatencyMS: r.LatencyMS}
}

// worstRecovery is the largest figure over the faults users noticed; with
// endless, a fault that never recovered makes it +Inf.
func worstRecovery(s *Summary, endless bool, pick func(Recovery) float64) float64 {
	worst := 0.0
	for _, r := range s.Recovery {
		if r.DetectS < 0 {
			continue
		}
		if endless && r.RecoverS < 0 {
			return math.Inf(1)
		}
		worst = math.Max(worst, pick(r))
	}
	return worst
}

// Compare lines up the key figures of run b against run a: per region
// requests, error rate and latency, and for the whole run also startup and
// the worst detection, recovery and unavailability. A figure is a regression
// when it got worse by more than tolerance (relative to a) and by more than
// the figure's noise floor; a region that vanished from b is one too.
func Compare(a, b *Summary, tolerance float64) Comparison {
	c := Comparison{A: a.RunID, B: b.RunID, Tolerance: tolerance}
	scopes := map[string]bool{}
	for name := range a.Regions {
		scopes[name] = true
	}
	for name := range b.Regions {
		scopes[name] = true
	}
	names := make([]string, 0, len(scopes))
	for name := range scopes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, scope := range append(names, allScope) {
		_, inA := a.Regions[scope]
		_, inB := b.Regions[scope]
		if scope == allScope {
			inA, inB = true, true
		}
		for _, kf := range keyFigures {
			if scope != allScope && !kf.regionOK {
				continue
			}
			d := Delta{Scope: scope, Metric: kf.name}
			switch {
			case !inA:
				d.Missing, d.B = "A", kf.get(b, scope)
			case !inB:
				d.Missing, d.A, d.Regression = "B", kf.get(a, scope), true
			default:
				d.A, d.B = kf.get(a, scope), kf.get(b, scope)
				d.Regression = worse(kf, d.A, d.B, tolerance)
			}
			c.Deltas = append(c.Deltas, d)
		}
	}
	return c
}

func worse(kf keyFigure, a, b, tolerance float64) bool {
	if kf.lowerBad {
		a, b = -a, -b
	}
	// +Inf is a fault that never recovered: only recovery figures carry it.
	if math.IsInf(b, 1) {
		return !math.IsInf(a, 1)
	}
	if math.IsInf(a, 1) {
		return false
	}
	change := b - a
	return change > kf.floor && change > tolerance*math.Abs(a)
}

// Text writes the comparison as an aligned table, regressions marked.
func (c Comparison) Text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scope\tmetric\tA %s\tB %s\tdelta\tchange\t\n", c.A, c.B)
	for _, d := range c.Deltas {
		flag := ""
		if d.Regression {
			flag = "  REGRESSION"
		}
		switch d.Missing {
		case "A":
			fmt.Fprintf(tw, "%s\t%s\t–\t%s\t\tnew in B\t%s\n", d.Scope, d.Metric, figure(d.B), flag)
		case "B":
			fmt.Fprintf(tw, "%s\t%s\t%s\t–\t\tmissing in B\t%s\n", d.Scope, d.Metric, figure(d.A), flag)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Scope, d.Metric, figure(d.A), figure(d.B), signed(d.A, d.B), percent(d.A, d.B), flag)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write comparison: %w", err)
	}
	regs := c.Regressions()
	verdict := fmt.Sprintf("no regression beyond %s%%", num(100*c.Tolerance))
	if len(regs) > 0 {
		names := make([]string, len(regs))
		for i, d := range regs {
			names[i] = d.Scope + " " + d.Metric
		}
		verdict = fmt.Sprintf("%d regression(s) beyond %s%%: %s", len(regs), num(100*c.Tolerance), strings.Join(names, ", "))
	}
	_, err := fmt.Fprintf(w, "\n%s\n", verdict)
	return err
}

func figure(v float64) string {
	if math.IsInf(v, 1) {
		return "never"
	}
	return num(v)
}

func signed(a, b float64) string {
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return ""
	}
	d := b - a
	if d > 0 {
		return "+" + num(d)
	}
	return num(d)
}

func percent(a, b float64) string {
	switch {
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return ""
	case a == b:
		return "0%"
	case a == 0:
		return "new"
	}
	return fmt.Sprintf("%+.0f%%", 100*(b-a)/math.Abs(a))
}
