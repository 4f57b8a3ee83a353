package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
	"github.com/faultline/faultline/topology"
)

var opts = Options{
	FaultKinds: []string{"kill", "pause", "partition"},
	Workloads:  []string{"api", "session", "static"},
	Metrics:    []string{"capacity_rps", "error_rate", "p99_ms", "response_time_law_error"},
}

func ptr(v float64) *float64 { return &v }

func TestSmoke(t *testing.T) {
	s, err := Load("smoke.yaml", opts)
	require.NoError(t, err)
	def, err := topology.Load("../topology/default.yaml")
	require.NoError(t, err)
	assert.Equal(t, def, s.Topology)
	s.Topology = nil
	assert.Equal(t, &Scenario{
		Name:        "smoke",
		Description: "Default topology under load; one web node killed and restarted.",
		File:        "smoke.yaml",
		Seed:        1,
		Duration:    45 * time.Second,
		Load:        []LoadSpec{{Regions: []string{"us-east", "eu-west", "ap-south"}, Rate: 50, Workload: "api", Timeout: 2 * time.Second, Line: 7}},
		Faults:      []FaultSpec{{At: 15 * time.Second, For: 10 * time.Second, Kind: "kill", Target: Target{Node: "web-us-east-1", Count: 1}, Line: 12}},
		Checks: []Check{
			{Name: "error-rate-bounded", Metric: "error_rate", Max: ptr(0.05)},
			{Name: "p99_ms-max-1000", Metric: "p99_ms", Max: ptr(1000)},
		},
	}, s)

	s.Topology = def
	sched, err := s.Expand(def.Plan("r"))
	require.NoError(t, err)
	assert.Equal(t, []Scheduled{{At: 15 * time.Second, For: 10 * time.Second, Kind: "kill", Targets: []string{"web-us-east-1"}, Source: SourceTimeline}}, sched)
}

func TestCheckExpr(t *testing.T) {
	for _, tc := range []struct {
		c    Check
		want string
	}{
		{Check{Metric: "error_rate", Region: "us-east", Max: ptr(0.05)}, "error_rate{region=us-east} <= 0.05"},
		{Check{Metric: "p99_ms", Max: ptr(1000)}, "p99_ms <= 1000"},
		{Check{Metric: "rps", Min: ptr(10)}, "rps >= 10"},
		{Check{Metric: "rps", Region: "eu-west", Min: ptr(1.5), Max: ptr(2e6)}, "1.5 <= rps{region=eu-west} <= 2e+06"},
	} {
		assert.Equal(t, tc.want, tc.c.Expr())
	}
}

const inlineBase = `seed: 7
duration: 60s
topology:
  regions:
    - name: a
      subnet: 10.9.1.0/24
      nodes: [{role: web, count: 3}, {role: db, count: 1}]
    - name: b
      subnet: 10.9.2.0/24
      nodes: [{role: web, count: 3}]
  links: [{between: [a, b], rtt: 20ms}]
`

func TestInlineTopologyAndDefaults(t *testing.T) {
	s, err := Parse("dir/inline.yaml", []byte(inlineBase+`load:
  - {regions: [b], rate: 2.5, workload: static}
faults:
  - {at: 10s, kind: pause, target: {role: web, region: a, count: 2}}
checks:
  - {metric: error_rate, region: a, min: 0, max: 0.1}
`), opts)
	require.NoError(t, err)
	assert.Equal(t, "inline", s.Name)
	assert.Equal(t, "inline", s.Topology.Name)
	assert.Equal(t, "dir/inline.yaml", s.Topology.File)
	assert.Equal(t, []LoadSpec{{Regions: []string{"b"}, Rate: 2.5, Workload: "static", Timeout: 2 * time.Second, Line: 13}}, s.Load)
	assert.Equal(t, []FaultSpec{{At: 10 * time.Second, For: 50 * time.Second, Kind: "pause", Target: Target{Role: "web", Region: "a", Count: 2}, Line: 15}}, s.Faults)
	assert.Equal(t, "error_rate-a-min-0-max-0.1", s.Checks[0].Name)
}

func TestOmittedTopologyIsDefault(t *testing.T) {
	s, err := Parse("x.yaml", []byte("duration: 10s\n"), opts)
	require.NoError(t, err)
	assert.Equal(t, topology.Default(), s.Topology)
}

func TestTopologyPathIsRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "topo"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "topo", "one.yaml"), []byte("regions: [{name: solo, subnet: 10.7.0.0/24, nodes: [{role: web, count: 1}]}]\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sc"), 0o755))
	path := filepath.Join(dir, "sc", "s.yaml")
	require.NoError(t, os.WriteFile(path, []byte("topology: ../topo/one.yaml\nduration: 5s\n"), 0o644))
	s, err := Load(path, opts)
	require.NoError(t, err)
	assert.Equal(t, "one", s.Topology.Name)
	assert.Equal(t, "solo", s.Topology.Regions[0].Name)

	// Errors inside the topology file name that file, not the scenario.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "topo", "one.yaml"), []byte("regions: [{name: solo, subnet: 10.7.0.0/24, nodez: []}]\n"), 0o644))
	_, err = Load(path, opts)
	require.Error(t, err)
	assert.Equal(t, filepath.Join(dir, "topo", "one.yaml")+`:1:45: regions[0].nodez: unknown field (did you mean "nodes"?)`, err.Error())
}

// TestParseErrors has one case per rule, with the exact message a user sees.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"misspelt fault field", inlineBase + `faults:
  - at: 15s
    kidn: kill
    target: {node: web-a-1}
`, []string{
			`s.yaml:14:5: faults[0].kidn: unknown field (did you mean "kind"?)`,
		}},
		{"unknown top field", inlineBase + "nemisis: {}\n", []string{
			`s.yaml:12:1: nemisis: unknown field (did you mean "nemesis"?)`,
		}},
		{"duration required", "seed: 1\n", []string{
			`s.yaml:1:1: duration: required: a duration like "45s"`,
		}},
		{"bad scalars", "name: 'my scenario'\nseed: one\nduration: -5s\n", []string{
			`s.yaml:1:7: name: "my scenario" must be 1 to 63 letters, digits, '.', '_' or '-'`,
			`s.yaml:2:7: seed: must be an integer, not "one"`,
			`s.yaml:3:11: duration: must not be negative, got -5s`,
		}},
		{"zero duration", "duration: 0s\n", []string{`s.yaml:1:11: duration: must be positive`}},
		{"topology missing file", "topology: nope.yaml\nduration: 1s\n", []string{
			`s.yaml:1:11: topology: read nope.yaml: stat nope.yaml: no such file or directory`,
		}},
		{"topology wrong type", "topology: [a]\nduration: 1s\n", []string{`s.yaml:1:11: topology: must be a string, not a list`}},
		{"inline topology error", "duration: 1s\ntopology:\n  regions: [{name: a, subnet: 10.0.0.0/33}]\n", []string{
			`s.yaml:3:31: topology.regions[0].subnet: "10.0.0.0/33" is not a CIDR prefix like 10.201.1.0/24`,
		}},
		{"load rules", inlineBase + `load:
  - {regions: [a, c, a], rate: 0, workload: api, timeout: 0s}
  - {regions: [all, a], rate: x, workload: apii}
  - {regions: []}
`, []string{
			`s.yaml:13:19: load[0].regions[1]: unknown region "c" (known: a, b)`,
			`s.yaml:13:22: load[0].regions[2]: region "a" is listed twice`,
			`s.yaml:13:32: load[0].rate: must be in (0, 1000000] req/s, got 0`,
			`s.yaml:13:59: load[0].timeout: must be positive`,
			`s.yaml:14:15: load[1].regions: "all" already means every region; list it alone`,
			`s.yaml:14:31: load[1].rate: must be a finite number, not "x"`,
			`s.yaml:14:44: load[1].workload: unknown workload "apii" (did you mean "api"?)`,
			`s.yaml:15:5: load[2]: needs a load model: one of rate (req/s), ramp {from, to}, step {from, by, every, max}, phases [{for, rate or ramp}, ...] or users {n, think}`,
			`s.yaml:15:5: load[2].workload: required`,
			`s.yaml:15:15: load[2].regions: must name at least one region, or be [all]`,
		}},
		{"fault timing", inlineBase + `faults:
  - {at: 60s, kind: kill, target: {node: web-a-1}}
  - {at: 50s, kind: kill, target: {node: web-a-2}, for: 11s}
  - {at: 5s, kind: kill, target: {node: web-a-3}, for: 0s}
`, []string{
			`s.yaml:13:10: faults[0].at: 1m0s is at or after the end of the run (duration 1m0s)`,
			`s.yaml:14:57: faults[1].for: heals at 1m1s, after the end of the run (duration 1m0s)`,
			`s.yaml:15:56: faults[2].for: must be positive; omit it to heal at the end of the run`,
		}},
		{"fault kind and missing parts", inlineBase + `faults:
  - {at: 1s, kind: kil, target: {node: web-a-1}}
  - {kind: nuke}
