package loadgen

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// schedule is an open model's arrival curve. Request n (from 0) is due at
// due(n), the elapsed time at which the curve's cumulative count reaches
// n+1: the inverse of hits-by-elapsed, so one function both paces the
// requests and tells the recorder when each one should have gone out.
// Vegeta's own LinearPacer only approximates its curve (it extrapolates the
// current rate, and sends its first hit at once), which would put a
// pacer-made error into every latency; hence exact inverses here.
type schedule interface {
	due(n uint64) time.Duration
	rate(elapsed time.Duration) float64 // requests per second due at elapsed
	peak() float64                      // the highest rate
	total() uint64                      // requests due within the duration
	String() string
}

// schedule returns s's open-model schedule.
func (s AttackSpec) schedule() (schedule, error) {
	d := s.Duration
	switch {
	case s.Ramp != nil:
		r := *s.Ramp
		if !(r.From >= 0 && r.From <= maxRate && r.To >= 0 && r.To <= maxRate) {
			return nil, fmt.Errorf("ramp %v→%v: rates must be in [0, %v] req/s", r.From, r.To, maxRate)
		}
		return rampSchedule{from: r.From, to: r.To, d: d}, nil
	case s.Step != nil:
		st := *s.Step
		switch {
		case !(st.From >= minRate && st.From <= maxRate):
			return nil, fmt.Errorf("step from %v: must be in [%v, %v] req/s", st.From, minRate, maxRate)
		case !(st.By >= 0 && st.By <= maxRate):
			return nil, fmt.Errorf("step by %v: must be in [0, %v] req/s", st.By, maxRate)
		case !(st.Max >= st.From && st.Max <= maxRate):
			return nil, fmt.Errorf("step max %v: must be in [from %v, %v] req/s", st.Max, st.From, maxRate)
		case st.Every < minStepEvery:
			return nil, fmt.Errorf("step every %v: must be at least %v", st.Every, minStepEvery)
		}
		return newStepSchedule(st, d), nil
	case s.Phases != nil:
		return newPhaseSchedule(s.Phases, d)
	}
	if !(s.Rate >= minRate && s.Rate <= maxRate) {
		return nil, fmt.Errorf("rate %v: must be in [%v, %v] req/s", s.Rate, minRate, maxRate)
	}
	return constSchedule{interval: time.Duration(float64(time.Second) / s.Rate), d: d}, nil
}

// countBefore is how many requests of s are due before elapsed t.
func countBefore(s schedule, t time.Duration) uint64 {
	n := s.total()
	return uint64(sort.Search(int(n), func(i int) bool { return s.due(uint64(i)) >= t }))
}

// floorHits turns a cumulative count into whole requests, forgiving the
// float error of an exact product like 0.1 × 30.
func floorHits(h float64) uint64 { return uint64(math.Floor(h + 1e-6)) }

// constSchedule is vegeta's ConstantPacer curve: request n at (n+1)·interval.
type constSchedule struct {
	interval, d time.Duration
}

func (c constSchedule) due(n uint64) time.Duration { return time.Duration(n+1) * c.interval }
func (c constSchedule) rate(time.Duration) float64 { return float64(time.Second) / float64(c.interval) }
func (c constSchedule) total() uint64              { return uint64(c.d / c.interval) }
func (c constSchedule) peak() float64              { return c.rate(0) }
func (c constSchedule) String() string             { return fmt.Sprintf("constant %.6g/s", c.rate(0)) }

// rampSchedule's rate goes linearly from `from` to `to` over d, so its
// cumulative count is H(t) = from·t + (to-from)·t²/(2d).
type rampSchedule struct {
	from, to float64
	d        time.Duration
}

func (r rampSchedule) rate(t time.Duration) float64 {
	f := min(max(t.Seconds()/r.d.Seconds(), 0), 1)
	return r.from + (r.to-r.from)*f
}

func (r rampSchedule) peak() float64 { return max(r.from, r.to) }

func (r rampSchedule) total() uint64 { return floorHits((r.from + r.to) / 2 * r.d.Seconds()) }

func (r rampSchedule) due(n uint64) time.Duration { return rampDue(r.from, r.to, r.d, float64(n+1)) }

// rampDue is when a ramp from→to over d has sent k requests: it solves
// a·t² + b·t = k for t in the form that stays exact when a is zero or
// negative (a ramp down).
func rampDue(from, to float64, d time.Duration, k float64) time.Duration {
	a := (to - from) / (2 * d.Seconds())
	b := from
	disc := max(b*b+4*a*k, 0) // rounding can dip below 0 at a ramp down's last hit
	t := 2 * k / (b + math.Sqrt(disc))
	return time.Duration(t * float64(time.Second))
}

func (r rampSchedule) String() string {
	return fmt.Sprintf("ramp %.6g→%.6g/s", r.from, r.to)
}

// stepSchedule holds each step's rate and the cumulative count at its start.
type stepSchedule struct {
	every time.Duration
	rates []float64 // step i covers [i·every, (i+1)·every)
	cum   []float64 // requests due before step i
	tot   uint64
	spec  Step
}

