package engine

import (
	"time"

	"github.com/faultline/faultline/results"
)

// finish turns what was measured into the summary, evaluates the checks and
// writes the run folder. It runs on every path out of Run, so a failed or
// aborted run still leaves its evidence behind.
func (r *run) finish(runErr error) {
	s := r.sum
	if s.EndedAt.IsZero() {
		s.EndedAt = time.Now()
	}
	if s.StartedAt.IsZero() {
		s.StartedAt = s.EndedAt
	}
	r.summarize()
	if runErr != nil {
		s.Verdict = results.VerdictFail
		s.Error = runErr.Error()
	}
	dir := r.e.RunDir()
	if err := results.WriteSummary(dir, s); err != nil {
		r.logf("write summary: %v", err)
	}
	if err := results.WriteReports(dir, s); err != nil {
		r.logf("write reports: %v", err)
	}
	r.event("end", map[string]any{"verdict": s.Verdict})
}

// summarize derives the figures from what the recorder holds and evaluates
// the scenario's checks; Rebuild runs it again from the raw data.
func (r *run) summarize() {
	s := r.sum
	if r.rec != nil {
		s.Regions = r.rec.Regions()
		for _, reg := range s.Regions {
			s.Total.Requests += reg.Requests
			s.Total.Errors += reg.Errors
		}
		if s.Total.Requests > 0 {
			s.Total.ErrorRate = float64(s.Total.Errors) / float64(s.Total.Requests)
		}
		s.Total.LatencyMS = r.rec.Overall()
		s.Recovery = results.ComputeRecovery(s.Faults, s.Regions, results.RecoveryBound)
	}
	if len(r.cpu) > 0 {
		s.Loadgen = map[string]results.LoadgenStats{}
		for region, f := range r.cpu {
			st := results.LoadgenStats{CPUSeconds: f.CPUSeconds}
			if f.WallSeconds > 0 {
				st.CPUPercent = 100 * f.CPUSeconds / f.WallSeconds
			}
			s.Loadgen[region] = st
		}
	}
	ths := make([]results.Threshold, len(r.sc.Checks))
	for i, c := range r.sc.Checks {
		ths[i] = results.Threshold{Name: c.Name, Expr: c.Expr(), Metric: c.Metric, Region: c.Region, Min: c.Min, Max: c.Max}
	}
	results.Evaluate(s, ths)
}
