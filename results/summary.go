// Package results holds what a run leaves behind: the summary.json schema of
// DESIGN.md, the per-second series built from loadgen buckets, and the
// human reports derived from them.
package results

import (
	"time"

	"github.com/faultline/faultline/checkers"
	brokercheck "github.com/faultline/faultline/checkers/broker"
)

// Verdicts.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// Summary is summary.json. Times inside (faults, series) are seconds since
// StartedAt, so runs can be overlaid.
type Summary struct {
	RunID     string    `json:"run_id"`
	Scenario  string    `json:"scenario"`
	Seed      int64     `json:"seed"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Verdict   string    `json:"verdict"`
	StartupS  float64   `json:"startup_s"`
	// Error says why a run could not be carried out (verdict is then fail).
	Error   string            `json:"error,omitempty"`
	Checks  []Check           `json:"checks"`
	Faults  []Fault           `json:"faults"`
	Regions map[string]Region `json:"regions"`
	// Total is every region's requests together; checks without a region use it.
	Total    Totals     `json:"total"`
	Recovery []Recovery `json:"recovery"`
	// Loadgen reports the load generators' own CPU use, so a reader can tell
	// whether the generator or the system under test was the bottleneck.
	Loadgen map[string]LoadgenStats `json:"loadgen,omitempty"`
	// BaselineP99MS is each region's median per-second p99 before the first
	// fault: the latency recovery is measured against.
	BaselineP99MS map[string]float64 `json:"baseline_p99_ms,omitempty"`
	// RecoveryStats is the distribution of recovery per fault kind, for
	// faults that repeat.
	RecoveryStats []RecoveryStat `json:"recovery_stats,omitempty"`
	// Capacity is each step-loaded region's capacity search: the highest
	// rate every second of which met the scenario's SLO.
	Capacity map[string]Capacity `json:"capacity,omitempty"`
	// ClosedModel is each users-loaded region's interactive response-time
	// law check.
	ClosedModel map[string]ClosedModel `json:"closed_model,omitempty"`
	// Markers are instants worth seeing on the time axis (scaling events,
	// leader changes, DNS answer shifts); capabilities append their own kinds.
	Markers []Marker `json:"markers,omitempty"`
	// Scaling and Autoscale are the autoscaler's actions and acceptance figures (scaling.go).
	Scaling   []ScalingEvent            `json:"scaling,omitempty"`
	Autoscale map[string]AutoscaleStats `json:"autoscale,omitempty"`
	// Sessions is each session-loaded region's lost sessions (scaling_sessions.go).
	Sessions map[string]SessionStats `json:"sessions,omitempty"`
	// Edge is each region's CDN edge results and hit ratio (scaling_sessions.go).
	Edge map[string]EdgeStats `json:"edge,omitempty"`
	// Cache is each region's cache reads as its web nodes counted them
	// (scaling_sessions.go); LBFailover is how the lbs took killed web
	// nodes out (scaling_failover.go).
	Cache      map[string]CacheStats `json:"cache,omitempty"`
	LBFailover []LBFailover          `json:"lb_failover,omitempty"`
	// GeoDNS is how the DNS moved each region's clients (runs with geodns).
	GeoDNS *GeoDNS `json:"geodns,omitempty"`
	// Stream is word count's exactness and recovery (runs with stream nodes).
	Stream *Stream `json:"stream,omitempty"`
	// DB is the replicated db's section: lost writes, linearizability,
	// stale reads, failover times (checkers.NewDB).
	DB *checkers.DB `json:"db,omitempty"`
	// Broker is the broker checkers' section: acknowledged, lost,
	// duplicated and reordered messages, failover times, mirror lag.
	Broker *brokercheck.Summary `json:"broker,omitempty"`
}

// Marker is one instant on the run's time axis, drawn as a vertical line.
type Marker struct {
	T     float64 `json:"t"`
	Kind  string  `json:"kind"`
	Label string  `json:"label"`
}

// Check is one threshold from the scenario, evaluated.
type Check struct {
	Name  string  `json:"name"`
	Expr  string  `json:"expr"`
	Value float64 `json:"value"`
	Pass  bool    `json:"pass"`
}

// Fault is one injected fault as it happened (or, for a scheduled fault that
// never ran because the run ended early, as planned with zero times).
type Fault struct {
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	// Peers, OneWay, Link, At and For complete the fault as it was
	// scheduled, so that faults[] is the whole expanded schedule: two runs
	// of one seed can be compared and any run replayed. At and For are
	// planned seconds since the run's start (absent: 0; For 0 holds until
	// the run ends).
	Peers      []string `json:"peers,omitempty"`
	OneWay     bool     `json:"oneway,omitempty"`
	Link       *Link    `json:"link,omitempty"`
	At         float64  `json:"at,omitempty"`
	For        float64  `json:"for,omitempty"`
	InjectedAt float64  `json:"injected_at"`
	HealedAt   float64  `json:"healed_at"`
	Error      string   `json:"error,omitempty"`
}

// Link is what a link fault set and the bandwidth cap of a slow fault;
// absent fields were left unchanged.
type Link struct {
	RTTMS        *float64 `json:"rtt_ms,omitempty"`
	JitterMS     *float64 `json:"jitter_ms,omitempty"`
	Loss         *float64 `json:"loss,omitempty"`
	BandwidthBps *int64   `json:"bandwidth_bps,omitempty"`
}

// Region is what one region's users felt.
type Region struct {
	Requests  int64       `json:"requests"`
	Errors    int64       `json:"errors"`
	ErrorRate float64     `json:"error_rate"`
	LatencyMS Percentiles `json:"latency_ms"`
	// ErrorsByKind counts failed requests by kind (timeout, refused, reset, 5xx, ...).
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	Series       []Second         `json:"series"`
}

// Totals are the figures of all regions together.
type Totals struct {
	Requests  int64       `json:"requests"`
	Errors    int64       `json:"errors"`
	ErrorRate float64     `json:"error_rate"`
	LatencyMS Percentiles `json:"latency_ms"`
}

// Percentiles of latency, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Second is one point of a region's per-second series.
type Second struct {
	T      int     `json:"t"`
	RPS    float64 `json:"rps"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max,omitempty"`
	// Target is how many requests the open models had due this second;
	// RPS below it means the loadgen did not send them all.
	Target int64 `json:"target,omitempty"`
	// Users is how many closed-model users were active this second.
	Users int `json:"users,omitempty"`
	// LoadgenCPU is the cores the region's loadgen used this second.
	LoadgenCPU float64 `json:"loadgen_cpu,omitempty"`
}

