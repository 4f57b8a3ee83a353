package main

// End-to-end tests against the real Docker engine and the real node image.
// They are skipped with -short (make test-unit); make test runs them.

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/docker"
)

func dockerRuntime(t *testing.T) *docker.Runtime {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test needs Docker; skipped with -short")
	}
	rt, err := docker.New(context.Background())
	require.NoError(t, err, "the Docker engine must answer for end-to-end tests")
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

// leftovers lists containers and networks carrying label key=value.
func leftovers(t *testing.T, rt runtime.Runtime, key, value string) (containers []runtime.ContainerInfo, networks []string) {
	t.Helper()
	ctx := context.Background()
	containers, err := rt.List(ctx, runtime.Labels{key: value})
	require.NoError(t, err)
	ns, err := rt.ListNetworks(ctx, runtime.Labels{key: value})
	require.NoError(t, err)
	for _, n := range ns {
		networks = append(networks, n.Name)
	}
	return containers, networks
}

func onlyRunDir(t *testing.T, out string) string {
	t.Helper()
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Len(t, entries, 1, "one run folder")
	return filepath.Join(out, entries[0].Name())
}

func TestE2ESmokeScenario(t *testing.T) {
	rt := dockerRuntime(t)
	out := t.TempDir()
	code := run([]string{"run", "../../scenarios/smoke.yaml", "--out", out})
	dir := onlyRunDir(t, out)
	sum, err := results.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, exitPass, code, "checks: %+v, error: %s", sum.Checks, sum.Error)

	assert.Equal(t, results.VerdictPass, sum.Verdict)
	t.Logf("startup_s=%.2f requests=%d errors=%d p99=%.1fms", sum.StartupS, sum.Total.Requests, sum.Total.Errors, sum.Total.LatencyMS.P99)
	for _, region := range []string{"us-east", "eu-west", "ap-south"} {
		reg := sum.Regions[region]
		assert.GreaterOrEqual(t, len(reg.Series), 40, "%s has a per-second series", region)
		assert.Positive(t, reg.Requests, region)
	}
	require.Len(t, sum.Faults, 1)
	kill := sum.Faults[0]
	assert.Equal(t, "kill", kill.Kind)
	assert.Equal(t, []string{"web-us-east-1"}, kill.Targets)
	assert.Empty(t, kill.Error)
	// The spike: us-east sees errors in the seconds after the kill, and the
	// other regions, whose web nodes are untouched, see none.
	spike := int64(0)
	for _, pt := range sum.Regions["us-east"].Series {
		if float64(pt.T) >= kill.InjectedAt-1 && float64(pt.T) <= kill.InjectedAt+5 {
			spike += pt.Errors
		}
	}
	assert.Positive(t, spike, "the kill shows as errors in us-east's series")
	assert.Zero(t, sum.Regions["eu-west"].Errors)
	assert.Zero(t, sum.Regions["ap-south"].Errors)
	require.Len(t, sum.Recovery, 1)
	rec := sum.Recovery[0]
	assert.GreaterOrEqual(t, rec.RecoverS, rec.DetectS)
	// The report's detect and recover times are read off the same series
	// (they are rounded to milliseconds, hence the 1 ms slack):
	// detection is the first second with a failed request, recovery the
	// first second whose error rate is back under 1%.
	series := sum.Regions["us-east"].Series
	firstErr := -1
	for _, pt := range series {
		if float64(pt.T) >= math.Floor(kill.InjectedAt) && pt.Errors > 0 {
			firstErr = pt.T
			break
		}
	}
	require.GreaterOrEqual(t, firstErr, 0)
	assert.Equal(t, firstErr, int(math.Floor(kill.InjectedAt+rec.DetectS+0.001)), "detect_s points at the first errored second")
	recovered := int(math.Floor(kill.InjectedAt + rec.RecoverS + 0.001))
	for _, pt := range series {
		if pt.T == recovered {
			assert.LessOrEqual(t, float64(pt.Errors), 0.01*pt.RPS, "recover_s points at a second back under the bound")
		}
	}

	cs, ns := leftovers(t, rt, runtime.LabelRun, sum.RunID)
	assert.Empty(t, cs)
	assert.Empty(t, ns)
	assert.FileExists(t, filepath.Join(dir, results.ReportFile))
}

