package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/memory"
	"github.com/faultline/faultline/scenarios"
)

const twoRegions = `
name: engine-test
topology:
  name: tiny
  regions:
    - name: east
      subnet: 10.250.1.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 2}, {role: loadgen, count: 1}]
    - name: west
      subnet: 10.250.2.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 2}, {role: loadgen, count: 1}]
  links:
    - {between: [east, west], rtt: 50ms}
seed: 7
duration: 3s
load:
  - {regions: [all], rate: 100, workload: api}
faults:
  - {at: 1s, kind: kill, target: {node: web-east-1}, for: 1s}
checks:
  - {metric: error_rate, max: 0.5}
  - {metric: error_rate, region: west, max: 0}
`

func parse(t *testing.T, src string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Parse("test.yaml", []byte(src), scenarios.Options{
		FaultKinds: chaos.Kinds(), Workloads: loadgen.Workloads(), Metrics: results.Metrics(),
	})
	require.NoError(t, err)
	return sc
}

// simDriver stands in for real loadgens: every second it reports `rate`
// requests for the loadgen's region, failing the share that would have hit a
// web node that is not running in the memory runtime at that moment — the
// behaviour of a round-robin lb without retries.
type simDriver struct {
	rt       *memory.Runtime
	panicAt  int // second at which to panic, 0 = never
	mu       sync.Mutex
	attacked []string
}

func (d *simDriver) Attack(ctx context.Context, endpoint string, spec loadgen.AttackSpec, onBucket func(loadgen.Bucket)) (loadgen.Final, error) {
	region, err := d.regionOf(ctx, endpoint)
	if err != nil {
		return loadgen.Final{}, err
	}
	d.mu.Lock()
	d.attacked = append(d.attacked, region+"->"+spec.Target)
	d.mu.Unlock()
	for sec := 0; time.Duration(sec)*time.Second < spec.Duration; sec++ {
		if d.panicAt > 0 && sec == d.panicAt {
			panic("simulated driver bug")
		}
		// Sample the system late in the second, so that a fault scheduled on
		// the second boundary has taken effect even on a loaded machine.
		select {
		case <-ctx.Done():
			return loadgen.Final{}, ctx.Err()
		case <-time.After(time.Until(spec.StartAt.Add(time.Duration(sec)*time.Second + 900*time.Millisecond))):
		}
		webs, err := d.rt.List(ctx, runtime.Labels{runtime.LabelRegion: region, runtime.LabelRole: "web"})
		if err != nil {
			return loadgen.Final{}, err
		}
		down := 0
		for _, w := range webs {
			if w.State != runtime.StateRunning {
				down++
			}
		}
		req := int64(spec.Rate)
		errs := req * int64(down) / int64(len(webs))
		h := loadgen.NewHistogram()
		for i := int64(0); i < req; i++ {
			_ = h.RecordValue(2000 + i)
		}
		b := loadgen.Bucket{Second: spec.StartAt.Unix() + int64(sec), Requests: req, Errors: errs, Latency: h.Export()}
		if errs > 0 {
			b.ErrorsByKind = map[string]int64{"timeout": errs}
		}
		onBucket(b)
	}
	return loadgen.Final{Requests: int64(spec.Rate * spec.Duration.Seconds()), CPUSeconds: 0.3, WallSeconds: spec.Duration.Seconds()}, nil
}

func (d *simDriver) regionOf(ctx context.Context, endpoint string) (string, error) {
	gens, err := d.rt.List(ctx, runtime.Labels{runtime.LabelRole: "loadgen"})
	if err != nil {
		return "", err
	}
	for _, g := range gens {
		for _, addr := range g.Ports {
			if addr == endpoint {
				return g.Labels[runtime.LabelRegion], nil
			}
		}
	}
	return "", fmt.Errorf("no loadgen publishes %s", endpoint)
}

func newEngine(t *testing.T, rt *memory.Runtime, d engine.LoadDriver) *engine.Engine {
	return engine.New(rt, engine.WithDriver(d), engine.WithOutDir(t.TempDir()), engine.WithProgressEvery(time.Second))
}

func assertNothingLeft(t *testing.T, rt runtime.Runtime) {
	t.Helper()
	cs, err := rt.List(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, cs, "containers left behind")
	nets, err := rt.ListNetworks(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, nets, "networks left behind")
}

