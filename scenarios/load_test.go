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

const modelsYAML = inlineBase + `slo: {p99: 250ms}
load:
  - {regions: [a], rate: 10, workload: api}
  - {regions: [b], ramp: {from: 0, to: 40}, workload: api, timeout: 1s}
  - {regions: [a], step: {from: 100, by: 20, every: 5s, max: 300}, workload: api}
  - {regions: [a], users: {n: 50, think: 1s, exponential: true}, workload: static}
  - {regions: [b], users: {n: 1, think: 0}, workload: static}
`

func TestLoadModels(t *testing.T) {
	s, err := Parse("s.yaml", []byte(modelsYAML), opts)
	require.NoError(t, err)
	assert.Equal(t, []LoadSpec{
		{Regions: []string{"a"}, Rate: 10, Workload: "api", Timeout: 2 * time.Second, Line: 14},
		{Regions: []string{"b"}, Ramp: &Ramp{From: 0, To: 40}, Workload: "api", Timeout: time.Second, Line: 15},
		{Regions: []string{"a"}, Step: &Step{From: 100, By: 20, Every: 5 * time.Second, Max: 300}, Workload: "api", Timeout: 2 * time.Second, Line: 16},
		{Regions: []string{"a"}, Users: &Users{N: 50, Think: time.Second, Exponential: true}, Workload: "static", Timeout: 2 * time.Second, Line: 17},
		{Regions: []string{"b"}, Users: &Users{N: 1}, Workload: "static", Timeout: 2 * time.Second, Line: 18},
	}, s.Load)
	assert.Equal(t, &SLO{P99: 250 * time.Millisecond, ErrorRate: 0.01}, s.SLO, "error rate defaults to 1%")
}

func TestLoadModelsRoundTrip(t *testing.T) {
	src := inlineBase + `slo: {p99: 250ms, error_rate: 0.02}
load:
  - {regions: [a], rate: 10, workload: api}
  - {regions: [b], ramp: {from: 0, to: 40}, workload: api, timeout: 1s}
  - {regions: [a], step: {from: 100, by: 20, every: 5s, max: 300}, workload: api}
  - {regions: [b], users: {n: 50, think: 1s, exponential: true}, workload: static}
`
	s, err := Parse("s.yaml", []byte(src), opts)
	require.NoError(t, err)
	data, err := yaml.Marshal(s)
	require.NoError(t, err)
	again, err := Parse("s.yaml", data, opts)
	require.NoError(t, err, "%s", data)
	for i := range again.Load {
		again.Load[i].Line = s.Load[i].Line
	}
	assert.Equal(t, s.Load, again.Load)
	assert.Equal(t, s.SLO, again.SLO)
}

func TestLoadModelErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"two models", "load:\n  - {rate: 5, users: {n: 1, think: 1s}, workload: api}\n", []string{
			`s.yaml:13:22: load[0].users: rate and users both set: a load has exactly one model`,
		}},
		{"ramp", "load:\n  - {ramp: {from: -1, to: 2000000}, workload: api}\n  - {ramp: {from: 0, to: 0}, workload: api}\n  - {ramp: {from: 1}, workload: api}\n", []string{
			`s.yaml:13:19: load[0].ramp.from: must be in [0, 1000000] req/s, got -1`,
			`s.yaml:13:27: load[0].ramp.to: must be in [0, 1000000] req/s, got 2e+06`,
			`s.yaml:14:12: load[1].ramp: from 0 to 0 sends nothing`,
			`s.yaml:15:12: load[2].ramp.to: required`,
		}},
		{"step", "load:\n  - {step: {from: 10, by: 0, every: 500ms, max: 5}, workload: api, regions: [a]}\n  - {step: {from: 10, by: 5, every: 2m, max: 50, upto: 3}, workload: api, regions: [b]}\n", []string{
			`s.yaml:13:27: load[0].step.by: must be in (0, 1000000] req/s, got 0`,
			`s.yaml:13:37: load[0].step.every: must be at least 1s: results are per second, and a step is judged by its full seconds`,
			`s.yaml:13:49: load[0].step.max: 5 is below from 10`,
			`s.yaml:14:37: load[1].step.every: 2m0s is longer than the run (duration 1m0s): the load would never step`,
			`s.yaml:14:50: load[1].step.upto: unknown field (known: from, by, every, max)`,
		}},
		{"users", "load:\n  - {users: {n: 0, think: -1s, exponential: yes please}, workload: api, regions: [a]}\n  - {users: {think: 1s}, workload: api, regions: [b]}\n  - {rate: 1, users: 3, workload: api}\n", []string{
			`s.yaml:13:17: load[0].users.n: must be between 1 and 100000, got 0`,
			`s.yaml:13:27: load[0].users.think: must not be negative, got -1s`,
			`s.yaml:13:45: load[0].users.exponential: must be true or false, not "yes please"`,
			`s.yaml:14:13: load[1].users.n: required`,
			`s.yaml:15:22: load[2].users: rate and users both set: a load has exactly one model`,
		}},
		{"one capacity search per region", "slo: {p99: 1s}\nload:\n  - {regions: [a], step: {from: 1, by: 1, every: 1s, max: 2}, workload: api}\n  - {regions: [all], step: {from: 1, by: 1, every: 1s, max: 2}, workload: api}\n  - {users: {n: 1, think: 1s}, workload: api}\n  - {regions: [b], users: {n: 1, think: 1s}, workload: api}\n", []string{
			`s.yaml:15:15: load[1].regions: region a already has a step load (line 14); a region runs at most one`,
			`s.yaml:17:15: load[3].regions: region b already has a users load (line 16); a region runs at most one`,
		}},
		{"slo", "slo: {p99: 0s, error_rate: 2, errors: 1}\nload:\n  - {rate: 1, workload: api}\n", []string{
			`s.yaml:12:6: slo: no step load to search capacity with; the slo judges only step loads`,
			`s.yaml:12:12: slo.p99: must be positive`,
			`s.yaml:12:28: slo.error_rate: must be in (0, 1], got 2`,
			`s.yaml:12:31: slo.errors: unknown field (known: p99, error_rate)`,
		}},
		{"slo needs p99", "slo: {error_rate: 0.1}\nload:\n  - {step: {from: 1, by: 1, every: 1s, max: 2}, workload: api}\n", []string{
			`s.yaml:12:6: slo.p99: required`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(inlineBase+tc.yaml), opts)
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
