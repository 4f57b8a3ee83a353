package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/memory"
)

// Play records every step as scheduled, whether it ran, and heals what it
// injected.
func TestPlayRecordsTheWholeSchedule(t *testing.T) {
	rt := memory.New()
	ctx := context.Background()
	for _, n := range []string{"web-1", "web-2"} {
		require.NoError(t, rt.Create(ctx, runtime.ContainerSpec{Name: n, Image: "x", Labels: runtime.Labels{runtime.LabelRun: "r1"}}))
		require.NoError(t, rt.Start(ctx, n))
	}
	rtt, loss, bw := 200*time.Millisecond, 0.1, int64(10_000_000)
	steps := []Step{
		{At: 0, For: 100 * time.Millisecond, Spec: Spec{Kind: "pause", Targets: []string{"web-1"}}},
		{At: 0, Spec: Spec{Kind: "kill", Targets: []string{"web-2"}}},
		// Never reached: the run ends first.
		{At: time.Hour, For: 3 * time.Second, Spec: Spec{Kind: "link", Targets: []string{"a"}, Peers: []string{"b"}, OneWay: true,
			Link: LinkChange{RTT: &rtt, Loss: &loss, BandwidthBps: &bw}}},
	}
	runCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	got := Play(runCtx, Env{Runtime: rt, RunID: "r1"}, time.Now(), steps, nil)

	require.Len(t, got, 3)
	assert.Equal(t, "pause", got[0].Kind)
	assert.InDelta(t, 0.1, got[0].For, 1e-9)
	assert.Less(t, got[0].HealedAt, 0.5, "healed when its time was up, before the run ended")
	assert.Zero(t, got[1].For, "held until the run ended")
	assert.GreaterOrEqual(t, got[1].HealedAt, 0.5)
	rttMS := 200.0
	assert.Equal(t, results.Fault{Kind: "link", Targets: []string{"a"}, Peers: []string{"b"}, OneWay: true,
		Link: &results.Link{RTTMS: &rttMS, Loss: &loss, BandwidthBps: &bw}, At: 3600, For: 3,
		InjectedAt: -1, HealedAt: -1}, got[2])
	for _, n := range []string{"web-1", "web-2"} {
		info, err := rt.Inspect(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, runtime.StateRunning, info.State, n)
	}
}

// slowHeal is a fault whose heal takes a while, as a restart does on a
// loaded machine.
type slowHeal struct{ heal time.Duration }

func (slowHeal) Inject(context.Context) error { return nil }
func (f slowHeal) Heal(context.Context) error {
	time.Sleep(f.heal)
	return nil
}

func init() {
	Register("test-slow-heal", func(Env, Spec) (Fault, error) { return slowHeal{heal: 300 * time.Millisecond}, nil })
}

func TestPlayWaitsForTheTargetsHeal(t *testing.T) {
	step := func(at, hold time.Duration, targets ...string) Step {
		return Step{At: at, For: hold, Spec: Spec{Kind: "test-slow-heal", Targets: targets}}
	}
	t.Run("next fault on the node waits", func(t *testing.T) {
		got := Play(context.Background(), Env{}, time.Now(), []Step{
			step(0, 50*time.Millisecond, "a"),
			step(100*time.Millisecond, 50*time.Millisecond, "b", "a"),
			step(100*time.Millisecond, 50*time.Millisecond, "c"),
		}, nil)
		assert.GreaterOrEqual(t, got[1].InjectedAt, got[0].HealedAt, "injected once the earlier heal was done")
		assert.Less(t, got[2].InjectedAt, got[0].HealedAt, "other targets do not wait")
		for _, f := range got {
			assert.Positive(t, f.HealedAt)
		}
	})
	t.Run("run ends while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		got := Play(ctx, Env{}, time.Now(), []Step{step(0, 0, "a"), step(50*time.Millisecond, time.Second, "a")}, nil)
		assert.Positive(t, got[0].HealedAt)
		assert.Equal(t, -1.0, got[1].InjectedAt, "never injected")
		assert.Equal(t, -1.0, got[1].HealedAt)
	})
}

// A region's loadgens are its users: region-down kills the servers only.
func TestRegionDownSparesTheRegionsUsers(t *testing.T) {
	rt := memory.New()
	ctx := context.Background()
	for _, n := range []struct{ name, role, region string }{
		{"web-b-1", "web", "b"}, {"lb-b-1", "lb", "b"}, {"loadgen-b-1", "loadgen", "b"}, {"web-a-1", "web", "a"},
	} {
		require.NoError(t, rt.Create(ctx, runtime.ContainerSpec{Name: n.name, Image: "x", Labels: runtime.Labels{
			runtime.LabelRun: "r1", runtime.LabelRole: n.role, runtime.LabelRegion: n.region, runtime.LabelNode: n.name}}))
		require.NoError(t, rt.Start(ctx, n.name))
	}
	f, err := New(Env{Runtime: rt, RunID: "r1"}, Spec{Kind: "region-down", Targets: []string{"b"}})
	require.NoError(t, err)
	require.NoError(t, f.Inject(ctx))
	for n, want := range map[string]runtime.State{"web-b-1": runtime.StateExited, "lb-b-1": runtime.StateExited,
		"loadgen-b-1": runtime.StateRunning, "web-a-1": runtime.StateRunning} {
		info, err := rt.Inspect(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, want, info.State, n)
	}

	f, err = New(Env{Runtime: rt, RunID: "r1"}, Spec{Kind: "region-down", Targets: []string{"c"}})
	require.NoError(t, err)
	assert.ErrorContains(t, f.Inject(ctx), `no servers in region "c"`)
}
