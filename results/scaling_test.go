package results

import (
	"math"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func histOf(ms ...int64) *hdrhistogram.Histogram {
	h := newHist()
	for _, v := range ms {
		_ = h.RecordValue(v * 1000)
	}
	return h
}

func TestRecorderWindows(t *testing.T) {
	start := time.Unix(1000, 0)
	r := NewRecorder(start)
	r.Add("east", 1000, 4, 1, map[string]int64{"4xx": 1}, histOf(10, 10, 10, 10))
	r.Add("east", 1001, 4, 2, map[string]int64{"5xx": 2}, histOf(300, 300, 300, 300))
	r.Add("east", 1002, 4, 0, nil, histOf(20, 20, 20, 20))

	tests := []struct {
		name     string
		from, to int64
		wantMS   float64
		wantReqs int64
	}{
		{"one second", 1000, 1001, 10, 4},
		{"two seconds, the slow one dominates p95", 1000, 1002, 300, 8},
		{"nothing recorded", 990, 995, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, reqs := r.Quantile("east", time.Unix(tt.from, 0), time.Unix(tt.to, 0), 95)
			assert.InDelta(t, tt.wantMS, ms, tt.wantMS*0.01+0.01)
			assert.Equal(t, tt.wantReqs, reqs)
		})
	}
	errs := func(region string, from, to int64) int64 {
		_, e := r.Counts(region, time.Unix(from, 0), time.Unix(to, 0))
		return e
	}
	assert.EqualValues(t, 3, errs("east", 1000, 1003), "seconds 1000 to 1002")
	assert.EqualValues(t, 2, errs("east", 1001, 1002))
	assert.EqualValues(t, 0, errs("west", 1000, 1003))
	assert.EqualValues(t, 1, r.ErrorsOfKind("east", "4xx"))
}

func TestAutoscaleMetrics(t *testing.T) {
	s := &Summary{Autoscale: map[string]AutoscaleStats{
		"east": {FirstHealthyS: 2, RecoverS: 4, ScaleOuts: 1},
		"west": {FirstHealthyS: -1, RecoverS: 8},
	}}
	for _, tc := range []struct {
		metric, region string
		want           float64
	}{
		{"autoscale_first_healthy_s", "east", 2},
		{"autoscale_first_healthy_s", "west", math.Inf(1)}, // never: fails any max
		{"autoscale_recover_s", "", 8},                     // the worst region
		{"autoscale_scale_outs", "east", 1},
	} {
		got, err := metrics[tc.metric](s, tc.region)
		require.NoError(t, err, tc.metric)
		assert.Equal(t, tc.want, got, "%s{%s}", tc.metric, tc.region)
	}
	_, err := metrics["autoscale_recover_s"](&Summary{}, "")
	assert.Error(t, err, "a run without an autoscaler has no figure")
}

func TestKillTailErrorRate(t *testing.T) {
	series := make([]Second, 20)
	for i := range series {
		series[i] = Second{T: i, RPS: 100}
	}
	series[10].Errors = 30 // the kill second
	series[11].Errors = 5  // inside the failover window
	series[13].Errors = 1  // after it
	s := &Summary{
		Faults:  []Fault{{Kind: "kill", InjectedAt: 10.2, HealedAt: 18.5}},
		Regions: map[string]Region{"east": {Series: series}},
	}
	got, err := metrics["kill_tail_error_rate"](s, "east")
	require.NoError(t, err)
	// Seconds 12..17 (12 is the first whole second after 10.2 + 1 s; 17
	// the last that ends before the heal): 1 error in 600 requests.
	assert.InDelta(t, 1.0/600, got, 1e-9)
	_, err = metrics["kill_tail_error_rate"](&Summary{}, "")
	assert.Error(t, err)
}

