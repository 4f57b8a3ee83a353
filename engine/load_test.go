package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime/memory"
)

const loadModels = `
name: load-models
topology:
  name: tiny
  regions:
    - name: east
      subnet: 10.250.1.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 2, cores: 4, service_time: 50ms}, {role: loadgen, count: 1}]
    - name: west
      subnet: 10.250.2.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 2}, {role: loadgen, count: 1}]
  links:
    - {between: [east, west], rtt: 50ms}
seed: 7
duration: 20s
slo: {p99: 250ms}
load:
  - {regions: [east], step: {from: 100, by: 20, every: 2s, max: 300}, workload: api}
  - {regions: [west], users: {n: 50, think: 1s}, workload: session}
checks:
  - {metric: capacity_rps, region: east, min: 144, max: 176}
  - {metric: response_time_law_error, region: west, max: 0.05}
`

// modelDriver answers at once with what a system of fixed capacity would
// give each load model, so the engine's wiring of the models is tested
// without waiting out the run: an open load is served in 50 ms up to
// capacity req/s and in 2 s above it; closed users see a 100 ms response,
// and complete the requests the response-time law says. In second `behind`
// (since the start) the loadgen sends only half the requests due.
type modelDriver struct {
	capacity float64
	behind   int
	specs    chan loadgen.AttackSpec
}

func (d *modelDriver) Attack(_ context.Context, _ string, spec loadgen.AttackSpec, onBucket func(loadgen.Bucket)) (loadgen.Final, error) {
	d.specs <- spec
	var f loadgen.Final
	secs := int(spec.Duration / time.Second)
	for sec := range secs {
		b := loadgen.Bucket{Second: spec.StartAt.Unix() + int64(sec), CPU: 0.1}
		lat := int64(100_000)
		switch {
		case spec.Step != nil:
			st := spec.Step
			rate := min(st.From+st.By*float64(time.Duration(sec)*time.Second/st.Every), st.Max)
			b.Target, b.Requests = int64(rate), int64(rate)
			if sec == d.behind {
				b.Requests /= 2
			}
			lat = 50_000
			if rate > d.capacity {
				lat = 2_000_000
			}
		case spec.Users != nil:
			u := spec.Users
			b.Users = u.N
			b.Requests = int64(float64(u.N) / (0.1 + u.Think.Seconds()))
		}
		h := loadgen.NewHistogram()
		if err := h.RecordValues(lat, max(b.Requests, 1)); err != nil {
			return f, err
		}
		b.Latency = h.Export()
		onBucket(b)
		f.Requests += b.Requests
		f.Target += b.Target
	}
	if u := spec.Users; u != nil {
		f.Users, f.MeanResponse, f.MeanThink = u.N, 0.1, u.Think.Seconds()
		f.Throughput = float64(f.Requests) / spec.Duration.Seconds()
	}
	f.CPUSeconds, f.WallSeconds = 0.1*float64(secs), float64(secs)
	return f, nil
}

func TestRunWiresLoadModels(t *testing.T) {
	rt := memory.New()
	d := &modelDriver{capacity: 160, behind: 15, specs: make(chan loadgen.AttackSpec, 2)}
	eng := newEngine(t, rt, d)
	sum, err := eng.Run(context.Background(), parse(t, loadModels))
	require.NoError(t, err)
	assert.Equal(t, results.VerdictPass, sum.Verdict, "checks: %+v", sum.Checks)

	close(d.specs)
	specs := map[string]loadgen.AttackSpec{}
	for s := range d.specs {
		specs[s.Workload] = s
	}
	assert.Equal(t, &loadgen.Step{From: 100, By: 20, Every: 2 * time.Second, Max: 300}, specs["api"].Step)
	assert.Zero(t, specs["api"].Rate)
	require.NotNil(t, specs["session"].Users)
	assert.Equal(t, 50, specs["session"].Users.N)
	assert.Equal(t, time.Second, specs["session"].Users.Think)
	assert.NotZero(t, specs["session"].Users.Seed, "users draw from the scenario's seed")

	// 100, 120, 140, 160 req/s hold; 180 breaks the p99 bound.
	require.Contains(t, sum.Capacity, "east")
	c := sum.Capacity["east"]
	assert.Equal(t, 160.0, c.RateRPS)
	assert.Equal(t, 4, c.Steps)
	assert.Contains(t, c.Broke, "step 4 (180 req/s)")
	assert.Equal(t, 250.0, c.SLOP99MS)
	assert.Equal(t, 0.01, c.SLOErrorRate)
	assert.NotContains(t, sum.Capacity, "west")

	require.Contains(t, sum.ClosedModel, "west")
	cm := sum.ClosedModel["west"]
	assert.Equal(t, 50, cm.Users)
	assert.True(t, cm.LawHolds, "%+v", cm)
	assert.Less(t, cm.LawError, 0.05)

	east, west := sum.Regions["east"].Series, sum.Regions["west"].Series
	require.Len(t, east, 20)
	assert.EqualValues(t, 100, east[0].Target)
	assert.EqualValues(t, 120, east[2].Target)
	assert.Equal(t, 50, west[3].Users)
	assert.Zero(t, west[3].Target, "a closed load has no schedule")

	assert.Equal(t, []int{15}, sum.Loadgen["east"].LimitedSeconds, "the second the generator fell behind")
	assert.Empty(t, sum.Loadgen["west"].LimitedSeconds)

	md, err := os.ReadFile(filepath.Join(eng.RunDir(), results.ReportFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "set the pace in east")
	assert.Contains(t, string(md), "| east | 160 | 4 |")
	assertNothingLeft(t, rt)
}

func TestRunRejectsAModelTheWorkloadCannotRun(t *testing.T) {
	rt := memory.New()
	src := strings.Replace(loadModels, "users: {n: 50, think: 1s}", "rate: 10", 1)
	d := &modelDriver{capacity: 160, specs: make(chan loadgen.AttackSpec, 2)}
	sum, err := newEngine(t, rt, d).Run(context.Background(), parse(t, src))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in region west")
	assert.Contains(t, err.Error(), `workload "session": needs the users (closed) model`)
	assert.Equal(t, results.VerdictFail, sum.Verdict)
	assert.Empty(t, d.specs, "no load was sent")
	assertNothingLeft(t, rt)
}
