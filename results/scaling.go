package results

import (
	"fmt"
	"math"
	"time"
)

// ScalingEvent is one action of the autoscaler (summary.json scaling[]).
type ScalingEvent struct {
	T      float64 `json:"t"` // seconds since the run's start
	Region string  `json:"region"`
	Action string  `json:"action"` // "out" (a node added) or "in" (a node drained and removed)
	Node   string  `json:"node"`
	Reason string  `json:"reason"`
	// NodesAfter is the region's web nodes in rotation once the action is done.
	NodesAfter int `json:"nodes_after"`
	// ReadyS is how long the action took: for out, from the decision to the
	// lb taking the node into rotation; for in, from the drain's start to the
	// container's removal.
	ReadyS float64 `json:"ready_s"`
}

// AutoscaleStats is what the autoscaler's acceptance is judged on, per region.
type AutoscaleStats struct {
	// BreachS is when the region's p95 first went above the policy's SLO
	// (-1: never). A second in which more than 5% of the requests failed
	// breaks the SLO however fast they failed, here and in RecoverS.
	BreachS float64 `json:"breach_s"`
	// FirstHealthyS is from the breach to the first added node in rotation
	// (-1: none added after a breach).
	FirstHealthyS float64 `json:"first_healthy_s"`
	// RecoverS is from the breach to the first of three seconds in a row
	// with p95 back under the SLO (-1: never).
	RecoverS float64 `json:"recover_s"`
	// ScaleInErrors counts failed requests in the region during scale-ins,
	// from each drain's start to one second after its container was removed.
	ScaleInErrors int64 `json:"scale_in_errors"`
	ScaleOuts     int   `json:"scale_outs"`
	ScaleIns      int   `json:"scale_ins"`
	MaxNodes      int   `json:"max_nodes"`
}

// Quantile is the latency (ms) at quantile q (0-100) over a region's
// seconds [from, to) since the unix epoch, and how many requests it covers.
func (r *Recorder) Quantile(region string, from, to time.Time, q float64) (ms float64, requests int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.regions[region]
	if !ok {
		return 0, 0
	}
	h := newHist()
	for s := from.Unix(); s < to.Unix(); s++ {
		if sec, ok := rr.seconds[s]; ok {
			h.Merge(sec.hist)
			requests += sec.requests
		}
	}
	if h.TotalCount() == 0 {
		return 0, requests
	}
	return float64(h.ValueAtQuantile(q)) / 1000, requests
}

// Counts are a region's requests and failed requests in the unix seconds
// [from, to) (of their intended send times), as Quantile's.
func (r *Recorder) Counts(region string, from, to time.Time) (requests, errors int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.regions[region]
	if !ok {
		return 0, 0
	}
	for s := from.Unix(); s < to.Unix(); s++ {
		if sec, ok := rr.seconds[s]; ok {
			requests += sec.requests
			errors += sec.errors
		}
	}
	return requests, errors
}

// ErrorsOfKind counts a region's failed requests of one kind over the run.
func (r *Recorder) ErrorsOfKind(region, kind string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr, ok := r.regions[region]; ok {
		return rr.kinds[kind]
	}
	return 0
}

func init() {
	stat := func(name string, pick func(AutoscaleStats) float64) {
		metrics[name] = func(s *Summary, region string) (float64, error) {
			return perRegionStat(s, region, pick)
		}
	}
	// The worst region's figure without a region; -1 figures (never
	// happened) read as +Inf so that a check on them fails.
	stat("autoscale_breach_s", func(a AutoscaleStats) float64 { return a.BreachS })
	stat("autoscale_first_healthy_s", func(a AutoscaleStats) float64 { return a.FirstHealthyS })
	stat("autoscale_recover_s", func(a AutoscaleStats) float64 { return a.RecoverS })
	stat("autoscale_scale_in_errors", func(a AutoscaleStats) float64 { return float64(a.ScaleInErrors) })
	stat("autoscale_scale_outs", func(a AutoscaleStats) float64 { return float64(a.ScaleOuts) })
	stat("autoscale_scale_ins", func(a AutoscaleStats) float64 { return float64(a.ScaleIns) })
	registerSection(40, "scaling", scalingSections)
}

func perRegionStat(s *Summary, region string, pick func(AutoscaleStats) float64) (float64, error) {
	if len(s.Autoscale) == 0 {
		return 0, fmt.Errorf("the run had no autoscaler")
	}
	val := func(a AutoscaleStats) float64 {
		if v := pick(a); v >= 0 {
			return v
		}
		return math.Inf(1)
	}
	if region != "" {
		a, ok := s.Autoscale[region]
		if !ok {
			return 0, fmt.Errorf("region %q had no autoscaler", region)
		}
		return val(a), nil
	}
	worst := 0.0
	for _, a := range s.Autoscale {
		worst = math.Max(worst, val(a))
	}
	return worst, nil
}

// ScalingMarker is the timeline marker of one event.
func ScalingMarker(e ScalingEvent) Marker {
	return Marker{T: e.T, Kind: "scale-" + e.Action, Label: fmt.Sprintf("%s %s → %d", e.Action, e.Node, e.NodesAfter)}
}

func scalingSections(s *Summary) []Section {
	if len(s.Autoscale) == 0 && len(s.Scaling) == 0 {
		return nil
	}
	sec := Section{Title: "Autoscaling",
		Note:   "Every scaling action; out: decision → node in the lb's rotation, in: drain start → container removed.",
		Header: []string{"#t s", "region", "action", "node", "#nodes after", "#took s", "reason"}}
	for _, e := range s.Scaling {
		sec.Rows = append(sec.Rows, Row{Cells: []string{fmt.Sprintf("%.1f", e.T), e.Region, e.Action, e.Node,
			fmt.Sprint(e.NodesAfter), fmt.Sprintf("%.1f", e.ReadyS), e.Reason}})
	}
	sum := Section{Title: "Autoscaling acceptance",
		Header: []string{"region", "#SLO breach at s", "#first new node healthy after s", "#p95 back under SLO after s", "#errors during scale-in", "#outs", "#ins", "#max nodes"}}
	f := func(v float64) string {
		if v < 0 {
			return "never"
		}
		return fmt.Sprintf("%.1f", v)
	}
	for _, region := range sortedKeys(s.Autoscale) {
		a := s.Autoscale[region]
		sum.Rows = append(sum.Rows, Row{Bad: a.ScaleInErrors > 0, Cells: []string{region, f(a.BreachS), f(a.FirstHealthyS), f(a.RecoverS),
			fmt.Sprint(a.ScaleInErrors), fmt.Sprint(a.ScaleOuts), fmt.Sprint(a.ScaleIns), fmt.Sprint(a.MaxNodes)}})
	}
	return []Section{sum, sec}
}