`, []string{
			`s.yaml:13:20: faults[0].kind: unknown fault kind "kil" (did you mean "kill"?)`,
			`s.yaml:14:5: faults[1].at: required: a duration like "15s"`,
			`s.yaml:14:5: faults[1].target: required: {node: NAME} or {role: ROLE, region: REGION, count: N}`,
			`s.yaml:14:12: faults[1].kind: unknown fault kind "nuke" (known: kill, pause, partition)`,
		}},
		{"targets", inlineBase + `faults:
  - {at: 1s, kind: kill, target: {node: web-a-9}}
  - {at: 1s, kind: kill, target: {node: web-a-1, role: web}}
  - {at: 1s, kind: kill, target: {count: 2}}
  - {at: 1s, kind: kill, target: {role: cache}}
  - {at: 1s, kind: kill, target: {role: db, region: b}}
  - {at: 1s, kind: kill, target: {role: web, region: a, count: 4}}
  - {at: 1s, kind: kill, target: {role: web, count: 0, region: c}}
`, []string{
			`s.yaml:13:41: faults[0].target.node: no node "web-a-9" in topology s (did you mean "web-a-1"?)`,
			`s.yaml:14:56: faults[1].target.role: a target is either a node or a selector, not both`,
			`s.yaml:15:34: faults[2].target: needs a node, or a role and/or region to choose from`,
			`s.yaml:16:34: faults[3].target: selects 1 node(s) but only 0 match in topology s`,
			`s.yaml:17:34: faults[4].target: selects 1 node(s) but only 0 match in topology s`,
			`s.yaml:18:34: faults[5].target: selects 4 node(s) but only 3 match in topology s`,
			`s.yaml:19:53: faults[6].target.count: must be at least 1, got 0`,
			`s.yaml:19:64: faults[6].target.region: unknown region "c" (known: a, b)`,
		}},
		{"overlap on a named node", inlineBase + `faults:
  - {at: 10s, kind: kill, target: {node: web-a-1}, for: 10s}
  - {at: 20s, kind: kill, target: {node: web-a-1}, for: 10s}
  - {at: 19s, kind: pause, target: {node: web-a-1}}
`, []string{
			`s.yaml:15: faults[2].target: web-a-1 is already faulted by faults[0] (line 13) from 10s to 20s; faults on one node must not overlap (healing one would end the other)`,
		}},
		{"selector cannot avoid a busy node", inlineBase + `faults:
  - {at: 10s, kind: pause, target: {role: db}}
  - {at: 30s, kind: kill, target: {node: db-a-1}, for: 5s}
`, []string{
			`s.yaml:13: faults[0].target: {role: db, count: 1}: 0 of 1 matching node(s) are free from 10s to 1m0s, 1 needed; already faulted: db-a-1 by faults[1] (line 14) from 30s to 35s (faults on one node must not overlap: healing one would end the other)`,
		}},
		{"nemesis rules", inlineBase + `nemesis:
  every: 0s
  for: 1h
  kinds: [kill, boom]
  targets: {role: web}
  bogus: 1
`, []string{
			`s.yaml:13:10: nemesis.every: must be positive`,
			`s.yaml:15:17: nemesis.kinds[1]: unknown fault kind "boom" (known: kill, pause, partition)`,
			`s.yaml:17:3: nemesis.bogus: unknown field (known: every, for, start, kinds, targets)`,
		}},
		{"nemesis does not fit", inlineBase + "nemesis: {every: 10s, for: 5s, start: 56s, kinds: [kill], targets: {role: web}}\n", []string{
			`s.yaml:12:39: nemesis.start: the first fault (56s to 1m1s) does not fit in the run (duration 1m0s)`,
		}},
		{"nemesis too many", inlineBase + "nemesis: {every: 1ms, for: 1ms, kinds: [kill], targets: {role: web}}\n", []string{
			`s.yaml:12:18: nemesis.every: 1ms would inject more than 10000 faults in 1m0s`,
		}},
		{"nemesis missing parts", inlineBase + "nemesis: {kinds: []}\n", []string{
			`s.yaml:12:10: nemesis.every: required`,
			`s.yaml:12:10: nemesis.for: required`,
			`s.yaml:12:10: nemesis.targets: required: a selector like {role: web}`,
			`s.yaml:12:18: nemesis.kinds: must list at least one fault kind`,
		}},
		{"nemesis runs out of free nodes", inlineBase + `faults:
  - {at: 0s, kind: kill, target: {node: db-a-1}, for: 25s}
nemesis: {every: 10s, for: 5s, kinds: [kill], targets: {role: db}}
`, []string{
			`s.yaml:14: nemesis.targets: {role: db, count: 1}: 0 of 1 matching node(s) are free from 10s to 15s, 1 needed; already faulted: db-a-1 by faults[0] (line 13) from 0s to 25s (faults on one node must not overlap: healing one would end the other)`,
		}},
		{"checks", inlineBase + `checks:
  - {metric: error_rat, max: 1}
  - {metric: p99_ms, region: z}
  - {metric: p99_ms, min: 5, max: 1}
  - {name: x, metric: p99_ms, max: 1}
  - {name: x, metric: p99_ms, max: 2}
  - {metric: p99_ms, max: .inf}
