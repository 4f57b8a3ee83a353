package results

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repeatedKills is a run whose nemesis killed web nodes three times.
func repeatedKills() *Summary {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	o := map[int]Second{10: failing(40), 11: failing(40), 25: failing(40), 40: failing(40), 41: failing(40), 42: failing(40), 43: slow(300)}
	s := &Summary{RunID: "r", Scenario: "nemesis", StartedAt: start, EndedAt: start.Add(60 * time.Second), Verdict: VerdictPass,
		Regions: map[string]Region{"a": steady(60, o)},
		Faults: []Fault{
			{Kind: "kill", Targets: []string{"web-a-1"}, InjectedAt: 10, HealedAt: 15},
			{Kind: "kill", Targets: []string{"web-a-2"}, InjectedAt: 25, HealedAt: 30},
			{Kind: "kill", Targets: []string{"web-a-1"}, InjectedAt: 40, HealedAt: 45},
		},
		Markers: []Marker{{T: 26.5, Kind: "scale", Label: "web +1"}},
	}
	s.Recovery = ComputeRecovery(s.Faults, s.Regions, RecoveryBound)
	return s
}

func TestReportsShowRecoveryDistribution(t *testing.T) {
	s := repeatedKills()
	dir := t.TempDir()
	require.NoError(t, WriteSummary(dir, s))
	require.NoError(t, WriteReports(dir, s))

	back, err := ReadSummary(dir)
	require.NoError(t, err)
	assert.Equal(t, []RecoveryStat{{Kind: "kill", Count: 3, DetectP50S: 0, RecoverP50S: 2, RecoverMaxS: 4, UnavailP50S: 2, UnavailMaxS: 4}}, back.RecoveryStats)
	assert.Equal(t, map[string]float64{"a": 10}, back.BaselineP99MS)

	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "3× kill: detect p50 0 s (max 0), recover p50 2 s (max 4), unavailable p50 2 s (max 4); 0 unnoticed, 0 never recovered.")
	assert.Contains(t, string(md), "| kill web-a-1 | 40 | 45 | 0 | 4 | 4 |")
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	assert.Contains(t, string(page), "<td>kill</td><td class=\"n\">3</td>")
	assert.Contains(t, string(page), "web +1", "markers are drawn and listed")
}

func TestJUnit(t *testing.T) {
	s := &Summary{RunID: "r", Scenario: "smoke", Verdict: VerdictFail, Error: "infrastructure error: node lb-a-1 never became healthy",
		Checks: []Check{
			{Name: "ok", Expr: "error_rate <= 0.05", Value: 0.001, Pass: true},
			{Name: "slow", Expr: "p99_ms{region=a} <= 100", Value: 250.5, Pass: false},
			{Name: "gone", Expr: "p99_ms{region=b} <= 100", Value: -1, Pass: false},
		}}
	var b bytes.Buffer
	require.NoError(t, JUnit(&b, s))
	var doc junitSuites
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc), b.String())
	assert.Equal(t, 4, doc.Tests)
	assert.Equal(t, 2, doc.Failures)
	assert.Equal(t, 1, doc.Errors)
	cases := doc.Suites[0].Cases
	require.Len(t, cases, 4)
	assert.Equal(t, "run", cases[0].Name)
	assert.Contains(t, cases[0].Error.Message, "never became healthy")
	assert.Nil(t, cases[1].Failure)
	assert.Equal(t, "p99_ms{region=a} <= 100: got 250", cases[2].Failure.Message)
	assert.Equal(t, "p99_ms{region=b} <= 100: not measurable", cases[3].Failure.Message)
}

// Reports of a run that produced nothing (infrastructure failure before any
// load) must still render.
func TestReportsOfAnEmptyRun(t *testing.T) {
	s := &Summary{RunID: "r", Scenario: "smoke", Verdict: VerdictFail, Error: "docker unreachable", Regions: map[string]Region{}}
	for _, r := range Reports {
		var b bytes.Buffer
		require.NoError(t, r.Render(&b, s), r.File)
		assert.Contains(t, b.String(), "docker unreachable", r.File)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 3: "3", 0.008444: "0.00844", 3.981: "3.98", 14.887: "14.9", 2001.2: "2001", -1: "-1", 0.5: "0.5"} {
		assert.Equal(t, want, num(v), "%v", v)
	}
}

// Whatever a summary.json holds, every report renders without panicking and
// the HTML never carries text that escapes its element.
func FuzzReports(f *testing.F) {
	seed, err := os.ReadFile("testdata/kill-run/summary.golden.json")
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(`{"regions":{"<script>":{"series":[{"t":-5,"rps":1e308,"errors":9,"p99":-1}]}},"faults":[{"kind":"k","injected_at":1e9,"healed_at":-3}],"markers":[{"t":1e12,"label":"</svg>"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Summary
		if json.Unmarshal(data, &s) != nil {
			return
		}
		s.Recovery = ComputeRecovery(s.Faults, s.Regions, RecoveryBound)
		for _, r := range Reports {
			var b bytes.Buffer
			require.NoError(t, r.Render(&b, &s), r.File)
			if r.File == HTMLFile {
				assert.NotContains(t, b.String(), "<script")
			}
		}
	})
}

func TestSparkline(t *testing.T) {
	flat := func(n int) []Second {
		s := make([]Second, n)
		for i := range s {
			s[i] = Second{T: i, RPS: 50}
		}
		return s
	}
	long := flat(600)
	long[300].Errors = 1
	ramp := []Second{{RPS: 0}, {RPS: 25}, {RPS: 50}, {RPS: 50, Errors: 2}}
	tests := []struct {
		name   string
		series []Second
		want   string
	}{
		{"one character per second", ramp, "▁▄█x"},
		{"no traffic", []Second{{}, {}}, "▁▁"},
		{"a long run is squeezed to the width, errors kept", long, strings.Repeat("█", 30) + "x" + strings.Repeat("█", 29)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, sparkline(tc.series)) })
	}
}

func TestMarkdownBoundsTheFaultTable(t *testing.T) {
	s := repeatedKills()
	for len(s.Faults) < 50 {
		s.Faults = append(s.Faults, Fault{Kind: "pause", Targets: []string{"db-a-1"}, InjectedAt: 50, HealedAt: 51})
	}
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, s))
	assert.Contains(t, b.String(), "| … 30 more in report.html |")
	assert.Equal(t, maxFaultRows, strings.Count(b.String(), "| pause db-a-1 |")+strings.Count(b.String(), "| kill web-"))
}
