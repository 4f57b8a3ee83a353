package topology

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/internal/yamlx"
)

func TestDBTopologyFile(t *testing.T) {
	top, err := Load("db.yaml")
	require.NoError(t, err)
	var voters []string
	for _, n := range top.Plan("x") {
		if n.Role == "db" && top.Voter(n) {
			voters = append(voters, n.Name)
		}
	}
	assert.Equal(t, []string{"db-us-east-1", "db-eu-west-1", "db-ap-south-1"}, voters)
}

func TestVoterPlacement(t *testing.T) {
	const src = `regions:
  - name: a
    subnet: 10.0.1.0/24
    nodes: [{role: db, count: 3}]
  - name: b
    subnet: 10.0.2.0/24
    nodes: [{role: db, count: 1, voter: false}]
links: [{between: [a, b], rtt: 10ms}]
`
	top, err := Parse("t.yaml", []byte(src))
	require.NoError(t, err)
	got := map[string]bool{}
	for _, n := range top.Plan("x") {
		got[n.Name] = !top.Voter(n)
	}
	assert.Equal(t, map[string]bool{"db-a-1": false, "db-a-2": false, "db-a-3": false, "db-b-1": true}, got)
}

func TestVoterErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"not a bool", "regions:\n  - {name: a, subnet: 10.0.0.0/24, nodes: [{role: db, count: 1, voter: maybe}]}\n", []string{
			`t.yaml:2:72: regions[0].nodes[0].voter: must be true or false, not "maybe"`,
		}},
		{"not a db", "regions:\n  - {name: a, subnet: 10.0.0.0/24, nodes: [{role: web, count: 1, voter: false}]}\n", []string{
			`t.yaml:2:73: regions[0].nodes[0].voter: only db nodes vote, not web`,
		}},
		{"no voter at all", "regions:\n  - {name: a, subnet: 10.0.0.0/24, nodes: [{role: db, count: 2, voter: false}]}\n", []string{
			`t.yaml:2:3: regions: 2 db node(s) but no voter: a cluster without voters can never elect a leader`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
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
