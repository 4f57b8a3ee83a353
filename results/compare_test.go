package results

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompareIdenticalRunsPass(t *testing.T) {
	a := loadRecordedRun(t, "testdata/kill-run")
	b := loadRecordedRun(t, "testdata/kill-run")
	c := Compare(a, b, DefaultTolerance)
	assert.Empty(t, c.Regressions())
	// 3 regions × 5 figures, plus the whole run's 5 + startup and 3 recovery figures.
	assert.Len(t, c.Deltas, 3*5+5+4)
	var out bytes.Buffer
	require.NoError(t, c.Text(&out))
	assert.Contains(t, out.String(), "no regression beyond 20%")
}

func TestCompareFlagsDoubledP99(t *testing.T) {
	a := loadRecordedRun(t, "testdata/kill-run")
	b := loadRecordedRun(t, "testdata/kill-run")
	east := b.Regions["us-east"]
	east.LatencyMS.P99 *= 2
	b.Regions["us-east"] = east
	c := Compare(a, b, DefaultTolerance)
	regs := c.Regressions()
	require.Len(t, regs, 1)
	assert.Equal(t, "us-east", regs[0].Scope)
	assert.Equal(t, "p99_ms", regs[0].Metric)
	assert.InDelta(t, 2*regs[0].A, regs[0].B, 1e-9)
	var out bytes.Buffer
	require.NoError(t, c.Text(&out))
	assert.Contains(t, out.String(), "REGRESSION")
	assert.Contains(t, out.String(), "1 regression(s) beyond 20%: us-east p99_ms")
}

func TestCompareRules(t *testing.T) {
	base := func() *Summary {
		return &Summary{RunID: "a", StartupS: 4,
			Regions:  map[string]Region{"r1": {Requests: 1000, ErrorRate: 0.01, LatencyMS: Percentiles{P50: 2, P99: 40, Max: 90}}},
			Recovery: []Recovery{{Fault: "kill x", Kind: "kill", DetectS: 0.5, RecoverS: 4, UnavailableS: 3.5}}}
	}
	tests := []struct {
		name   string
		change func(b *Summary)
		want   []string // scope/metric of the regressions
	}{
		{"within tolerance", func(b *Summary) { setP99(b, "r1", 47) }, nil},
		{"beyond tolerance", func(b *Summary) { setP99(b, "r1", 49) }, []string{"r1/p99_ms"}},
		{"faster is no regression", func(b *Summary) { setP99(b, "r1", 10) }, nil},
		{"sub-millisecond change is noise", func(b *Summary) { setP50(b, "r1", 2.9) }, nil},
		{"fewer requests", func(b *Summary) { r := b.Regions["r1"]; r.Requests = 700; b.Regions["r1"] = r }, []string{"r1/requests"}},
		{"more errors", func(b *Summary) { r := b.Regions["r1"]; r.ErrorRate = 0.05; b.Regions["r1"] = r }, []string{"r1/error_rate"}},
		{"slower startup", func(b *Summary) { b.StartupS = 6 }, []string{"all/startup_s"}},
		{"never recovered", func(b *Summary) { b.Recovery[0].RecoverS = -1 }, []string{"all/recover_s", "all/unavailable_s"}},
		{"slower recovery", func(b *Summary) { b.Recovery[0].RecoverS = 8; b.Recovery[0].UnavailableS = 7.5 },
			[]string{"all/recover_s", "all/unavailable_s"}},
		{"region vanished", func(b *Summary) { delete(b.Regions, "r1") },
			[]string{"r1/requests", "r1/error_rate", "r1/p50_ms", "r1/p99_ms", "r1/max_ms"}},
		{"new region is no regression", func(b *Summary) { b.Regions["r2"] = Region{Requests: 5} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			b.RunID = "b"
			tc.change(b)
			var got []string
			for _, d := range Compare(base(), b, DefaultTolerance).Regressions() {
				got = append(got, d.Scope+"/"+d.Metric)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func setP99(s *Summary, region string, v float64) {
	r := s.Regions[region]
	r.LatencyMS.P99 = v
	s.Regions[region] = r
}

func setP50(s *Summary, region string, v float64) {
	r := s.Regions[region]
	r.LatencyMS.P50 = v
	s.Regions[region] = r
}
