package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/topology"
)

// captureStderr runs f with os.Stderr redirected and returns what it wrote.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		done <- b.String()
	}()
	defer func() { os.Stderr = old }()
	f()
	require.NoError(t, w.Close())
	os.Stderr = old
	return <-done
}

func TestMisspelledFieldExits2NamingFileLineField(t *testing.T) {
	for _, cmd := range []string{"validate", "run"} {
		t.Run(cmd, func(t *testing.T) {
			var code int
			out := captureStderr(t, func() { code = run([]string{cmd, "testdata/misspelled.yaml"}) })
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, out, "testdata/misspelled.yaml:9:5: faults[0].kidn: unknown field")
		})
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"valid files", []string{"validate", "testdata/tiny.yaml", "testdata/tiny-topology.yaml", "../../scenarios/smoke.yaml", "../../topology/default.yaml"}, exitPass},
		{"unknown command", []string{"explode"}, exitUsage},
		{"unknown flag", []string{"run", "--frobnicate", "x.yaml"}, exitUsage},
		{"missing file", []string{"run", "testdata/nope.yaml"}, exitUsage},
		{"run without scenario", []string{"run"}, exitUsage},
		{"unknown fault kind", []string{"chaos", "meteor", "web-solo-1"}, exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			captureStderr(t, func() { code = run(tc.args) })
			assert.Equal(t, tc.want, code)
		})
	}
}

// The committed docker-compose.yml must be what `faultline compose` prints
// for the default topology; regenerate it with `make compose`.
func TestComposeFileIsCurrent(t *testing.T) {
	want, err := composeFor(topology.Default())
	require.NoError(t, err)
	got, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "docker-compose.yml is stale: run `make compose`")
}

// Every committed scenario validates against what this binary knows (fault
// kinds, workloads, metrics, deployable roles), as `faultline validate`
// would, so a scenario cannot rot unnoticed until someone runs it.
func TestEveryScenarioFileIsValid(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		_, err := loadScenario(f)
		assert.NoError(t, err, f)
	}
}