func TestRunKillShowsInSeriesAndHeals(t *testing.T) {
	rt := memory.New()
	d := &simDriver{rt: rt}
	eng := newEngine(t, rt, d)
	sum, err := eng.Run(context.Background(), parse(t, twoRegions))
	require.NoError(t, err)

	assert.Equal(t, results.VerdictPass, sum.Verdict, "checks: %+v", sum.Checks)
	assert.ElementsMatch(t, []string{"east->http://10.250.1.10:8080", "west->http://10.250.2.10:8080"}, d.attacked,
		"each region's loadgen attacks its own region's lb")
	require.Len(t, sum.Faults, 1)
	f := sum.Faults[0]
	assert.Equal(t, "kill", f.Kind)
	assert.Equal(t, []string{"web-east-1"}, f.Targets)
	// Never early; how late depends on the machine's load, so only order is asserted.
	assert.GreaterOrEqual(t, f.InjectedAt, 1.0)
	assert.GreaterOrEqual(t, f.HealedAt, 2.0)
	assert.Less(t, f.InjectedAt, f.HealedAt)

	east, west := sum.Regions["east"], sum.Regions["west"]
	require.Len(t, east.Series, 3)
	assert.Equal(t, []int64{0, 50, 0}, []int64{east.Series[0].Errors, east.Series[1].Errors, east.Series[2].Errors},
		"half of east's requests fail while one of its two web nodes is dead")
	assert.Zero(t, west.Errors, "a fault in east is not felt in west")
	assert.EqualValues(t, 600, sum.Total.Requests)
	assert.InDelta(t, 2.0, east.LatencyMS.P50, 0.1)
	require.Len(t, sum.Recovery, 1)
	assert.InDelta(t, 0, sum.Recovery[0].DetectS, 0.3)
	assert.InDelta(t, 1, sum.Recovery[0].RecoverS, 0.3)
	assert.Equal(t, map[string]int64{"timeout": 50}, east.ErrorsByKind)

	var ops []string
	for _, ev := range rt.Events() {
		if strings.HasSuffix(ev.Name, "web-east-1") && (ev.Op == "kill" || ev.Op == "start") {
			ops = append(ops, ev.Op)
		}
	}
	assert.Equal(t, []string{"start", "kill", "start"}, ops, "killed once, restarted by the heal")
	assertNothingLeft(t, rt)

	for _, f := range []string{results.SummaryFile, results.ReportFile, results.EventsFile} {
		assert.FileExists(t, filepath.Join(eng.RunDir(), f))
	}
	back, err := results.ReadSummary(eng.RunDir())
	require.NoError(t, err)
	assert.Equal(t, sum.Verdict, back.Verdict)
}

func TestRunFailedCheckIsVerdictNotError(t *testing.T) {
	rt := memory.New()
	src := strings.Replace(twoRegions, "{metric: error_rate, max: 0.5}", "{metric: error_rate, max: 0.001}", 1)
	sum, err := newEngine(t, rt, &simDriver{rt: rt}).Run(context.Background(), parse(t, src))
	require.NoError(t, err)
	assert.Equal(t, results.VerdictFail, sum.Verdict)
	assert.False(t, sum.Checks[0].Pass)
	assert.True(t, sum.Checks[1].Pass)
	assertNothingLeft(t, rt)
}

func TestRunAbortHealsAndTearsDown(t *testing.T) {
	rt := memory.New()
	// The fault holds for the rest of the run; the abort must heal it.
	src := strings.Replace(twoRegions, "for: 1s", "for: 2s", 1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2500*time.Millisecond, cancel)
	eng := newEngine(t, rt, &simDriver{rt: rt})
	sum, err := eng.Run(ctx, parse(t, src))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aborted")
	assert.Equal(t, results.VerdictFail, sum.Verdict)
	require.Len(t, sum.Faults, 1)
	assert.Greater(t, sum.Faults[0].HealedAt, sum.Faults[0].InjectedAt, "the abort healed the fault")
	assertNothingLeft(t, rt)
	assert.FileExists(t, filepath.Join(eng.RunDir(), results.SummaryFile))
}

func TestRunPanicInLoadIsReportedAndTornDown(t *testing.T) {
	rt := memory.New()
	eng := newEngine(t, rt, &simDriver{rt: rt, panicAt: 1})
	sum, err := eng.Run(context.Background(), parse(t, twoRegions))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panic")
	assert.Equal(t, results.VerdictFail, sum.Verdict)
	assertNothingLeft(t, rt)
}

func TestRunNodeNeverHealthyIsInfraError(t *testing.T) {
	rt := memory.New(memory.WithHealthDelay(time.Hour))
	eng := engine.New(rt, engine.WithDriver(&simDriver{rt: rt}), engine.WithOutDir(t.TempDir()), engine.WithHealthTimeout(200*time.Millisecond))
	_, err := eng.Run(context.Background(), parse(t, twoRegions))
	require.Error(t, err)
	assert.True(t, errors.Is(err, engine.ErrInfra), "got %v", err)
	assertNothingLeft(t, rt)
}

func TestRebuildFromRawDataReproducesTheSummary(t *testing.T) {
	rt := memory.New()
	eng := newEngine(t, rt, &simDriver{rt: rt})
	sum, err := eng.Run(context.Background(), parse(t, twoRegions))
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(eng.RunDir(), engine.ScenarioFile))
	assert.FileExists(t, filepath.Join(eng.RunDir(), engine.RawLoadFile))

	// Damage what the raw data can restore, then rebuild.
	sum.Regions = nil
	require.NoError(t, results.WriteSummary(eng.RunDir(), sum))
	rebuilt, err := engine.Rebuild(eng.RunDir(), scenarios.Options{
		FaultKinds: chaos.Kinds(), Workloads: loadgen.Workloads(), Metrics: results.Metrics(),
	})
	require.NoError(t, err)
	assert.Equal(t, results.VerdictPass, rebuilt.Verdict)
	assert.EqualValues(t, 600, rebuilt.Total.Requests)
	assert.Equal(t, []int64{0, 50, 0}, []int64{rebuilt.Regions["east"].Series[0].Errors, rebuilt.Regions["east"].Series[1].Errors, rebuilt.Regions["east"].Series[2].Errors})
	require.Len(t, rebuilt.Recovery, 1)
	assert.InDelta(t, 1, rebuilt.Recovery[0].RecoverS, 0.3)
}
