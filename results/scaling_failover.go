package results

import (
	"fmt"
	"math"
)

// FailoverWindowS is two of the lb's default health intervals (500 ms):
// the acceptance says a killed backend is out of rotation by then.
const FailoverWindowS = 1.0

func init() {
	// kill_tail_error_rate is a region's error rate during its kill faults,
	// counted from the first whole second at least FailoverWindowS after
	// each kill to the heal (or the run's end): what users saw once the lb
	// should have taken the dead node out. Errors inside the window are the
	// price of detection and are not counted.
	metrics["kill_tail_error_rate"] = func(s *Summary, region string) (float64, error) {
		var reqs, errs float64
		kills := 0
		for _, f := range s.Faults {
			if f.Kind != "kill" || f.InjectedAt <= 0 {
				continue
			}
			kills++
			from := int(math.Ceil(f.InjectedAt + FailoverWindowS))
			to := math.Inf(1)
			if f.HealedAt > 0 {
				to = f.HealedAt
			}
			for name, r := range s.Regions {
				if region != "" && name != region {
					continue
				}
				for _, sec := range r.Series {
					if sec.T >= from && float64(sec.T)+1 <= to {
						reqs += sec.RPS
						errs += float64(sec.Errors)
					}
				}
			}
		}
		switch {
		case kills == 0:
			return math.NaN(), fmt.Errorf("the run killed nothing")
		case reqs == 0:
			return math.NaN(), fmt.Errorf("no requests after the kills")
		}
		return errs / reqs, nil
	}
}

// LBFailover is how a region's lb handled one of its web nodes being
// killed (stopped or paused): when the node fell silent, when the lb took
// it out of rotation, and what users saw after that (summary.json
// lb_failover[]).
type LBFailover struct {
	Region string `json:"region"`
	Node   string `json:"node"`
	Kind   string `json:"kind"` // the fault: kill, stop or pause
	// KilledAt is when the controller began the fault, in seconds since
	// the start.
	KilledAt float64 `json:"killed_at"`
	// SilentAt is the node's last answer to the controller's own probes
	// (every 100 ms) before the lb took it out, and never before KilledAt:
	// from then on it answered nothing. On a loaded Docker host a kill
	// can take seconds to carry out; the lb is judged from here.
	SilentAt float64 `json:"silent_at"`
	// OutAt is when the lb took the node out of rotation (-1: never, while
	// the fault lasted), by the lb's own clock: OutBy says how, "down"
	// (failed health checks) or "ejected" (consecutive proxy errors).
	OutAt float64 `json:"out_at"`
	OutBy string  `json:"out_by,omitempty"`
	// EjectionS is OutAt − SilentAt (-1: never); BoundS is the acceptance's
	// bound on it, two of the lb's health intervals.
	EjectionS float64 `json:"ejection_s"`
	BoundS    float64 `json:"bound_s"`
	// SessionsHeld is how many sessions a stateful node held in its memory
	// at its last answer: what its death took (absent for stateless nodes).
	SessionsHeld *int64 `json:"sessions_held,omitempty"`
	// Requests and ErrorRateAfter are the region's requests and error rate
	// over the whole seconds from the lb's decision to the heal (or the
	// run's end). In a stateful tier each lost session is one of those
	// errors (a 401).
	RequestsAfter  int64   `json:"requests_after"`
	ErrorRateAfter float64 `json:"error_rate_after"`
}

func init() {
	// The worst of a region's (or the run's) lb failovers; never taken out
	// reads as +Inf, so a bound on it fails.
	failover := func(name string, pick func(LBFailover) float64) {
		metrics[name] = func(s *Summary, region string) (float64, error) {
			worst, n := 0.0, 0
			for _, f := range s.LBFailover {
				if region != "" && f.Region != region {
					continue
				}
				n++
				v := pick(f)
				if v < 0 || math.IsNaN(v) {
					v = math.Inf(1)
				}
				worst = math.Max(worst, v)
			}
			if n == 0 {
				return math.NaN(), fmt.Errorf("no web node behind an lb was killed%s", inRegion(region))
			}
			return worst, nil
		}
	}
	failover("lb_ejection_s", func(f LBFailover) float64 { return f.EjectionS })
	failover("lb_error_rate_after_ejection", func(f LBFailover) float64 {
		if f.OutAt < 0 || f.RequestsAfter == 0 {
			return -1 // no figure: the check fails
		}
		return f.ErrorRateAfter
	})
	registerSection(43, "lb-failover", lbFailoverSections)
}

func inRegion(region string) string {
	if region == "" {
		return ""
	}
	return " in region " + region
}

func lbFailoverSections(s *Summary) []Section {
	if len(s.LBFailover) == 0 {
		return nil
	}
	sec := Section{Title: "Load balancer failover",
		Note: "Each web node killed behind an lb: when the controller began the kill, when the node last answered the controller's probes (from then on it was silent), " +
			"when the lb took it out of rotation (down: failed health checks; ejected: consecutive proxy errors) and how long after the silence that was, " +
			"against two health intervals; then the region's error rate over the whole seconds from the lb's decision to the heal (in a stateful tier, lost sessions are among those errors).",
		Header: []string{"region", "node", "#killed at s", "#silent at s", "#out at s", "by", "#ejection s", "#bound s", "#requests after", "#error rate after"}}
	f := func(v float64) string {
		if v < 0 {
			return "never"
		}
		return fmt.Sprintf("%.2f", v)
	}
	for _, x := range s.LBFailover {
		rate := "—"
		if x.OutAt >= 0 && x.RequestsAfter > 0 {
			rate = fmt.Sprintf("%.2f%%", 100*x.ErrorRateAfter)
		}
		sec.Rows = append(sec.Rows, Row{Bad: x.EjectionS < 0 || x.EjectionS > x.BoundS,
			Cells: []string{x.Region, x.Node, f(x.KilledAt), f(x.SilentAt), f(x.OutAt), x.OutBy, f(x.EjectionS), fmt.Sprintf("%.2f", x.BoundS),
				fmt.Sprint(x.RequestsAfter), rate}})
	}
	return []Section{sec}
}
