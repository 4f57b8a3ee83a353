package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/results"
)

// recordedSummary is the summary.json the results golden test builds from
// its recorded run.
const recordedSummary = "../../results/testdata/kill-run/summary.golden.json"

// runFolder makes a run folder holding summary.json, optionally edited.
func runFolder(t *testing.T, edit func(*results.Summary)) string {
	t.Helper()
	data, err := os.ReadFile(recordedSummary)
	require.NoError(t, err)
	dir := t.TempDir()
	if edit != nil {
		var s results.Summary
		require.NoError(t, json.Unmarshal(data, &s))
		edit(&s)
		require.NoError(t, results.WriteSummary(dir, &s))
		return dir
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, results.SummaryFile), data, 0o644))
	return dir
}

// captureStdout runs f with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		done <- b.String()
	}()
	defer func() { os.Stdout = old }()
	f()
	require.NoError(t, w.Close())
	os.Stdout = old
	return <-done
}

// `faultline report` must rebuild from summary.json exactly the reports the
// run wrote: the same bytes as the golden files of the recorded run.
func TestReportRebuildsEveryReport(t *testing.T) {
	dir := runFolder(t, nil)
	var code int
	stderr := captureStderr(t, func() { code = run([]string{"report", dir}) })
	require.Equal(t, exitPass, code, stderr)
	for _, r := range results.Reports {
		assert.FileExists(t, filepath.Join(dir, r.File))
		assert.Contains(t, stderr, filepath.Join(dir, r.File))
	}
	for file, golden := range map[string]string{
		results.ReportFile: "../../results/testdata/kill-run/report.golden.md",
		results.JUnitFile:  "../../results/testdata/kill-run/junit.golden.xml",
	} {
		want, err := os.ReadFile(golden)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), file)
	}

	captureStderr(t, func() { code = run([]string{"report", filepath.Join(dir, "nope")}) })
	assert.Equal(t, exitUsage, code, "a folder without summary.json is bad input")
}

func TestCompareExitCodes(t *testing.T) {
	a := runFolder(t, nil)
	same := runFolder(t, nil)
	doubled := runFolder(t, func(s *results.Summary) {
		r := s.Regions["eu-west"]
		r.LatencyMS.P99 *= 2
		s.Regions["eu-west"] = r
	})
	corrupt := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(corrupt, results.SummaryFile), []byte(`{"run_id": `), 0o644))

	tests := []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"identical runs", []string{"compare", a, same}, exitPass, "no regression beyond 20%"},
		{"identical runs, failing on regression", []string{"compare", "--fail-on-regression", a, same}, exitPass, "no regression"},
		{"doubled p99 is reported", []string{"compare", a, doubled}, exitPass, "eu-west p99_ms"},
		{"doubled p99 fails with the flag", []string{"compare", a, doubled, "--fail-on-regression"}, exitFail, "REGRESSION"},
		{"doubled p99 within a 150% tolerance", []string{"compare", "--tolerance", "1.5", "--fail-on-regression", a, doubled}, exitPass, "no regression beyond 150%"},
		{"missing run", []string{"compare", a, filepath.Join(a, "nope")}, exitUsage, ""},
		{"corrupt summary", []string{"compare", a, corrupt}, exitUsage, ""},
		{"negative tolerance", []string{"compare", "--tolerance", "-1", a, same}, exitUsage, ""},
		{"one run only", []string{"compare", a}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			out := captureStdout(t, func() {
				captureStderr(t, func() { code = run(tc.args) })
			})
			assert.Equal(t, tc.want, code)
			assert.Contains(t, out, tc.out)
		})
	}
}
