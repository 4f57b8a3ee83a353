// Package loadgen drives HTTP load and reports per-second results without
// coordinated omission, in two models: open (requests arrive on a schedule
// whatever the server does: constant, ramp or step rate) and closed (N users
// each waiting for a response and then a think time before the next
// request). Attack is the engine the loadgen role runs inside a container;
// Client is what the controller uses to start an attack remotely and
// receive its results as a stream.
package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// DefaultTimeout applies when AttackSpec.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Rates outside this range are mistakes (and the slowest would overflow
// the schedule's interval arithmetic).
const minRate, maxRate = 0.001, 1e6

// MaxDuration bounds one attack so no request loop can run away.
const MaxDuration = 24 * time.Hour

// maxUsers bounds the closed model's goroutines (and connections).
const maxUsers = 100_000

// minStepEvery keeps a step schedule to at most MaxDuration/minStepEvery
// precomputed steps.
const minStepEvery = 100 * time.Millisecond

// AttackSpec describes one attack. Exactly one load model is set: Rate (a
// constant open model, the zero-value default of the fields below), Ramp,
// Step, Phases or Users.
type AttackSpec struct {
	Target   string        // base URL, e.g. http://10.201.1.10:8080 or http://app.faultline.test:8080
	Workload string        // a name from Workloads()
	Rate     float64       // requests per second, constant; 0 when another model is set
	Duration time.Duration // how long to send
	Timeout  time.Duration // per request; DefaultTimeout when zero
	// StartAt is a wall-clock start; the attack waits until then so that all
	// regions start together. Zero means now.
	StartAt time.Time

	Ramp   *Ramp   `json:",omitempty"`
	Step   *Step   `json:",omitempty"`
	Phases []Phase `json:",omitempty"`
	Users  *Users  `json:",omitempty"`

	// Resolvers are DNS servers ("host:port"), tried in order, that resolve
	// a Target given by name; answers are cached for their TTL. Empty: the
	// system resolver, which a name Target then goes through.
	Resolvers []string `json:",omitempty"`
}

// Ramp is an open model whose rate changes linearly from From to To
// requests per second over the attack's Duration.
type Ramp struct {
	From, To float64
}

// Step is an open model that starts at From requests per second and adds By
// every Every, up to Max, which it then holds: the shape of a capacity
// search.
type Step struct {
	From, By, Max float64
	Every         time.Duration
}

// Phase is one stretch of a phased open model: the rate goes linearly from
// From to To requests per second over For (From == To: a constant rate).
// Phases run one after another from the attack's start; past the last one
// the attack sends nothing. They shape a load step mid-run: a quiet
// baseline, a jump, then a decline.
type Phase struct {
	For      time.Duration
	From, To float64
}

// Users is the closed model: N users, each sending a request, waiting for
// its response, thinking for Think (exponentially distributed around it
// when Exponential, else exactly Think), then sending the next.
type Users struct {
	N           int
	Think       time.Duration
	Exponential bool
	Seed        int64 // seeds think times and per-user choices; same seed, same draws
}

// Validate reports the first problem with s.
func (s AttackSpec) Validate() error {
	u, err := url.Parse(s.Target)
	switch {
	case err != nil:
		return fmt.Errorf("target %q: %w", s.Target, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("target %q: scheme must be http or https", s.Target)
	case u.Host == "":
		return fmt.Errorf("target %q: no host", s.Target)
	case workloads[s.Workload] == nil:
		return fmt.Errorf("workload %q: unknown (have %v)", s.Workload, Workloads())
	case s.Duration <= 0 || s.Duration > MaxDuration:
		return fmt.Errorf("duration %v: must be in (0, %v]", s.Duration, MaxDuration)
	case s.Timeout < 0:
		return fmt.Errorf("timeout %v: must not be negative", s.Timeout)
	}
	for _, r := range s.Resolvers {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return fmt.Errorf("resolver %q: want host:port: %w", r, err)
		}
	}
	models := 0
	for _, set := range []bool{s.Rate != 0, s.Ramp != nil, s.Step != nil, s.Phases != nil, s.Users != nil} {
		if set {
			models++
		}
	}
	if models != 1 {
		return fmt.Errorf("load model: set exactly one of rate, ramp, step, phases and users (%d set)", models)
	}
	if s.Users != nil {
		return s.Users.validate(s.Workload)
	}
	if !workloads[s.Workload].open() {
		return fmt.Errorf("workload %q: needs the users (closed) model", s.Workload)
	}
	sched, err := s.schedule()
	if err != nil {
		return err
	}
	if sched.total() < 1 {
		return fmt.Errorf("schedule %s for %v: sends no request", sched, s.Duration)
	}
	return nil
}

func (u Users) validate(workload string) error {
	switch {
	case u.N < 1 || u.N > maxUsers:
		return fmt.Errorf("users %d: must be in [1, %d]", u.N, maxUsers)
	case u.Think < 0 || u.Think > MaxDuration:
		return fmt.Errorf("think time %v: must be in [0, %v]", u.Think, MaxDuration)
	case workloads[workload].user == nil:
		return fmt.Errorf("workload %q: has no user script", workload)
	}
	return nil
}