`, []string{
			`s.yaml:13:14: checks[0].metric: unknown metric "error_rat" (did you mean "error_rate"?)`,
			`s.yaml:14:5: checks[1]: needs max and/or min`,
			`s.yaml:14:30: checks[1].region: unknown region "z" (known: a, b)`,
			`s.yaml:15:27: checks[2].min: 5 is above max 1: the check could never pass`,
			`s.yaml:17:12: checks[4].name: check "x" is already defined on line 16; give one a name`,
			`s.yaml:18:27: checks[5].max: must be a finite number, not ".inf"`,
		}},
		{"wrong shapes", "duration: 1s\nload: {rate: 1}\nfaults: [1]\nchecks: x\n", []string{
			`s.yaml:2:7: load: must be a list, not a mapping`,
			`s.yaml:3:10: faults[0]: must be a mapping, not "1"`,
			`s.yaml:4:9: checks: must be a list, not "x"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("s.yaml", []byte(tc.yaml), opts)
			require.Error(t, err)
			assert.Nil(t, s)
			var list *yamlx.Errors
			require.True(t, errors.As(err, &list), "%T %v", err, err)
			got := make([]string, len(list.List))
			for i, e := range list.List {
				got[i] = e.Error()
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

// TestRoundTrip writes parsed scenarios back out and parses them again: the
// written file (topology inline, defaults explicit) must mean the same thing,
// since a run directory keeps it for replay.
func TestRoundTrip(t *testing.T) {
	smoke, err := Load("smoke.yaml", opts)
	require.NoError(t, err)
	for _, s := range []*Scenario{smoke, parseChaos(t, 9)} {
		t.Run(s.Name, func(t *testing.T) {
			data, err := yaml.Marshal(s)
			require.NoError(t, err)
			again, err := Parse("again.yaml", data, opts)
			require.NoError(t, err, "%s", data)
			again.File, again.Topology.File = s.File, s.Topology.File
			for i := range again.Faults {
				again.Faults[i].Line = s.Faults[i].Line
			}
			for i := range again.Load {
				again.Load[i].Line = s.Load[i].Line
			}
			if again.Nemesis != nil {
				again.Nemesis.Line = s.Nemesis.Line
			}
			assert.Equal(t, s, again)
			plan := s.Topology.Plan("r")
			want, err := s.Expand(plan)
			require.NoError(t, err)
			got, err := again.Expand(plan)
			require.NoError(t, err)
			assert.Equal(t, want, got, "the written file replays the same schedule")
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	smoke, err := os.ReadFile("smoke.yaml")
	require.NoError(f, err)
	f.Add(smoke)
	f.Add([]byte("seed: 3\n" + chaosYAML))
	f.Add([]byte(inlineBase + "faults: [{at: 1s, kind: kill, target: {role: web, count: 2}}]\nnemesis: {every: 2s, for: 1s, kinds: [pause], targets: {region: b}}\n"))
	f.Add([]byte("duration: 1s\nload: [{regions: [all], rate: 1, workload: api}]\nchecks: [{metric: p99_ms, min: 1}]\n"))
	f.Add([]byte(modelsYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The file lives in a directory that does not exist, so relative
		// topology paths fail instead of reading the tree.
		s, err := Parse("/nonexistent/fuzz.yaml", data, opts)
		if err != nil {
			require.Nil(t, s)
			var list *yamlx.Errors
			require.True(t, errors.As(err, &list) || strings.HasPrefix(err.Error(), "read "), "%v", err)
			return
		}
		// Whatever parses must expand without overlapping faults on a node.
		sched, err := s.Expand(s.Topology.Plan("f"))
		require.NoError(t, err)
		for i, x := range sched {
			require.LessOrEqual(t, x.At+x.For, s.Duration)
			if i > 0 {
				require.LessOrEqual(t, sched[i-1].At, x.At)
			}
			require.NotEmpty(t, x.Targets)
		}
		requireNoOverlap(t, sched)
	})
}

func requireNoOverlap(t *testing.T, sched []Scheduled) {
	t.Helper()
	for i, a := range sched {
		for _, b := range sched[i+1:] {
			if a.At < b.At+b.For && b.At < a.At+a.For {
				for _, n := range a.Targets {
					require.NotContains(t, b.Targets, n, "%+v and %+v overlap", a, b)
				}
			}
		}
	}
}
