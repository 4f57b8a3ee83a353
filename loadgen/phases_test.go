package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A phased schedule is its phases' curves back to back: a quiet baseline,
// a step up, a decline, then nothing.
func TestPhaseSchedule(t *testing.T) {
	spec := AttackSpec{Duration: 12 * time.Second, Phases: []Phase{
		{For: 3 * time.Second, From: 20, To: 20},
		{For: 2 * time.Second, From: 200, To: 200},
		{For: 4 * time.Second, From: 200, To: 0},
		{For: time.Second}, // a quiet second
		{For: time.Second, From: 10, To: 10},
	}}
	s, err := spec.schedule()
	require.NoError(t, err)
	require.Equal(t, uint64(60+400+400+0+10), s.total())
	assert.Equal(t, 50*time.Millisecond, s.due(0), "the baseline's first request")
	assert.Equal(t, 3*time.Second, s.due(59), "the baseline's last")
	assert.Equal(t, 3*time.Second+5*time.Millisecond, s.due(60), "the step's first, at its rate")
	assert.InDelta(t, float64(5*time.Second), float64(s.due(459)), float64(time.Microsecond), "the step's last")
	assert.Equal(t, 10100*time.Millisecond, s.due(860), "the quiet second sends nothing")
	assert.Equal(t, 20.0, s.rate(time.Second))
	assert.Equal(t, 200.0, s.rate(4*time.Second))
	assert.Equal(t, 100.0, s.rate(7*time.Second))
	assert.Zero(t, s.rate(9500*time.Millisecond))
	assert.Equal(t, 10.0, s.rate(10500*time.Millisecond))
	assert.Zero(t, s.rate(11500*time.Millisecond), "past the last phase")
	for n := uint64(1); n < s.total(); n++ {
		require.GreaterOrEqual(t, s.due(n), s.due(n-1), "request %d", n)
	}
	for _, n := range []uint64{0, 100, 459, 500, 700, 859, 869} {
		assert.InDelta(t, float64(n+1), integrate(s, s.due(n)), 0.05, "request %d due at %v", n, s.due(n))
	}
	assert.Equal(t, s.total(), countBefore(s, spec.Duration+time.Microsecond))
	assert.Contains(t, s.String(), "20/s for 3s, then 200/s for 2s, then 200→0/s over 4s")
}

func TestPhaseScheduleErrors(t *testing.T) {
	base := AttackSpec{Target: "http://x", Workload: "api", Duration: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		phases []Phase
		want   string
	}{
		{"longer than the attack", []Phase{{For: 8 * time.Second, From: 1, To: 1}, {For: 3 * time.Second, From: 1, To: 1}}, "phases last 11s, longer than the attack's 10s"},
		{"no length", []Phase{{From: 1, To: 1}}, "phase 1: for 0s: must be positive"},
		{"negative rate", []Phase{{For: time.Second, From: 1, To: 1}, {For: time.Second, From: -1, To: 1}}, "phase 2: rate -1→1"},
		{"none", []Phase{}, "phases: none"},
		{"sends nothing", []Phase{{For: time.Second}}, "sends no request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Phases = tc.phases
			assert.ErrorContains(t, spec.Validate(), tc.want)
		})
	}
	spec := base
	spec.Phases = []Phase{{For: time.Second, From: 5, To: 5}}
	assert.NoError(t, spec.Validate())
	spec.Rate = 3
	assert.ErrorContains(t, spec.Validate(), "set exactly one of")
}

// The worker pool is sized for the schedule's peak, not for its ends: a
// load that starts and ends quiet around a step needs the step's workers.
func TestMaxWorkersFollowsThePeak(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec AttackSpec
		peak float64
	}{
		{"constant", AttackSpec{Duration: 10 * time.Second, Rate: 50}, 50},
		{"ramp down", AttackSpec{Duration: 10 * time.Second, Ramp: &Ramp{From: 300, To: 10}}, 300},
		{"step", AttackSpec{Duration: 10 * time.Second, Step: &Step{From: 10, By: 20, Every: 2 * time.Second, Max: 70}}, 70},
		{"phases", AttackSpec{Duration: 10 * time.Second, Phases: []Phase{
			{For: 3 * time.Second, From: 25, To: 25}, {For: 3 * time.Second, From: 200, To: 200}, {For: 3 * time.Second, From: 20, To: 20}}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Timeout = 2 * time.Second
			s, err := tc.spec.schedule()
			require.NoError(t, err)
			assert.Equal(t, tc.peak, s.peak())
			assert.Equal(t, uint64(tc.peak*2+100), maxWorkers(tc.spec, s))
		})
	}
}
