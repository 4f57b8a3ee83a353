package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

func TestDBNodesAreWiredToEachOther(t *testing.T) {
	top, err := topology.Parse("t.yaml", []byte(`
regions:
  - name: a
    subnet: 10.0.1.0/24
    nodes: [{role: db, count: 2}]
  - name: b
    subnet: 10.0.2.0/24
    nodes: [{role: db, count: 1}]
  - name: c
    subnet: 10.0.3.0/24
    nodes: [{role: db, count: 1, voter: false}]
links:
  - {between: [a, b], rtt: 70ms}
  - {between: [a, c], rtt: 300ms}
  - {between: [b, c], rtt: 10ms}
`))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		unsafe []string
		want   map[string][]string
	}{
		{"safe", nil, map[string][]string{
			// The non-voter's far link does not slow the voters' timeouts.
			"db-a-1": {"--bootstrap"},
			"db-a-2": {},
			"db-b-1": {},
			"db-c-1": {"--nonvoter"},
		}},
		{"unsafe", []string{UnsafeDBEarlyAck}, map[string][]string{
			"db-a-1": {"--bootstrap", "--unsafe-ack-before-commit"},
			"db-a-2": {"--unsafe-ack-before-commit"},
			"db-b-1": {"--unsafe-ack-before-commit"},
			"db-c-1": {"--nonvoter", "--unsafe-ack-before-commit"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top.Unsafe = tc.unsafe
			d, err := Plan(top, "r", nil)
			require.NoError(t, err)
			const peers = "db-a-1=10.0.1.10:7000@10.0.1.10:8080,db-a-2=10.0.1.11:7000@10.0.1.11:8080," +
				"db-b-1=10.0.2.10:7000@10.0.2.10:8080,db-c-1=10.0.3.10:7000@10.0.3.10:8080"
			ips := map[string]string{"db-a-1": "10.0.1.10", "db-a-2": "10.0.1.11", "db-b-1": "10.0.2.10", "db-c-1": "10.0.3.10"}
			got := map[string][]string{}
			for _, c := range d.Containers {
				node := c.Labels[runtime.LabelNode]
				if c.Labels[runtime.LabelRole] != "db" {
					continue
				}
				assert.Equal(t, []int{Port}, c.Ports, "published for the controller's leader lookups")
				want := append([]string{"db", "--id", node, "--raft-addr", ips[node] + ":7000", "--peers", peers, "--rtt", "70ms", "--fsync=true"}, tc.want[node]...)
				got[node] = c.Cmd
				assert.Equal(t, want, c.Cmd, node)
			}
			assert.Len(t, got, 4)
		})
	}
}
