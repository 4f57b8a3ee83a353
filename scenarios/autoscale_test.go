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

// autoscaleBase: region a has an lb and two web nodes of 4 cores, region b
// one web node without cores and no lb, region c nothing to scale.
const autoscaleBase = `seed: 7
duration: 60s
topology:
  regions:
    - name: a
      subnet: 10.9.1.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 2, cores: 4, service_time: 50ms}]
    - name: b
      subnet: 10.9.2.0/24
      nodes: [{role: lb, count: 1}, {role: web, count: 1}]
    - name: c
      subnet: 10.9.3.0/24
      nodes: [{role: loadgen, count: 1}]
  links: [{between: [a, b], rtt: 20ms}, {between: [a, c], rtt: 20ms}, {between: [b, c], rtt: 20ms}]
load:
  - {regions: [a], rate: 10, workload: api}
`

func TestAutoscalePolicy(t *testing.T) {
	s, err := Parse("s.yaml", []byte(autoscaleBase+`autoscale:
  - {region: a, min: 1, max: 4, p95: 200ms, utilization: 0.6, cooldown: 3s}
  - {region: b, min: 1, max: 2, p95: 1s}
`), opts)
	require.NoError(t, err)
	assert.Equal(t, []Autoscale{
		{Region: "a", Min: 1, Max: 4, P95: 200 * time.Millisecond, Utilization: 0.6, Cooldown: 3 * time.Second, Line: 18},
		{Region: "b", Min: 1, Max: 2, P95: time.Second, Cooldown: defaultCooldown, Line: 19},
	}, s.Autoscale)
}

func TestAutoscaleRoundTrip(t *testing.T) {
	s, err := Parse("s.yaml", []byte(autoscaleBase+`autoscale:
  - {region: a, min: 1, max: 4, p95: 200ms, utilization: 0.6, cooldown: 3s}
  - {region: b, min: 1, max: 2, p95: 1s}
`), opts)
	require.NoError(t, err)
	data, err := yaml.Marshal(s)
	require.NoError(t, err)
	again, err := Parse("s.yaml", data, opts)
	require.NoError(t, err, "%s", data)
	for i := range again.Autoscale {
		again.Autoscale[i].Line = s.Autoscale[i].Line
	}
	assert.Equal(t, s.Autoscale, again.Autoscale)
}

func TestAutoscaleErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"bounds", "autoscale:\n  - {region: a, min: 0, max: 4, p95: 1s}\n  - {region: b, min: 3, max: 2, p95: 1s}\n  - {region: a, min: 1, max: 99, p95: 1s}\n", []string{
			`s.yaml:18:22: autoscale[0].min: must be between 1 and 32, got 0`,
			`s.yaml:19:30: autoscale[1].max: 2 is below min 3`,
			`s.yaml:20:14: autoscale[2].region: region "a" already has a policy on line 18`,
			`s.yaml:20:30: autoscale[2].max: must be between 1 and 32, got 99`,
		}},
		{"targets", "autoscale:\n  - {region: a, min: 1, max: 4}\n  - {region: b, min: 1, max: 2, p95: 0s, utilization: 1.5, cooldown: 100ms}\n", []string{
			`s.yaml:18:5: autoscale[0]: needs a target: p95 (the SLO), utilization, or both`,
			`s.yaml:19:14: autoscale[1].region: utilization needs the region's web nodes to have cores (the capacity model) to be busy on`,
			`s.yaml:19:38: autoscale[1].p95: must be positive`,
			`s.yaml:19:55: autoscale[1].utilization: must be in (0, 1], got 1.5`,
			`s.yaml:19:70: autoscale[1].cooldown: must be at least 1s: the controller decides once a second`,
		}},
		{"region", "autoscale:\n  - {region: c, min: 1, max: 2, p95: 1s}\n  - {region: d, min: 1, max: 2, p95: 1s}\n  - {region: a, min: 3, max: 4, p95: 1s}\n  - {min: 1, max: 2, p95: 1s, target: 3}\n", []string{
			`s.yaml:18:14: autoscale[0].region: region "c" needs an lb and at least one web node to scale (has 0 lb, 0 web)`,
			`s.yaml:19:14: autoscale[1].region: unknown region "d" (known: a, b, c)`,
			`s.yaml:20:14: autoscale[2].region: region "a" starts with 2 web nodes, outside min 3 and max 4`,
			`s.yaml:21:5: autoscale[3].region: required`,
			`s.yaml:21:31: autoscale[3].target: unknown field (known: region, min, max, p95, utilization, cooldown)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(autoscaleBase+tc.yaml), opts)
			require.Error(t, err)
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
