package loadgen

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// SLO is what every second of a sustainable load must meet.
type SLO struct {
	P99          time.Duration // latency bound, from the intended send time
	MaxErrorRate float64       // fraction of requests; DefaultMaxErrorRate when zero
}

// DefaultMaxErrorRate is the error-rate bound of an SLO that sets none.
const DefaultMaxErrorRate = 0.01

// Second is the merged figures of one second.
type Second struct {
	Second int64
	Totals
}

// PerSecond merges a stream's delta buckets into one Second per second,
// oldest first.
func PerSecond(buckets []Bucket) ([]Second, error) {
	by := map[int64]*Totals{}
	for _, b := range buckets {
		t := by[b.Second]
		if t == nil {
			t = &Totals{}
			by[b.Second] = t
		}
		if err := t.Add(b); err != nil {
			return nil, err
		}
	}
	out := make([]Second, 0, len(by))
	for s, t := range by {
		out = append(out, Second{Second: s, Totals: *t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Second < out[j].Second })
	return out, nil
}

// Capacity is the outcome of a capacity search.
type Capacity struct {
	Rate  float64 // highest sustainable rate; 0 when even the first step broke the SLO
	Steps int     // steps that met the SLO
	// Broke says what broke the SLO in the first step that failed, or ""
	// when every step met it (the capacity is then at least Rate).
	Broke string
}

// MaxSustainableRate finds the highest rate of a step attack (spec with
// Step set, started at start) whose every full second met slo: steps are
// judged in order and the search stops at the first that fails. A second in
// which the loadgen sent under GeneratorAchievedMin of its target fails
// too, since it says nothing about the system under test.
func MaxSustainableRate(spec AttackSpec, start time.Time, buckets []Bucket, slo SLO) (Capacity, error) {
	st := spec.Step
	switch {
	case st == nil:
		return Capacity{}, errors.New("capacity search: not a step attack")
	case st.Every < time.Second:
		return Capacity{}, fmt.Errorf("capacity search: steps of %v hold no full second", st.Every)
	case slo.P99 <= 0:
		return Capacity{}, fmt.Errorf("capacity search: p99 bound %v must be positive", slo.P99)
	}
	maxErr := slo.MaxErrorRate
	if maxErr == 0 {
		maxErr = DefaultMaxErrorRate
	}
	secs, err := PerSecond(buckets)
	if err != nil {
		return Capacity{}, fmt.Errorf("capacity search: %w", err)
	}
	bySec := map[int64]Totals{}
	for _, s := range secs {
		bySec[s.Second] = s.Totals
	}
	sched := newStepSchedule(*st, spec.Duration)
	var c Capacity
	for i, rate := range sched.rates {
		from := start.Add(time.Duration(i) * st.Every)
		to := start.Add(min(time.Duration(i+1)*st.Every, spec.Duration))
		// Full seconds only: a second shared with the previous step mixes
		// two rates (and inherits its queue).
		first := from.Truncate(time.Second)
		if first.Before(from) {
			first = first.Add(time.Second)
		}
		judged := 0
		for s := first; !s.Add(time.Second).After(to); s = s.Add(time.Second) {
			judged++
			if why := meets(bySec[s.Unix()], slo.P99, maxErr); why != "" {
				c.Broke = fmt.Sprintf("step %d (%.6g req/s), second %d: %s", i, rate, s.Unix()-start.Unix(), why)
				return c, nil
			}
		}
		if judged == 0 {
			break // a partial last step
		}
		c.Rate, c.Steps = rate, i+1
	}
	return c, nil
}

// meets says why one second broke the SLO, or "" when it met it.
func meets(t Totals, p99 time.Duration, maxErr float64) string {
	if t.Requests == 0 {
		return "no requests"
	}
	if t.Target > 0 && float64(t.Requests) < GeneratorAchievedMin*float64(t.Target) {
		return fmt.Sprintf("loadgen sent %d of %d due", t.Requests, t.Target)
	}
	if rate := float64(t.Errors) / float64(t.Requests); rate > maxErr {
		return fmt.Sprintf("error rate %.2f%% > %.2f%%", rate*100, maxErr*100)
	}
	if got := time.Duration(t.Latency.ValueAtQuantile(99)) * time.Microsecond; got > p99 {
		return fmt.Sprintf("p99 %v > %v", got, p99)
	}
	return ""
}