// Recovery is how long users noticed a fault.
type Recovery struct {
	Fault   string  `json:"fault"`
	Kind    string  `json:"kind,omitempty"`
	DetectS float64 `json:"detect_s"`
	// RecoverS is seconds from injection until the error rate is back under
	// the bound and p99 back near the baseline; negative when it never
	// recovered within the run.
	RecoverS float64 `json:"recover_s"`
	// UnavailableS is how long users were affected: from detection until
	// recovery, or until the end of the run when it never recovered.
	UnavailableS float64 `json:"unavailable_s"`
}

// RecoveryStat summarises the recoveries of every fault of one kind. The
// percentiles cover the faults users noticed; recover percentiles leave out
// the ones that never recovered (counted in NeverRecovered instead).
type RecoveryStat struct {
	Kind           string  `json:"kind"`
	Count          int     `json:"count"`
	Unnoticed      int     `json:"unnoticed"`
	NeverRecovered int     `json:"never_recovered"`
	DetectP50S     float64 `json:"detect_p50_s"`
	DetectMaxS     float64 `json:"detect_max_s"`
	RecoverP50S    float64 `json:"recover_p50_s"`
	RecoverMaxS    float64 `json:"recover_max_s"`
	UnavailP50S    float64 `json:"unavailable_p50_s"`
	UnavailMaxS    float64 `json:"unavailable_max_s"`
}

// LoadgenStats is a load generator's own resource use.
type LoadgenStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// GeneratorLimited says why the generator, not the system under test,
	// may have set the pace over the run; empty when it kept up.
	GeneratorLimited string `json:"generator_limited,omitempty"`
	// LimitedSeconds are the seconds (since the start) in which it fell
	// behind its schedule or used more than a core's worth of its limit.
	LimitedSeconds []int `json:"limited_seconds,omitempty"`
}
