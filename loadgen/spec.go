// Package loadgen drives HTTP load at a constant rate and reports per-second
// results without coordinated omission. Attack is the engine the loadgen role
// runs inside a container; Client is what the controller uses to start an
// attack remotely and receive its results as a stream.
package loadgen

import (
	"fmt"
	"net/url"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// DefaultTimeout applies when AttackSpec.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Rates outside this range are mistakes (and the slowest would overflow
// vegeta's interval arithmetic).
const minRate, maxRate = 0.001, 1e6

// MaxDuration bounds one attack so no request loop can run away.
const MaxDuration = 24 * time.Hour

// AttackSpec describes one constant-rate attack.
type AttackSpec struct {
	Target   string        // base URL, e.g. http://10.201.1.10:8080
	Workload string        // a name from Workloads()
	Rate     float64       // requests per second
	Duration time.Duration // how long to send
	Timeout  time.Duration // per request; DefaultTimeout when zero
	// StartAt is a wall-clock start; the attack waits until then so that all
	// regions start together. Zero means now.
	StartAt time.Time
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
	case !(s.Rate >= minRate && s.Rate <= maxRate):
		return fmt.Errorf("rate %v: must be in [%v, %v] req/s", s.Rate, minRate, maxRate)
	case s.Duration <= 0 || s.Duration > MaxDuration:
		return fmt.Errorf("duration %v: must be in (0, %v]", s.Duration, MaxDuration)
	case s.Rate*s.Duration.Seconds() < 1:
		return fmt.Errorf("rate %v for %v: sends no request", s.Rate, s.Duration)
	case s.Timeout < 0:
		return fmt.Errorf("timeout %v: must not be negative", s.Timeout)
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
// responses arrive after it was first sent), and a consumer adds them up.
type Bucket struct {
	Second       int64 // unix second of the INTENDED send time
	Requests     int64
	Errors       int64
	ErrorsByKind map[string]int64 `json:",omitempty"`
	// Latency in microseconds from the intended send time to the response
	// (or failure), for every request including failed ones; trailing zero
	// counts are trimmed. Merge with Totals.Add.
	Latency *hdrhistogram.Snapshot
}

// Final ends an attack's stream.
type Final struct {
	Requests    int64
	CPUSeconds  float64 // CPU used by the loadgen process during the attack
	WallSeconds float64
	Error       string `json:",omitempty"`
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
	return nil
}
