package results

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/loadgen"
)

func bucket(sec, requests, target int64, users int, cpu float64, latUS ...int64) loadgen.Bucket {
	h := loadgen.NewHistogram()
	for _, v := range latUS {
		_ = h.RecordValue(v)
	}
	return loadgen.Bucket{Second: sec, Requests: requests, Target: target, Users: users, CPU: cpu, Latency: h.Export()}
}

func TestRecorderKeepsGeneratorFigures(t *testing.T) {
	start := time.Unix(1000, 0)
	r := NewRecorder(start)
	// Second 0 arrives in two deltas (a late response), second 1 once.
	require.NoError(t, r.AddBucket("a", bucket(1000, 9, 10, 5, 0.25, 1000)))
	require.NoError(t, r.AddBucket("a", bucket(1000, 1, 0, 4, 0.05, 3000)))
	require.NoError(t, r.AddBucket("a", bucket(1001, 10, 10, 5, 0.3, 2000)))

	bad := bucket(1001, 1, 0, 0, 0, 10)
	bad.Latency.SignificantFigures = 9
	require.Error(t, r.AddBucket("a", bad), "a snapshot off the network is validated")

	a := r.Regions()["a"]
	require.Len(t, a.Series, 2)
	assert.Equal(t, Second{T: 0, RPS: 10, P50: 1, P99: 3.001, Max: 3.001, Target: 10, Users: 5, LoadgenCPU: 0.3}, roundCPU(a.Series[0]),
		"requests, target and CPU add up; users is the most active at once")
	assert.Equal(t, Second{T: 1, RPS: 10, P50: 2, P99: 2, Max: 2, Target: 10, Users: 5, LoadgenCPU: 0.3}, roundCPU(a.Series[1]))
	assert.EqualValues(t, 20, a.Requests)
}

func roundCPU(s Second) Second {
	s.LoadgenCPU = math.Round(s.LoadgenCPU*1000) / 1000
	return s
}

func TestNewClosedModel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int
		x, r, z   float64
		wantPred  float64
		wantErr   float64
		wantHolds bool
	}{
		// 50 users, 1 s think, 100 ms response: 50/1.1 = 45.45 req/s.
		{"exact", 50, 50 / 1.1, 0.1, 1, 45.4545, 0, true},
		{"4% low", 50, 0.96 * 50 / 1.1, 0.1, 1, 45.4545, 0.04, true},
		{"6% high", 50, 1.06 * 50 / 1.1, 0.1, 1, 45.4545, 0.06, false},
		{"no think", 10, 100, 0.1, 0, 100, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClosedModel(tc.n, tc.x, tc.r, tc.z)
			assert.InDelta(t, tc.wantPred, c.PredictedRPS, 1e-3)
			assert.InDelta(t, tc.wantErr, c.LawError, 1e-9)
			assert.Equal(t, tc.wantHolds, c.LawHolds)
		})
	}
	c := NewClosedModel(5, 0, 0, 0)
	assert.False(t, c.LawHolds, "no time elapsed: nothing to check")
	assert.Equal(t, -1.0, c.LawError)
}

func TestLoadMetrics(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	s := &Summary{
		Regions: map[string]Region{"a": {}, "b": {}, "c": {}},
		Capacity: map[string]Capacity{
			"a": {RateRPS: 160}, "b": {RateRPS: 300},
		},
		ClosedModel: map[string]ClosedModel{
			"a": NewClosedModel(50, 45, 0.1, 1), "b": NewClosedModel(50, 40, 0.1, 1), "c": NewClosedModel(1, 0, 0, 0),
		},
	}
	for _, tc := range []struct {
		th   Threshold
		want float64
		pass bool
	}{
		{Threshold{Metric: "capacity_rps", Region: "a", Min: f(144), Max: f(176)}, 160, true},
		{Threshold{Metric: "capacity_rps", Region: "b", Min: f(288), Max: f(352)}, 300, true},
		{Threshold{Metric: "capacity_rps", Min: f(200)}, 160, false}, // the lowest region
		{Threshold{Metric: "capacity_rps", Region: "c", Min: f(0)}, -1, false},
		{Threshold{Metric: "response_time_law_error", Region: "a", Max: f(0.05)}, 0.01, true},
		{Threshold{Metric: "response_time_law_error", Region: "b", Max: f(0.05)}, 0.12, false},
		{Threshold{Metric: "response_time_law_error", Region: "c", Max: f(0.05)}, -1, false}, // nothing measured fails
		{Threshold{Metric: "response_time_law_error", Max: f(1)}, -1, false},                 // the worst, c, is unmeasurable
	} {
		Evaluate(s, []Threshold{tc.th})
		assert.InDelta(t, tc.want, s.Checks[0].Value, 0.001, "%+v", tc.th)
		assert.Equal(t, tc.pass, s.Checks[0].Pass, "%+v", tc.th)
	}
}

