package scenarios

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

var dbOpts = Options{
	FaultKinds:       []string{"kill", "partition"},
	HistoryWorkloads: []string{"db-register", "db-set", "db-stale"},
	UnsafeSwitches:   []string{"db-early-ack"},
	Metrics:          []string{"lost_writes", "linearizable", "failover_p50_s", "acknowledged_writes", "failover_kills", "partition_linearizable_ok", "partition_stale_reads", "stale_read_p99_ms"},
}

// The shared test options learn the db names too, so that every scenario
// file in this folder (TestEveryScenarioFileParses) parses.
func init() {
	opts.HistoryWorkloads = append(opts.HistoryWorkloads, dbOpts.HistoryWorkloads...)
	opts.Metrics = append(opts.Metrics, dbOpts.Metrics...)
	opts.UnsafeSwitches = append(opts.UnsafeSwitches, dbOpts.UnsafeSwitches...)
}

const dbBase = `topology: ../topology/db.yaml
duration: 60s
`

func TestDBScenarioFiles(t *testing.T) {
	s, err := Load("db-leader-kill.yaml", dbOpts)
	require.NoError(t, err)
	assert.Equal(t, []HistoryLoad{
		{Workload: "db-register", Regions: []string{"us-east", "eu-west", "ap-south"}, Clients: 2, Think: 50 * time.Millisecond, Timeout: time.Second, Line: 15},
		{Workload: "db-set", Regions: []string{"us-east", "eu-west", "ap-south"}, Clients: 2, Think: 20 * time.Millisecond, Timeout: time.Second, Line: 16},
	}, s.History)
	sched, err := s.Expand(s.Topology.Plan("r"))
	require.NoError(t, err)
	require.Len(t, sched, 5)
	for _, f := range sched {
		assert.Equal(t, []string{"@leader:db"}, f.Targets, "resolved when injected")
	}
	_, err = Load("db-partition.yaml", dbOpts)
	require.NoError(t, err)
}

func TestPickAndHistoryRoundTrip(t *testing.T) {
	s, err := Load("db-leader-kill.yaml", dbOpts)
	require.NoError(t, err)
	data, err := yaml.Marshal(s)
	require.NoError(t, err)
	again, err := Parse("again.yaml", data, dbOpts)
	require.NoError(t, err, "%s", data)
	for i := range again.History {
		again.History[i].Line = s.History[i].Line
	}
	for i := range again.Faults {
		again.Faults[i].Line = s.Faults[i].Line
	}
	again.File, again.Topology.File = s.File, s.Topology.File
	assert.Equal(t, s, again)
	assert.Equal(t, "{role: db, pick: leader}", s.Faults[0].Target.String())
}

func TestUnsafeSwitchesReplay(t *testing.T) {
	s, err := Parse("s.yaml", []byte(dbBase+"unsafe: [db-early-ack]\n"), dbOpts)
	require.NoError(t, err)
	assert.Equal(t, []string{"db-early-ack"}, s.Topology.Unsafe)
	data, err := yaml.Marshal(s)
	require.NoError(t, err)
	again, err := Parse("again.yaml", data, dbOpts)
	require.NoError(t, err, "%s", data)
	assert.Equal(t, []string{"db-early-ack"}, again.Topology.Unsafe, "the run folder's scenario replays unsafe")

	safe, err := Parse("s.yaml", []byte(dbBase), dbOpts)
	require.NoError(t, err)
	assert.Empty(t, safe.Topology.Unsafe)
	data, err = yaml.Marshal(safe)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "unsafe")
}

func TestParseDeferred(t *testing.T) {
	pick, role, ok := ParseDeferred(Target{Role: "db", Pick: PickLeader}.Deferred())
	assert.True(t, ok)
	assert.Equal(t, [2]string{"leader", "db"}, [2]string{pick, role})
	_, _, ok = ParseDeferred("db-us-east-1")
	assert.False(t, ok)
}

func TestHistoryAndPickErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown workload", dbBase + "history:\n  - {workload: db-regster, clients: 1}\n", []string{
			`s.yaml:4:16: history[0].workload: unknown history workload "db-regster" (did you mean "db-register"?)`,
		}},
		{"clients required", dbBase + "history:\n  - {workload: db-set}\n", []string{
			`s.yaml:4:5: history[0].clients: required`,
		}},
		{"clients bounded", dbBase + "history:\n  - {workload: db-set, clients: 0}\n", []string{
			`s.yaml:4:33: history[0].clients: must be between 1 and 1000, got 0`,
		}},
		{"twice in a region", dbBase + "history:\n  - {workload: db-set, clients: 1}\n  - {workload: db-set, clients: 1, regions: [eu-west]}\n", []string{
			`s.yaml:5:45: history[1].regions: region eu-west already runs db-set (line 4); raise its clients instead`,
		}},
		{"unknown unsafe switch", dbBase + "unsafe: [db-early-acks]\n", []string{
			`s.yaml:3:10: unsafe[0]: unknown unsafe switch "db-early-acks" (did you mean "db-early-ack"?)`,
		}},
		{"pick needs a role with a leader", dbBase + "faults:\n  - {at: 1s, kind: kill, target: {role: loadgen, pick: leader}}\n", []string{
			`s.yaml:4:56: faults[0].target.pick: only a role with a leader can be picked from (db, broker), got role "loadgen"`,
		}},
		{"unknown pick", dbBase + "faults:\n  - {at: 1s, kind: kill, target: {role: db, pick: oldest}}\n", []string{
			`s.yaml:4:51: faults[0].target.pick: unknown pick "oldest" (known: leader)`,
		}},
		{"pick is one node", dbBase + "faults:\n  - {at: 1s, kind: kill, target: {role: db, pick: leader, count: 2}}\n", []string{
			`s.yaml:4:51: faults[0].target.pick: a pick is one node the system chooses: no count or region`,
		}},
		{"pick or node", dbBase + "faults:\n  - {at: 1s, kind: kill, target: {node: db-us-east-1, pick: leader}}\n", []string{
			`s.yaml:4:61: faults[0].target.pick: a target is either a node or a selector, not both`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.yaml), dbOpts)
			var list *yamlx.Errors
			require.True(t, errors.As(err, &list), "%v", err)
			got := make([]string, len(list.List))
			for i, e := range list.List {
				got[i] = e.Error()
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
