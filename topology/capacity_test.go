package topology

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

const withCapacity = `name: cap
regions:
  - name: a
    subnet: 10.0.1.0/24
    nodes:
      - {role: lb, count: 1}
      - {role: web, count: 2, cores: 4, service_time: 50ms}
      - {role: loadgen, count: 1}
`

func TestWebCapacityReachesThePlan(t *testing.T) {
	top, err := Parse("t.yaml", []byte(withCapacity))
	require.NoError(t, err)
	assert.Equal(t, NodeGroup{Role: "web", Count: 2, Cores: 4, ServiceTime: 50 * time.Millisecond}, top.Regions[0].Nodes[1])
	for _, p := range top.Plan("r") {
		if p.Role == "web" {
			assert.Equal(t, 4, p.Cores, p.Name)
			assert.Equal(t, 50*time.Millisecond, p.ServiceTime, p.Name)
		} else {
			assert.Zero(t, p.Cores, p.Name)
			assert.Zero(t, p.ServiceTime, p.Name)
		}
	}

	// Written back out and read again, the model survives (a run folder
	// replays from the written file).
	out, err := yaml.Marshal(top)
	require.NoError(t, err)
	again, err := Parse("t.yaml", out)
	require.NoError(t, err, "%s", out)
	assert.Equal(t, top.Regions, again.Regions)
}

func TestWebCapacityRejects(t *testing.T) {
	group := func(g string) string {
		return "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes:\n      - " + g + "\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"not web", group("{role: lb, count: 1, cores: 2, service_time: 1ms}"), []string{
			`t.yaml:5:37: regions[0].nodes[0].cores: only web nodes have a capacity model, not lb`,
			`t.yaml:5:54: regions[0].nodes[0].service_time: only web nodes have a capacity model, not lb`,
		}},
		{"cores range", group("{role: web, count: 1, cores: 0}"), []string{
			`t.yaml:5:38: regions[0].nodes[0].cores: must be between 1 and 1024, got 0`,
		}},
		{"cores not int", group("{role: web, count: 1, cores: 1.5}"), []string{
			`t.yaml:5:38: regions[0].nodes[0].cores: must be an integer, not "1.5"`,
		}},
		{"service time without cores", group("{role: web, count: 1, service_time: 5ms}"), []string{
			`t.yaml:5:45: regions[0].nodes[0].service_time: needs cores: the requests served at once`,
		}},
		{"service time zero", group("{role: web, count: 1, cores: 1, service_time: 0}"), []string{
			`t.yaml:5:55: regions[0].nodes[0].service_time: must be in (0, 10s], got 0s`,
		}},
		{"service time huge", group("{role: web, count: 1, cores: 1, service_time: 1m}"), []string{
			`t.yaml:5:55: regions[0].nodes[0].service_time: must be in (0, 10s], got 1m0s`,
		}},
		{"service time not duration", group("{role: web, count: 1, cores: 1, service_time: 50}"), []string{
			`t.yaml:5:55: regions[0].nodes[0].service_time: must be a duration like "45s" or "70ms", not "50"`,
		}},
		{"misspelt", group("{role: web, count: 1, core: 4}"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			require.Error(t, err)
			var list *yamlx.Errors
			require.True(t, errors.As(err, &list))
			if tc.want == nil {
				assert.Contains(t, err.Error(), "core")
				return
			}
			got := make([]string, len(list.List))
			for i, e := range list.List {
				got[i] = e.Error()
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
