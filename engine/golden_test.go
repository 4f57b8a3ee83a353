package engine_test

import (
	"compress/gzip"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// A real `faultline run scenarios/smoke.yaml` (Docker, default topology,
// web-us-east-1 killed at 15 s) is kept in testdata/smoke-run as its run
// folder had it: the scenario as played, summary.json and the raw loadgen
// buckets (gzipped). Rebuilding it must give the golden reports; with
// -update the golden files are rewritten from the current code.
func TestGoldenRecordedSmokeRun(t *testing.T) {
	src := filepath.Join("testdata", "smoke-run")
	dir := t.TempDir()
	for _, f := range []string{engine.ScenarioFile, results.SummaryFile} {
		data, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	gunzip(t, filepath.Join(src, "loadgen.jsonl.gz"), filepath.Join(dir, engine.RawLoadFile))

	sum, err := engine.Rebuild(dir, scenarios.Options{FaultKinds: chaos.Kinds(), Workloads: loadgen.Workloads(), Metrics: results.Metrics()})
	require.NoError(t, err)

	// The recorded kill shows in the series where the recovery says it does.
	require.Len(t, sum.Faults, 1)
	require.Len(t, sum.Recovery, 1)
	assert.GreaterOrEqual(t, sum.Recovery[0].DetectS, 0.0)
	assert.Positive(t, sum.Regions["us-east"].Errors)

	for _, f := range []string{results.SummaryFile, results.ReportFile, "junit.xml"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		golden := filepath.Join(src, f+".golden")
		if *update {
			require.NoError(t, os.WriteFile(golden, got, 0o644))
			continue
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err, "missing golden file: run go test ./engine -run Golden -update")
		assert.Equal(t, string(want), string(got), "%s differs from %s (go test ./engine -run Golden -update)", f, golden)
	}
}

func gunzip(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	zr, err := gzip.NewReader(in)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	out, err := os.Create(to)
	require.NoError(t, err)
	defer out.Close()
	_, err = io.Copy(out, zr)
	require.NoError(t, err)
}
