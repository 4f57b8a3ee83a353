// Package results holds what a run leaves behind: the summary.json schema of
// DESIGN.md, the per-second series built from loadgen buckets, and the
// human reports derived from them.
package results

import "time"

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
	Kind       string   `json:"kind"`
	Targets    []string `json:"targets"`
	InjectedAt float64  `json:"injected_at"`
	HealedAt   float64  `json:"healed_at"`
	Error      string   `json:"error,omitempty"`
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
}

// Recovery is how long users noticed a fault.
type Recovery struct {
	Fault   string  `json:"fault"`
	DetectS float64 `json:"detect_s"`
	// RecoverS is seconds from injection until the error rate is back under
	// the bound; negative when it never recovered within the run.
	RecoverS float64 `json:"recover_s"`
}

// LoadgenStats is a load generator's own resource use.
type LoadgenStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
}
