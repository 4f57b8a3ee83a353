package results

import (
	"fmt"
	"math"

	"github.com/faultline/faultline/loadgen"
)

// Capacity is one region's capacity search: the step load's highest rate
// whose every full second met the SLO.
type Capacity struct {
	RateRPS float64 `json:"rate_rps"` // 0 when even the first step broke the SLO
	Steps   int     `json:"steps"`    // steps that met the SLO
	// Broke says what broke the SLO in the first step that failed; empty
	// when every step met it, and the capacity is then at least RateRPS.
	Broke        string  `json:"broke,omitempty"`
	SLOP99MS     float64 `json:"slo_p99_ms"`
	SLOErrorRate float64 `json:"slo_error_rate"`
}

// ClosedModel is a closed (users) load's check of the interactive
// response-time law X = N/(R+Z).
type ClosedModel struct {
	Users         int     `json:"users"`          // N
	ThinkS        float64 `json:"think_s"`        // Z, the mean think time actually waited
	ResponseS     float64 `json:"response_s"`     // R, mean response time from the intended send
	ThroughputRPS float64 `json:"throughput_rps"` // X, completed requests per second
	PredictedRPS  float64 `json:"predicted_rps"`  // N/(R+Z)
	LawError      float64 `json:"law_error"`      // |X − N/(R+Z)| / (N/(R+Z))
	LawHolds      bool    `json:"law_holds"`      // LawError ≤ LawTolerance
}

// LawTolerance is how far measured throughput may stray from N/(R+Z) for
// the law to count as holding: the loadgen's own timing (a late wake-up
// lengthens Z) and requests cut off by the end of the run explain a few
// percent.
const LawTolerance = 0.05

// NewClosedModel checks the law for users N, throughput X, mean response
// time R and mean think time Z (seconds).
func NewClosedModel(n int, x, r, z float64) ClosedModel {
	c := ClosedModel{Users: n, ThinkS: z, ResponseS: r, ThroughputRPS: x, LawError: math.Inf(1)}
	if r+z > 0 {
		c.PredictedRPS = float64(n) / (r + z)
		c.LawError = math.Abs(x-c.PredictedRPS) / c.PredictedRPS
	}
	c.LawHolds = c.LawError <= LawTolerance
	if math.IsInf(c.LawError, 0) {
		c.LawError = -1 // JSON has no Inf; no time elapsed, so nothing to check
	}
	return c
}

// generatorLimits fills each region's loadgen stats with whether and when
// the generator itself limited the load, from the run-wide CPU and the
// series (requests due against sent, CPU per second), judged by loadgen's
// own thresholds. It builds a new map: renderers derive on a shallow copy.
func generatorLimits(s *Summary) {
	out := make(map[string]LoadgenStats, len(s.Loadgen))
	for name, st := range s.Loadgen {
		out[name] = st
	}
	for name, reg := range s.Regions {
		st, known := out[name]
		whole := loadgen.Totals{CPU: st.CPUPercent / 100}
		st.LimitedSeconds = nil
		for _, pt := range reg.Series {
			sec := loadgen.Totals{Requests: int64(pt.RPS), Target: pt.Target, CPU: pt.LoadgenCPU}
			if sec.GeneratorLimited(1) != "" {
				st.LimitedSeconds = append(st.LimitedSeconds, pt.T)
			}
			whole.Requests += sec.Requests
			whole.Target += sec.Target
		}
		st.GeneratorLimited = whole.GeneratorLimited(1)
		if !known && st.GeneratorLimited == "" && st.LimitedSeconds == nil {
			continue // a region without a generator's figures gains no empty entry
		}
		out[name] = st
	}
	if len(out) > 0 {
		s.Loadgen = out
	}
}

// generatorNote says in a sentence where and when a generator limited the
// load, or "" when none did.
func generatorNote(s *Summary) string {
	var parts []string
	for _, name := range sortedKeys(s.Loadgen) {
		st := s.Loadgen[name]
		if st.GeneratorLimited == "" && len(st.LimitedSeconds) == 0 {
			continue
		}
		why := st.GeneratorLimited
		if why == "" {
			why = "kept up over the run"
		}
		parts = append(parts, fmt.Sprintf("%s: %s; behind in %d s%s", name, why, len(st.LimitedSeconds), secondsList(st.LimitedSeconds)))
	}
	if len(parts) == 0 {
		return ""
	}
	out := "The load generator, not the system under test, set the pace in "
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out + "."
}

// secondsList renders a few seconds of the run's axis, e.g. " (t = 3, 4, 9 …)".
func secondsList(ts []int) string {
	if len(ts) == 0 {
		return ""
	}
	const show = 8
	out := " (t ="
	for i, t := range ts {
		if i == show {
			return out + " …)"
		}
		out += fmt.Sprintf(" %d", t)
		if i < len(ts)-1 && i < show-1 {
			out += ","
		}
	}
	return out + ")"
}

// perRegion reads a figure of a per-region section: the named region's, or
// over every region the section has, the one pick prefers.
func perRegion[V any](section string, m map[string]V, region string, get func(V) float64, better func(a, b float64) bool) (float64, error) {
	if region != "" {
		v, ok := m[region]
		if !ok {
			return 0, fmt.Errorf("region %q has no %s", region, section)
		}
		return get(v), nil
	}
	if len(m) == 0 {
		return 0, fmt.Errorf("no region has a %s", section)
	}
	first, out := true, 0.0
	for _, v := range m {
		if x := get(v); first || better(x, out) {
			out, first = x, false
		}
	}
	return out, nil
}