func TestLostSessions(t *testing.T) {
	s := &Summary{Sessions: map[string]SessionStats{"a": {Mode: "stateful", Lost: 5}, "b": {Mode: "stateless"}}}
	got, err := metrics["lost_sessions"](s, "a")
	require.NoError(t, err)
	assert.EqualValues(t, 5, got)
	got, err = metrics["lost_sessions"](s, "")
	require.NoError(t, err)
	assert.EqualValues(t, 5, got)
	secs := sections(s)
	var titles []string
	for _, sec := range secs {
		titles = append(titles, sec.Title)
	}
	assert.Contains(t, titles, "Sessions")
}

func TestLBFailoverMetrics(t *testing.T) {
	s := &Summary{LBFailover: []LBFailover{
		{Region: "a", Node: "web-a-1", KilledAt: 10, SilentAt: 10.3, OutAt: 10.5, OutBy: "ejected", EjectionS: 0.2, BoundS: 1, RequestsAfter: 1000, ErrorRateAfter: 0.001},
		{Region: "a", Node: "web-a-2", KilledAt: 20, SilentAt: 20.1, OutAt: 20.9, OutBy: "down", EjectionS: 0.8, BoundS: 1, RequestsAfter: 1000, ErrorRateAfter: 0.003},
		{Region: "b", Node: "web-b-1", KilledAt: 10, SilentAt: 10, OutAt: -1, EjectionS: -1, BoundS: 1},
	}}
	for _, tc := range []struct {
		metric, region string
		want           float64
	}{
		{"lb_ejection_s", "a", 0.8}, // the worst kill
		{"lb_ejection_s", "b", math.Inf(1)},
		{"lb_ejection_s", "", math.Inf(1)},
		{"lb_error_rate_after_ejection", "a", 0.003},
		{"lb_error_rate_after_ejection", "b", math.Inf(1)}, // never out: no figure
	} {
		got, err := metrics[tc.metric](s, tc.region)
		require.NoError(t, err, tc.metric)
		assert.Equal(t, tc.want, got, "%s{%s}", tc.metric, tc.region)
	}
	_, err := metrics["lb_ejection_s"](s, "c")
	assert.ErrorContains(t, err, "no web node behind an lb was killed in region c")

	secs := lbFailoverSections(s)
	require.Len(t, secs, 1)
	md := secs[0].markdown()
	assert.Contains(t, md, "| a | web-a-2 | 20.00 | 20.10 | 20.90 | down | 0.80 | 1.00 | 1000 | 0.30% |")
	assert.Contains(t, md, "| **b** ✗ | web-b-1 | 10.00 | 10.00 | never |  | never | 1.00 | 0 | — |")
}

func TestRecorderCounts(t *testing.T) {
	r := NewRecorder(time.Unix(1000, 0))
	r.Add("east", 1000, 10, 1, nil, nil)
	r.Add("east", 1001, 20, 2, nil, nil)
	r.Add("east", 1002, 30, 0, nil, nil)
	reqs, errs := r.Counts("east", time.Unix(1001, 0), time.Unix(1003, 0))
	assert.EqualValues(t, 50, reqs, "[from, to)")
	assert.EqualValues(t, 2, errs)
	reqs, _ = r.Counts("west", time.Unix(1000, 0), time.Unix(1003, 0))
	assert.Zero(t, reqs)
}

func TestCacheHitRatio(t *testing.T) {
	s := &Summary{Cache: map[string]CacheStats{
		"cached": {Hits: 90, Misses: 8, Errors: 2, HitRatio: 0.9},
		"plain":  {Uncached: 100},
	}}
	got, err := metrics["cache_hit_ratio"](s, "cached")
	require.NoError(t, err)
	assert.Equal(t, 0.9, got)
	_, err = metrics["cache_hit_ratio"](s, "plain")
	assert.ErrorContains(t, err, "read nothing through a cache")
	got, err = metrics["cache_hit_ratio"](s, "")
	require.NoError(t, err)
	assert.Equal(t, 0.9, got)
	var md string
	for _, sec := range sections(s) {
		md += sec.markdown()
	}
	assert.Contains(t, md, "| cached | 90 | 8 | 2 | 0 | 0.900 |")
	assert.Contains(t, md, "| plain | 0 | 0 | 0 | 100 | — |")
}