func TestE2EFailedCheckCleansUp(t *testing.T) {
	rt := dockerRuntime(t)
	out := t.TempDir()
	code := run([]string{"run", "testdata/tiny-failing.yaml", "--out", out})
	assert.Equal(t, exitFail, code)
	sum, err := results.ReadSummary(onlyRunDir(t, out))
	require.NoError(t, err)
	assert.Equal(t, results.VerdictFail, sum.Verdict)
	cs, ns := leftovers(t, rt, runtime.LabelRun, sum.RunID)
	assert.Empty(t, cs)
	assert.Empty(t, ns)
}

// buildController builds the faultline binary, to run it as a child process
// that can be sent signals.
func buildController(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "faultline")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// startChild starts `faultline run tiny-long.yaml` and waits until its load
// phase has begun (its events.jsonl says so), with a fault active.
func startChild(t *testing.T, rt runtime.Runtime, bin string) *exec.Cmd {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(bin, "run", "testdata/tiny-long.yaml", "--out", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		events, _ := filepath.Glob(filepath.Join(out, "*", results.EventsFile))
		if len(events) != 1 {
			return false
		}
		data, err := os.ReadFile(events[0])
		return err == nil && strings.Contains(string(data), `"event":"fault"`)
	}, 90*time.Second, 100*time.Millisecond, "the child's run reached its first fault")
	cs, err := rt.List(context.Background(), runtime.Labels{runtime.LabelOwnerPID: strconv.Itoa(cmd.Process.Pid)})
	require.NoError(t, err)
	require.NotEmpty(t, cs, "the child's containers carry its pid")
	return cmd
}

func TestE2ESignalsCleanUp(t *testing.T) {
	rt := dockerRuntime(t)
	bin := buildController(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := startChild(t, rt, bin)
			pid := strconv.Itoa(cmd.Process.Pid)
			require.NoError(t, cmd.Process.Signal(sig))
			err := cmd.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "an interrupted run does not pass")
			assert.Equal(t, exitFail, ee.ExitCode())
			cs, ns := leftovers(t, rt, runtime.LabelOwnerPID, pid)
			assert.Empty(t, cs, "containers left after %s", sig)
			assert.Empty(t, ns, "networks left after %s", sig)
		})
	}
}

func TestE2ESIGKILLLeftoversRemovedByNextRunAndDownAll(t *testing.T) {
	rt := dockerRuntime(t)
	bin := buildController(t)

	t.Run("next run", func(t *testing.T) {
		cmd := startChild(t, rt, bin)
		pid := strconv.Itoa(cmd.Process.Pid)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		cs, _ := leftovers(t, rt, runtime.LabelOwnerPID, pid)
		require.NotEmpty(t, cs, "SIGKILL leaves the topology behind")
		// The next run reuses the same subnet, so it can only start if it
		// removed the leftovers first.
		assert.Equal(t, exitPass, run([]string{"run", "testdata/tiny.yaml", "--out", t.TempDir()}))
		cs, ns := leftovers(t, rt, runtime.LabelOwnerPID, pid)
		assert.Empty(t, cs)
		assert.Empty(t, ns)
	})
	// `down RUN_ID` rather than `down --all`, which would also remove the
	// resources of other packages' tests running at the same time; both
	// remove by run label through the same code.
	t.Run("down", func(t *testing.T) {
		cmd := startChild(t, rt, bin)
		pid := strconv.Itoa(cmd.Process.Pid)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		cs, _ := leftovers(t, rt, runtime.LabelOwnerPID, pid)
		require.NotEmpty(t, cs)
		assert.Equal(t, exitPass, run([]string{"down", cs[0].Labels[runtime.LabelRun]}))
		cs, ns := leftovers(t, rt, runtime.LabelOwnerPID, pid)
		assert.Empty(t, cs)
		assert.Empty(t, ns)
	})
}