func (s AttackSpec) timeout() time.Duration {
	if s.Timeout == 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Bucket holds the results whose intended send time fell in one second. The
// stream carries deltas: a second can appear in several Buckets (late
// responses arrive after it was first sent), and a consumer adds them up
// (Totals.Add).
type Bucket struct {
	Second       int64 // unix second of the INTENDED send time
	Requests     int64
	Errors       int64
	ErrorsByKind map[string]int64 `json:",omitempty"`
	// Target is how many requests the open model's schedule had due in this
	// second (sent once per second, so it adds up like Requests); compare
	// with Requests to see whether the generator kept up. Zero in the closed
	// model, whose rate is whatever the users achieve.
	Target int64 `json:",omitempty"`
	// Users is how many closed-model users were active in this second; it
	// merges by maximum, not by sum.
	Users int `json:",omitempty"`
	// CPU is the loadgen process's CPU time, in seconds, used during this
	// wall-clock second (so 1.0 is one core busy); it adds up.
	CPU float64 `json:",omitempty"`
	// Latency in microseconds from the intended send time to the response
	// (or failure), for every request including failed ones; trailing zero
	// counts are trimmed. Merge with Totals.Add.
	Latency *hdrhistogram.Snapshot
}

// Final ends an attack's stream.
type Final struct {
	Requests    int64
	Target      int64   `json:",omitempty"` // requests the open model's schedule had due
	CPUSeconds  float64 // CPU used by the loadgen process during the attack
	WallSeconds float64
	// The closed model's figures for the interactive response-time law
	// X = N/(R+Z): users N, throughput X (completed requests per second of
	// Duration), mean response time R (from the intended send) and the mean
	// think time Z actually waited.
	Users        int     `json:",omitempty"`
	Throughput   float64 `json:",omitempty"`
	MeanResponse float64 `json:",omitempty"` // seconds
	MeanThink    float64 `json:",omitempty"` // seconds
	Error        string  `json:",omitempty"`
}

// Message is one NDJSON line of the attack stream: a Bucket or the Final.
type Message struct {
	Bucket *Bucket `json:",omitempty"`
	Final  *Final  `json:",omitempty"`
}

// Latency histogram range: 1 µs to 60 s at 3 significant digits. Slower
// results are recorded as 60 s.
const (
	minLatencyMicros = 1
	maxLatencyMicros = 60_000_000
	sigFigs          = 3
)

// NewHistogram returns an empty latency histogram with the geometry every
// Bucket uses, for consumers that merge buckets.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(minLatencyMicros, maxLatencyMicros, sigFigs)
}

// Totals accumulates Buckets (for a whole attack, or per second by keeping
// one Totals per Second).
type Totals struct {
	Requests     int64
	Errors       int64
	ErrorsByKind map[string]int64
	Target       int64
	Users        int
	CPU          float64
	Latency      *hdrhistogram.Histogram
}

// Add merges b into t. Snapshots come off the network, so they are
// validated before import.
func (t *Totals) Add(b Bucket) error {
	if t.Latency == nil {
		t.Latency = NewHistogram()
	}
	if t.ErrorsByKind == nil {
		t.ErrorsByKind = map[string]int64{}
	}
	if b.Latency != nil {
		if err := b.Latency.Validate(); err != nil {
			return fmt.Errorf("bucket %d: latency: %w", b.Second, err)
		}
		if dropped := t.Latency.Merge(hdrhistogram.Import(b.Latency)); dropped > 0 {
			return fmt.Errorf("bucket %d: %d latencies outside the histogram range", b.Second, dropped)
		}
	}
	t.Requests += b.Requests
	t.Errors += b.Errors
	for k, n := range b.ErrorsByKind {
		t.ErrorsByKind[k] += n
	}
	t.Target += b.Target
	t.Users = max(t.Users, b.Users)
	t.CPU += b.CPU
	return nil
}

// Generator-bottleneck thresholds: past these, a second's figures describe
// the loadgen more than the system under test.
const (
	GeneratorCPULimit    = 0.8  // cores
	GeneratorAchievedMin = 0.95 // of the target
)

// GeneratorLimited says why the loadgen itself may have limited the load in
// t (one second, or a whole attack with cpuSeconds scaled by its length), or
// "" when it kept up. seconds is how many wall seconds t covers.
func (t Totals) GeneratorLimited(seconds float64) string {
	if seconds > 0 && t.CPU/seconds > GeneratorCPULimit {
		return fmt.Sprintf("loadgen used %.2f cores (> %.2f)", t.CPU/seconds, GeneratorCPULimit)
	}
	if t.Target > 0 && float64(t.Requests) < GeneratorAchievedMin*float64(t.Target) {
		return fmt.Sprintf("loadgen sent %d of %d requests due (< %.0f%%)", t.Requests, t.Target, GeneratorAchievedMin*100)
	}
	return ""
}