// capacityRun is a region whose loadgen fell behind in seconds 2 and 3 and
// a region searched for capacity under a closed load elsewhere.
func capacityRun() *Summary {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	series := func(rps []float64, target []int64) []Second {
		out := make([]Second, len(rps))
		for i := range rps {
			out[i] = Second{T: i, RPS: rps[i], Target: target[i], P50: 50, P99: 60, LoadgenCPU: 0.1}
		}
		return out
	}
	return &Summary{RunID: "cap", Scenario: "capacity", StartedAt: start, EndedAt: start.Add(5 * time.Second), Verdict: VerdictPass,
		Regions: map[string]Region{
			"a": {Requests: 700, Series: series([]float64{100, 100, 50, 80, 100}, []int64{100, 100, 100, 100, 100})},
			"b": {Requests: 500, Series: series([]float64{100, 100, 100, 100, 100}, []int64{100, 100, 100, 100, 100})},
		},
		Loadgen:     map[string]LoadgenStats{"a": {CPUSeconds: 0.5, CPUPercent: 10}, "b": {CPUSeconds: 0.5, CPUPercent: 10}},
		Capacity:    map[string]Capacity{"b": {RateRPS: 320, Steps: 5, Broke: "step 5 (340 req/s), second 27: p99 412ms > 250ms", SLOP99MS: 250, SLOErrorRate: 0.01}},
		ClosedModel: map[string]ClosedModel{"a": NewClosedModel(50, 45, 0.1, 1)},
	}
}

func TestReportsSayWhenTheGeneratorLimited(t *testing.T) {
	s := capacityRun()
	dir := t.TempDir()
	require.NoError(t, WriteSummary(dir, s))
	back, err := ReadSummary(dir)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, back.Loadgen["a"].LimitedSeconds)
	assert.Equal(t, "loadgen sent 430 of 500 requests due (< 95%)", back.Loadgen["a"].GeneratorLimited)
	assert.Empty(t, back.Loadgen["b"].GeneratorLimited)
	assert.Empty(t, back.Loadgen["b"].LimitedSeconds)

	var md bytes.Buffer
	require.NoError(t, Markdown(&md, capacityRun()))
	for _, want := range []string{
		"> ⚠️ The load generator, not the system under test, set the pace in a: loadgen sent 430 of 500 requests due (< 95%); behind in 2 s (t = 2, 3).",
		"| b | 320 | 5 | p99 ≤ 250 ms, errors ≤ 1% | step 5 (340 req/s), second 27: p99 412ms > 250ms |",
		"| a | 50 | 1 | 0.1 | 45 | 45.5 | 1% | yes |",
	} {
		assert.Contains(t, md.String(), want)
	}

	var html bytes.Buffer
	s = capacityRun()
	require.NoError(t, HTML(&html, s))
	assert.Contains(t, html.String(), "loadgen sent 430 of 500 requests due (&lt; 95%); behind in 2 s: t = 2, 3")
	assert.Contains(t, html.String(), "<h2>Capacity</h2>")
	assert.Contains(t, html.String(), "<h2>Closed model: X = N / (R + Z)</h2>")
	assert.Empty(t, s.Loadgen["a"].LimitedSeconds, "rendering leaves the caller's summary as it was")
}

func TestGeneratorLimitedByCPU(t *testing.T) {
	s := capacityRun()
	s.Loadgen["b"] = LoadgenStats{CPUSeconds: 4.5, CPUPercent: 90}
	s.Regions["b"].Series[4].LoadgenCPU = 0.95
	generatorLimits(s)
	assert.Equal(t, "loadgen used 0.90 cores (> 0.80)", s.Loadgen["b"].GeneratorLimited)
	assert.Equal(t, []int{4}, s.Loadgen["b"].LimitedSeconds)
}
