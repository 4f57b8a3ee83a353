package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/nodes/wan"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/docker"
	"github.com/faultline/faultline/topology"
)

const nemesisTopology = `
name: nemesis-e2e
regions:
  - {name: east, subnet: 10.207.11.0/24, nodes: [{role: lb, count: 1}, {role: web, count: 2}, {role: loadgen, count: 1}]}
  - {name: west, subnet: 10.207.12.0/24, nodes: [{role: lb, count: 1}, {role: web, count: 2}, {role: loadgen, count: 1}]}
links:
  - {between: [east, west], rtt: 20ms}
`

// A nemesis over every process fault and partitions, dense enough that
// each web node is hit more than once.
const nemesisScenario = `
name: nemesis-e2e
topology: topology.yaml
seed: 5
duration: 16s
load:
  - {regions: [all], rate: 20, workload: api, timeout: 1s}
nemesis:
  every: 1500ms
  for: 1s
  kinds: [kill, pause, stop, partition]
  targets: {role: web}
checks:
  - {metric: requests, min: 1}
`

// foreign starts a container faultline did not make (no faultline label)
// from the node image, playing a web node, as another user's container on
// the same engine would.
func foreign(t *testing.T, rt *docker.Runtime, image string) (id string, started time.Time) {
	t.Helper()
	ctx := context.Background()
	name := "foreign-web-" + engine.NewRunID()
	require.NoError(t, rt.Create(ctx, runtime.ContainerSpec{
		Name: name, Image: image, Cmd: []string{"web"},
		Env:    map[string]string{"FAULTLINE_NODE": "web-east-1", "FAULTLINE_REGION": "east", "FAULTLINE_ROLE": "web"},
		Labels: runtime.Labels{"test.owner": "faultline-e2e"},
	}))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.Remove(cctx, name)
	})
	require.NoError(t, rt.Start(ctx, name))
	c, err := rt.Client().ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	require.NoError(t, err)
	for k := range c.Container.Config.Labels {
		require.NotContains(t, []string{runtime.LabelRun, runtime.LabelNode, runtime.LabelRole, runtime.LabelRegion}, k)
	}
	started, err = time.Parse(time.RFC3339Nano, c.Container.State.StartedAt)
	require.NoError(t, err)
	return c.Container.ID, started
}

// touches lists what happened to container id since since: any lifecycle
// or network event at all.
func touches(t *testing.T, rt *docker.Runtime, id string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// With Until set the engine ends the stream itself.
	res := rt.Client().Events(ctx, client.EventsListOptions{
		Since:   since.Format(time.RFC3339Nano),
		Until:   time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: client.Filters{}.Add("container", id),
	})
	touched := map[string]bool{"kill": true, "die": true, "stop": true, "pause": true, "unpause": true,
		"restart": true, "start": true, "destroy": true, "connect": true, "disconnect": true, "oom": true}
	var out []string
	for {
		select {
		case m := <-res.Messages:
			if touched[string(m.Action)] {
				out = append(out, string(m.Action))
			}
		case err := <-res.Err:
			require.ErrorContains(t, err, "EOF", "the event stream ends at Until")
			return out
		}
	}
}

// A full `faultline run` with a nemesis of kills, pauses, stops and
// partitions leaves a container that is not its own untouched, and, kept
// running afterwards, a network and engine with nothing of the faults left.
func TestE2ENemesisSparesForeignContainerAndLeavesNothing(t *testing.T) {
	rt := dockerRuntime(t)
	ctx := context.Background()
	top, err := topology.Parse("topology.yaml", []byte(nemesisTopology))
	require.NoError(t, err)
	require.NoError(t, ensureImage(ctx, rt, top.Image, t.Logf))
	id, started := foreign(t, rt, top.Image)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(nemesisTopology), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nemesis.yaml"), []byte(nemesisScenario), 0o644))
	out := t.TempDir()
	began := time.Now()
	code := run([]string{"run", filepath.Join(dir, "nemesis.yaml"), "--out", out, "--keep"})
	sum, err := results.ReadSummary(onlyRunDir(t, out))
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.RemoveByLabel(cctx, runtime.Labels{runtime.LabelRun: sum.RunID})
	})
	require.Equal(t, exitPass, code, "checks: %+v, error: %s", sum.Checks, sum.Error)

	kinds := map[string]int{}
	for _, f := range sum.Faults {
		kinds[f.Kind]++
		assert.Empty(t, f.Error, "%s %v", f.Kind, f.Targets)
		assert.GreaterOrEqual(t, f.InjectedAt, f.At, "%s %v injected", f.Kind, f.Targets)
		assert.Greater(t, f.HealedAt, f.InjectedAt, "%s %v healed", f.Kind, f.Targets)
	}
	t.Logf("faults by kind: %v", kinds)
	assert.GreaterOrEqual(t, len(sum.Faults), 8)
	assert.Positive(t, kinds["kill"]+kinds["stop"], "the nemesis killed or stopped nodes")

	t.Run("foreign container untouched", func(t *testing.T) {
		c, err := rt.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		require.NoError(t, err)
		st := c.Container.State
		assert.True(t, st.Running, "still running")
		assert.False(t, st.Paused, "not paused")
		assert.Zero(t, c.Container.RestartCount, "never restarted")
		now, err := time.Parse(time.RFC3339Nano, st.StartedAt)
		require.NoError(t, err)
		assert.True(t, started.Equal(now), "started once, at %v (now says %v)", started, now)
		assert.Empty(t, touches(t, rt, id, began), "no fault touched it")
	})

	t.Run("nothing left", func(t *testing.T) {
		n, err := netsetup.Discover(ctx, rt, sum.RunID)
		require.NoError(t, err)
		links, err := wan.ParseLinks(deploy.WANLinks(top.Links))
		require.NoError(t, err)
		left, err := n.Leftovers(ctx, netsetup.LinkStrings(links))
		require.NoError(t, err)
		assert.Empty(t, left, "no rule, route, cap, partition or stopped node after the run")
		cs, err := rt.List(ctx, runtime.Labels{runtime.LabelRun: sum.RunID})
		require.NoError(t, err)
		assert.Len(t, cs, 9, "8 nodes and the wan")
		for _, c := range cs {
			assert.Equal(t, runtime.StateRunning, c.State, c.Name)
		}
	})
}
