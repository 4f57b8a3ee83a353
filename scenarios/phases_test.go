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

const phasesYAML = inlineBase + `load:
  - regions: [a]
    phases:
      - {for: 15s, rate: 25}
      - {for: 15s, rate: 200}
      - {for: 30s, ramp: {from: 200, to: 10}}
    workload: api
`

func TestLoadPhases(t *testing.T) {
	s, err := Parse("s.yaml", []byte(phasesYAML), opts)
	require.NoError(t, err)
	require.Len(t, s.Load, 1)
	assert.Equal(t, []Phase{
		{For: 15 * time.Second, From: 25, To: 25},
		{For: 15 * time.Second, From: 200, To: 200},
		{For: 30 * time.Second, From: 200, To: 10},
	}, s.Load[0].Phases)

	data, err := yaml.Marshal(s)
	require.NoError(t, err)
	again, err := Parse("s.yaml", data, opts)
	require.NoError(t, err, "%s", data)
	assert.Equal(t, s.Load[0].Phases, again.Load[0].Phases, "round trip")
}

func TestLoadPhaseErrors(t *testing.T) {
	src := inlineBase + `load:
  - {phases: [{for: 50s, rate: 5}, {for: 20s, ramp: {from: 1, to: 2}}], workload: api}
  - {phases: [{rate: 5}, {for: 1s}, {for: 0s, rate: 1, ramp: {from: 1, to: 2}}], workload: api}
  - {phases: [], workload: api}
  - {phases: 3, rate: 4, workload: api}
`
	_, err := Parse("s.yaml", []byte(src), opts)
	require.Error(t, err)
	var list *yamlx.Errors
	require.True(t, errors.As(err, &list), "%v", err)
	var got []string
	for _, e := range list.List {
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		`s.yaml:13:14: load[0].phases: the phases last 1m10s, longer than the run (duration 1m0s)`,
		`s.yaml:14:15: load[1].phases[0].for: required`,
		`s.yaml:14:26: load[1].phases[1]: needs a rate (req/s) or a ramp {from, to}`,
		`s.yaml:14:43: load[1].phases[2].for: must be positive`,
		`s.yaml:14:62: load[1].phases[2].ramp: rate and ramp both set: a phase has one`,
		`s.yaml:15:14: load[2].phases: needs at least one phase {for, rate} or {for, ramp: {from, to}}`,
		`s.yaml:16:14: load[3].phases: rate and phases both set: a load has exactly one model`,
	}, got)
}
