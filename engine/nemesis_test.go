package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime/memory"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
)

// timeScale shrinks scenarios/nemesis.yaml's clock for the in-memory runs:
// the nemesis draws kinds and targets in the same order whatever the times,
// and its busy windows scale with them, so the schedule stays the file's.
// 8 keeps the last fault (56 s + 3 s) inside the simulated load (whole
// seconds below the duration).
const timeScale = 8

func loadNemesis(t *testing.T, seed int64) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Load("../scenarios/nemesis.yaml", scenarios.Options{
		FaultKinds: chaos.Kinds(), Workloads: loadgen.Workloads(), Metrics: results.Metrics(),
	})
	require.NoError(t, err)
	require.NotNil(t, sc.Nemesis)
	sc.Seed = seed
	return sc
}

// planned is a fault as scheduled, without what happened to it.
func planned(fs []results.Fault) []results.Fault {
	out := make([]results.Fault, len(fs))
	for i, f := range fs {
		f.InjectedAt, f.HealedAt, f.Error = 0, 0, ""
		out[i] = f
	}
	return out
}

func TestNemesisScenarioRecordsTheSameScheduleForTheSameSeed(t *testing.T) {
	full := loadNemesis(t, 1)
	var runs [2][]results.Fault
	for i := range runs {
		sc := loadNemesis(t, 1)
		sc.Duration /= timeScale
		sc.Nemesis.Every /= timeScale
		sc.Nemesis.For /= timeScale
		sc.Nemesis.Start /= timeScale
		rt := memory.New()
		sum, err := newEngine(t, rt, &simDriver{rt: rt}).Run(context.Background(), sc)
		require.NoError(t, err)
		assert.Equal(t, int64(1), sum.Seed)
		assertNothingLeft(t, rt)
		runs[i] = sum.Faults
	}
	require.NotEmpty(t, runs[0])
	assert.Equal(t, planned(runs[0]), planned(runs[1]), "same seed, same schedule")

	// What was recorded is the file's schedule, time scaled, every fault
	// played in its window.
	want, err := full.Expand(plan(t, full))
	require.NoError(t, err)
	require.Len(t, runs[0], len(want))
	kinds := map[string]bool{}
	for i, w := range want {
		got := runs[0][i]
		kinds[got.Kind] = true
		assert.Equal(t, w.Kind, got.Kind, "fault %d", i)
		assert.Equal(t, w.Targets, got.Targets, "fault %d", i)
		assert.InDelta(t, (w.At / timeScale).Seconds(), got.At, 1e-9, "fault %d", i)
		assert.InDelta(t, (w.For / timeScale).Seconds(), got.For, 1e-9, "fault %d", i)
		assert.GreaterOrEqual(t, got.InjectedAt, got.At, "fault %d", i)
		assert.GreaterOrEqual(t, got.HealedAt, got.InjectedAt, "fault %d", i)
	}
	assert.Greater(t, len(kinds), 1, "the nemesis draws more than one kind")

	// The comparison can fail: another seed draws another schedule.
	other := loadNemesis(t, 2)
	otherSched, err := other.Expand(plan(t, other))
	require.NoError(t, err)
	assert.NotEqual(t, scheduleOf(want), scheduleOf(otherSched))
}

func scheduleOf(s []scenarios.Scheduled) [][]string {
	out := make([][]string, len(s))
	for i, f := range s {
		out[i] = append([]string{f.At.String(), f.Kind}, f.Targets...)
	}
	return out
}

func plan(t *testing.T, sc *scenarios.Scenario) []topology.NodePlan {
	t.Helper()
	dep, err := deploy.Plan(sc.Topology, "plan", nil)
	require.NoError(t, err)
	return dep.Nodes
}
