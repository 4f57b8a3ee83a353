package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// recording is a run as the controller sees it: the played faults, the
// scenario's thresholds and the loadgen buckets.
type recording struct {
	RunID      string                  `json:"run_id"`
	Scenario   string                  `json:"scenario"`
	Seed       int64                   `json:"seed"`
	StartedAt  time.Time               `json:"started_at"`
	EndedAt    time.Time               `json:"ended_at"`
	StartupS   float64                 `json:"startup_s"`
	Faults     []Fault                 `json:"faults"`
	Thresholds []Threshold             `json:"thresholds"`
	Loadgen    map[string]LoadgenStats `json:"loadgen"`
}

type recordedBucket struct {
	Region   string           `json:"region"`
	T        int64            `json:"t"`
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	Kinds    map[string]int64 `json:"kinds"`
	LatUS    [][2]int64       `json:"lat_us"`
}

// loadRecordedRun builds a summary from a recording the way the engine does
// (engine/finish.go): recorder → regions and totals → recovery → checks.
func loadRecordedRun(t testing.TB, dir string) *Summary {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	require.NoError(t, err)
	var rec recording
	require.NoError(t, json.Unmarshal(data, &rec))

	r := NewRecorder(rec.StartedAt)
	f, err := os.Open(filepath.Join(dir, "buckets.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var b recordedBucket
		require.NoError(t, json.Unmarshal(sc.Bytes(), &b))
		h := newHist()
		for _, vc := range b.LatUS {
			require.NoError(t, h.RecordValues(vc[0], vc[1]))
		}
		r.Add(b.Region, rec.StartedAt.Unix()+b.T, b.Requests, b.Errors, b.Kinds, h)
	}
	require.NoError(t, sc.Err())

	s := &Summary{RunID: rec.RunID, Scenario: rec.Scenario, Seed: rec.Seed, StartedAt: rec.StartedAt, EndedAt: rec.EndedAt,
		StartupS: rec.StartupS, Faults: rec.Faults, Loadgen: rec.Loadgen, Regions: r.Regions()}
	for _, reg := range s.Regions {
		s.Total.Requests += reg.Requests
		s.Total.Errors += reg.Errors
	}
	s.Total.ErrorRate = float64(s.Total.Errors) / float64(s.Total.Requests)
	s.Total.LatencyMS = r.Overall()
	s.Recovery = ComputeRecovery(s.Faults, s.Regions, RecoveryBound)
	Evaluate(s, rec.Thresholds)
	return s
}

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./results -update")
	assert.Equal(t, string(want), string(got), "%s differs: if the change is intended, run go test ./results -update and review the diff", path)
}

func TestGoldenReports(t *testing.T) {
	s := loadRecordedRun(t, "testdata/kill-run")
	dir := t.TempDir()
	require.NoError(t, WriteSummary(dir, s))
	require.NoError(t, WriteReports(dir, s))
	for _, tc := range []struct{ file, golden string }{
		{SummaryFile, "kill-run/summary.golden.json"},
		{ReportFile, "kill-run/report.golden.md"},
		{JUnitFile, "kill-run/junit.golden.xml"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(dir, tc.file))
			require.NoError(t, err)
			golden(t, tc.golden, got)
		})
	}
}

// The report must say what the per-second series shows: us-east fails from
// the kill second on and is healthy again four seconds later.
func TestRecordedKillRecoveryMatchesSeries(t *testing.T) {
	s := loadRecordedRun(t, "testdata/kill-run")
	require.Len(t, s.Recovery, 1)
	rec := s.Recovery[0]
	east := s.Regions["us-east"].Series
	firstErr, lastBad := -1, -1
	limit := P99Limit(BaselineP99(s.Faults, s.Regions)["us-east"])
	for _, pt := range east {
		if pt.Errors > 0 && firstErr < 0 {
			firstErr = pt.T
		}
		if float64(pt.Errors) > RecoveryBound*pt.RPS || pt.P99 > limit {
			lastBad = pt.T
		}
	}
	require.Equal(t, 15, firstErr)
	assert.Equal(t, 18, lastBad, "the queueing second after the errors is still degraded")
	assert.InDelta(t, 0, rec.DetectS, 1e-9)
	assert.InDelta(t, float64(lastBad+1)-15.02, rec.RecoverS, 1e-9)
	assert.InDelta(t, rec.RecoverS-rec.DetectS, rec.UnavailableS, 1e-9)

	var md bytes.Buffer
	require.NoError(t, Markdown(&md, s))
	assert.Contains(t, md.String(), "| kill web-us-east-1 | 15.02 | 25.31 | 0 | 3.98 | 3.98 |")
}
