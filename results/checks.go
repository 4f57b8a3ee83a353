package results

import (
	"fmt"
	"math"
	"sort"
)

// A metric reads one figure from a summary, for all regions ("") or one.
type metricFunc func(s *Summary, region string) (float64, error)

var metrics = map[string]metricFunc{
	"error_rate": func(s *Summary, region string) (float64, error) {
		if region == "" {
			return s.Total.ErrorRate, nil
		}
		r, err := regionOf(s, region)
		return r.ErrorRate, err
	},
	"errors": func(s *Summary, region string) (float64, error) {
		if region == "" {
			return float64(s.Total.Errors), nil
		}
		r, err := regionOf(s, region)
		return float64(r.Errors), err
	},
	"requests": func(s *Summary, region string) (float64, error) {
		if region == "" {
			return float64(s.Total.Requests), nil
		}
		r, err := regionOf(s, region)
		return float64(r.Requests), err
	},
	"p50_ms": latency(func(p Percentiles) float64 { return p.P50 }),
	"p90_ms": latency(func(p Percentiles) float64 { return p.P90 }),
	"p99_ms": latency(func(p Percentiles) float64 { return p.P99 }),
	"max_ms": latency(func(p Percentiles) float64 { return p.Max }),
	"startup_s": func(s *Summary, _ string) (float64, error) {
		return s.StartupS, nil
	},
	// recover_s is the worst recovery over all faults: a check bounds the
	// longest outage users saw. A fault that never recovered counts as +Inf.
	"recover_s": func(s *Summary, _ string) (float64, error) {
		worst := 0.0
		for _, r := range s.Recovery {
			if r.RecoverS < 0 {
				return math.Inf(1), nil
			}
			worst = math.Max(worst, r.RecoverS)
		}
		return worst, nil
	},
	// capacity_rps is a region's highest sustainable step rate; without a
	// region, the lowest over the regions that searched.
	"capacity_rps": func(s *Summary, region string) (float64, error) {
		return perRegion("capacity search", s.Capacity, region, func(c Capacity) float64 { return c.RateRPS },
			func(a, b float64) bool { return a < b })
	},
	// response_time_law_error is |X − N/(R+Z)| / (N/(R+Z)) of a region's
	// closed load; without a region, the worst.
	"response_time_law_error": func(s *Summary, region string) (float64, error) {
		return perRegion("closed (users) load", s.ClosedModel, region, func(c ClosedModel) float64 {
			if c.PredictedRPS == 0 {
				return math.NaN() // nothing to compare: the check fails
			}
			return c.LawError
		}, func(a, b float64) bool { return a > b || math.IsNaN(a) })
	},
	"detect_s": func(s *Summary, _ string) (float64, error) {
		worst := 0.0
		for _, r := range s.Recovery {
			worst = math.Max(worst, r.DetectS)
		}
		return worst, nil
	},
}

func latency(pick func(Percentiles) float64) metricFunc {
	return func(s *Summary, region string) (float64, error) {
		if region == "" {
			return pick(s.Total.LatencyMS), nil
		}
		r, err := regionOf(s, region)
		return pick(r.LatencyMS), err
	}
}

func regionOf(s *Summary, name string) (Region, error) {
	r, ok := s.Regions[name]
	if !ok {
		return Region{}, fmt.Errorf("region %q recorded no load", name)
	}
	return r, nil
}

// Metrics lists the metric names checks may use.
func Metrics() []string {
	names := make([]string, 0, len(metrics))
	for n := range metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Threshold is one check to evaluate: Metric within [Min, Max].
type Threshold struct {
	Name, Expr, Metric, Region string
	Min, Max                   *float64
}

// Evaluate runs every threshold against s, fills s.Checks and s.Verdict, and
// reports whether all passed. A metric that cannot be read fails its check
// rather than passing silently.
func Evaluate(s *Summary, ths []Threshold) bool {
	s.Checks = make([]Check, 0, len(ths))
	all := true
	for _, th := range ths {
		c := Check{Name: th.Name, Expr: th.Expr, Value: math.NaN()}
		f, ok := metrics[th.Metric]
		if ok {
			if v, err := f(s, th.Region); err == nil {
				c.Value = v
				c.Pass = (th.Min == nil || v >= *th.Min) && (th.Max == nil || v <= *th.Max)
			}
		}
		if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
			// JSON has no NaN/Inf; -1 marks "not measurable" and the check fails.
			c.Value = -1
			c.Pass = false
		}
		all = all && c.Pass
		s.Checks = append(s.Checks, c)
	}
	s.Verdict = VerdictFail
	if all {
		s.Verdict = VerdictPass
	}
	return all
}