func newStepSchedule(st Step, d time.Duration) stepSchedule {
	n := int((d + st.Every - 1) / st.Every)
	s := stepSchedule{every: st.Every, rates: make([]float64, n), cum: make([]float64, n), spec: st}
	h := 0.0
	for i := range n {
		s.rates[i] = min(st.From+float64(i)*st.By, st.Max)
		s.cum[i] = h
		span := min(st.Every, d-time.Duration(i)*st.Every)
		h += s.rates[i] * span.Seconds()
	}
	s.tot = floorHits(h)
	return s
}

func (s stepSchedule) total() uint64 { return s.tot }
func (s stepSchedule) peak() float64 { return slices.Max(s.rates) }

func (s stepSchedule) rate(t time.Duration) float64 {
	i := min(max(int(t/s.every), 0), len(s.rates)-1)
	return s.rates[i]
}

func (s stepSchedule) due(n uint64) time.Duration {
	k := float64(n + 1)
	// The last step whose start count is below k holds request n; rates are
	// at least From > 0, so it reaches k within that step.
	i := sort.Search(len(s.cum), func(i int) bool { return s.cum[i] >= k }) - 1
	i = max(i, 0)
	return time.Duration(i)*s.every + time.Duration((k-s.cum[i])/s.rates[i]*float64(time.Second))
}

func (s stepSchedule) String() string {
	return fmt.Sprintf("step %.6g/s +%.6g every %v up to %.6g/s", s.spec.From, s.spec.By, s.every, s.spec.Max)
}

// phaseSchedule runs its phases one after another, each a ramp (or a
// constant rate) of its own; it sends nothing past the last one.
type phaseSchedule struct {
	phases []Phase
	start  []time.Duration // of each phase
	cum    []float64       // requests due before each phase
	tot    uint64
}

func newPhaseSchedule(ps []Phase, d time.Duration) (phaseSchedule, error) {
	s := phaseSchedule{phases: ps}
	var at time.Duration
	h := 0.0
	for i, p := range ps {
		switch {
		case p.For <= 0:
			return s, fmt.Errorf("phase %d: for %v: must be positive", i+1, p.For)
		case !(p.From >= 0 && p.From <= maxRate && p.To >= 0 && p.To <= maxRate):
			return s, fmt.Errorf("phase %d: rate %v→%v: must be in [0, %v] req/s", i+1, p.From, p.To, maxRate)
		}
		s.start = append(s.start, at)
		s.cum = append(s.cum, h)
		at += p.For
		h += (p.From + p.To) / 2 * p.For.Seconds()
	}
	switch {
	case len(ps) == 0:
		return s, fmt.Errorf("phases: none")
	case at > d:
		return s, fmt.Errorf("phases last %v, longer than the attack's %v", at, d)
	}
	s.tot = floorHits(h)
	return s, nil
}

func (s phaseSchedule) total() uint64 { return s.tot }

func (s phaseSchedule) peak() float64 {
	peak := 0.0
	for _, p := range s.phases {
		peak = max(peak, p.From, p.To)
	}
	return peak
}

// at is the phase running at elapsed t (the last one from its start on).
func (s phaseSchedule) at(t time.Duration) int {
	return max(sort.Search(len(s.start), func(i int) bool { return s.start[i] > t })-1, 0)
}

func (s phaseSchedule) rate(t time.Duration) float64 {
	i := s.at(t)
	p := s.phases[i]
	if t >= s.start[i]+p.For {
		return 0 // past the last phase
	}
	return rampSchedule{from: p.From, to: p.To, d: p.For}.rate(t - s.start[i])
}

func (s phaseSchedule) due(n uint64) time.Duration {
	k := float64(n + 1)
	// The last phase whose start count is below k holds request n (phases
	// that send nothing have the same start count as the next one).
	i := max(sort.Search(len(s.cum), func(i int) bool { return s.cum[i] >= k })-1, 0)
	p := s.phases[i]
	if p.From == 0 && p.To == 0 {
		return s.start[i] // reached only through float rounding at the very end
	}
	return s.start[i] + min(rampDue(p.From, p.To, p.For, k-s.cum[i]), p.For)
}

func (s phaseSchedule) String() string {
	parts := make([]string, len(s.phases))
	for i, p := range s.phases {
		if p.From == p.To {
			parts[i] = fmt.Sprintf("%.6g/s for %v", p.From, p.For)
		} else {
			parts[i] = fmt.Sprintf("%.6g→%.6g/s over %v", p.From, p.To, p.For)
		}
	}
	return "phases " + strings.Join(parts, ", then ")
}

// pacer paces vegeta by a schedule and stops after its count. A loadgen
// starved of CPU for a moment still sends the requests it owes, late, and
// their latency (from the intended send time) says so; one that cannot keep
// up at all stops at the deadline, so the run's phases stay aligned, and the
// requests it never sent show as Requests below Target.
type pacer struct {
	sched    schedule
	deadline time.Duration
}

var _ vegeta.Pacer = pacer{}

func newPacer(s schedule, d time.Duration) pacer {
	return pacer{sched: s, deadline: d + d/10 + time.Second}
}

func (p pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.sched.total() || elapsed > p.deadline {
		return 0, true
	}
	return p.sched.due(hits) - elapsed, false
}

func (p pacer) Rate(elapsed time.Duration) float64 { return p.sched.rate(elapsed) }
