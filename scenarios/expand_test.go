package scenarios

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const chaosYAML = `duration: 60s
topology:
  regions:
    - {name: a, subnet: 10.9.1.0/24, nodes: [{role: web, count: 4}, {role: db, count: 1}]}
    - {name: b, subnet: 10.9.2.0/24, nodes: [{role: web, count: 4}]}
    - {name: c, subnet: 10.9.3.0/24, nodes: [{role: web, count: 4}]}
  links:
    - {between: [a, b], rtt: 10ms}
    - {between: [a, c], rtt: 20ms}
    - {between: [b, c], rtt: 30ms}
faults:
  - {at: 30s, kind: partition, target: {role: web, count: 3}, for: 10s}
  - {at: 10s, kind: kill, target: {node: web-a-1}, for: 10s}
  - {at: 10s, kind: pause, target: {role: web, region: a, count: 3}, for: 5s}
nemesis:
  every: 5s
  for: 4s
  kinds: [kill, pause]
  targets: {role: web}
`

func parseChaos(t *testing.T, seed int64) *Scenario {
	t.Helper()
	s, err := Parse("chaos.yaml", fmt.Appendf(nil, "seed: %d\n%s", seed, chaosYAML), opts)
	require.NoError(t, err)
	return s
}

func TestExpandDeterministic(t *testing.T) {
	s := parseChaos(t, 42)
	plan := s.Topology.Plan("run-a")
	first, err := s.Expand(plan)
	require.NoError(t, err)
	again, err := parseChaos(t, 42).Expand(s.Topology.Plan("run-b"))
	require.NoError(t, err)
	assert.Equal(t, first, again, "same seed and topology, same schedule (the run ID does not matter)")

	other, err := parseChaos(t, 43).Expand(plan)
	require.NoError(t, err)
	assert.NotEqual(t, first, other, "another seed, another schedule")
}

func TestExpandInvariants(t *testing.T) {
	for seed := int64(0); seed < 50; seed++ {
		s := parseChaos(t, seed)
		sched, err := s.Expand(s.Topology.Plan("r"))
		require.NoError(t, err, "seed %d", seed)
		// 3 timeline faults; the nemesis fires at 5s, 10s, ... 55s (55s+4s fits in 60s).
		require.Len(t, sched, 3+11)
		type span struct{ from, to time.Duration }
		busy := map[string][]span{}
		nemesis := 0
		for i, f := range sched {
			if i > 0 {
				assert.LessOrEqual(t, sched[i-1].At, f.At, "sorted by At")
			}
			assert.LessOrEqual(t, f.At+f.For, s.Duration)
			if f.Source == SourceNemesis {
				nemesis++
				assert.Contains(t, []string{"kill", "pause"}, f.Kind)
				assert.Len(t, f.Targets, 1)
			}
			for _, n := range f.Targets {
				assert.Regexp(t, `^web-[abc]-[1-4]$`, n)
				for _, b := range busy[n] {
					assert.False(t, f.At < b.to && b.from < f.At+f.For, "seed %d: %s faulted twice at once", seed, n)
				}
				busy[n] = append(busy[n], span{f.At, f.At + f.For})
			}
		}
		assert.Equal(t, 11, nemesis)
		// The named node is never picked at random while it is named.
		var pauseAt10 Scheduled
		for _, f := range sched {
			if f.Source == SourceTimeline && f.Kind == "pause" {
				pauseAt10 = f
			}
		}
		assert.NotContains(t, pauseAt10.Targets, "web-a-1")
		assert.Len(t, pauseAt10.Targets, 3)
	}
}

// TestExpandPinned pins one schedule: a change here means old runs can no
// longer be replayed from their seed, which needs a deliberate decision.
func TestExpandPinned(t *testing.T) {
	s := parseChaos(t, 1)
	sched, err := s.Expand(s.Topology.Plan("r"))
	require.NoError(t, err)
	var got []string
	for _, f := range sched {
		got = append(got, fmt.Sprintf("%s+%s %s %v %s", f.At, f.For, f.Kind, f.Targets, f.Source))
	}
	assert.Equal(t, []string{
		"5s+4s kill [web-b-1] nemesis",
		"10s+10s kill [web-a-1] timeline",
		"10s+5s pause [web-a-2 web-a-3 web-a-4] timeline",
		"10s+4s kill [web-b-3] nemesis",
		"15s+4s kill [web-a-3] nemesis",
		"20s+4s pause [web-c-3] nemesis",
		"25s+4s pause [web-b-1] nemesis",
		"30s+10s partition [web-a-1 web-c-1 web-c-2] timeline",
		"30s+4s pause [web-c-3] nemesis",
		"35s+4s pause [web-c-3] nemesis",
		"40s+4s kill [web-c-4] nemesis",
		"45s+4s pause [web-b-3] nemesis",
		"50s+4s pause [web-c-3] nemesis",
		"55s+4s pause [web-a-4] nemesis",
	}, got)
}

func TestExpandAgainstAnotherPlan(t *testing.T) {
	s := parseChaos(t, 1)
	_, err := s.Expand(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chaos.yaml:13: faults[0].target: {role: web, count: 3} matches no node")
}

func BenchmarkParseSmoke(b *testing.B) {
	data, err := os.ReadFile("smoke.yaml")
	require.NoError(b, err)
	for b.Loop() {
		_, err := Parse("smoke.yaml", data, opts)
		require.NoError(b, err)
	}
}

// BenchmarkExpandWorstNemesis is the largest schedule validation allows:
// 10000 nemesis faults competing for one node.
func BenchmarkExpandWorstNemesis(b *testing.B) {
	s, err := Parse("w.yaml", []byte(`duration: 100s
topology: {regions: [{name: a, subnet: 10.1.0.0/24, nodes: [{role: db, count: 1}]}]}
nemesis: {every: 10ms, for: 10ms, start: 0s, kinds: [kill], targets: {role: db}}
`), opts)
	require.NoError(b, err)
	plan := s.Topology.Plan("b")
	for b.Loop() {
		sched, err := s.Expand(plan)
		require.NoError(b, err)
		require.Len(b, sched, 10000)
	}
}
