package deploy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

func brokerCmds(t *testing.T, yaml string, unsafe []string) map[string][]string {
	t.Helper()
	top, err := topology.Parse("t.yaml", []byte(yaml))
	require.NoError(t, err)
	top.Unsafe = unsafe
	d, err := Plan(top, "r", nil)
	require.NoError(t, err)
	out := map[string][]string{}
	for _, c := range d.Containers {
		role := c.Labels[runtime.LabelRole]
		if role == "broker" || role == "mirror" {
			assert.Equal(t, []int{Port}, c.Ports, "published for the controller")
			out[c.Labels[runtime.LabelNode]] = c.Cmd
		}
	}
	return out
}

func TestBrokerArgs(t *testing.T) {
	const stretched = `
regions:
  - {name: a, subnet: 10.0.1.0/24, nodes: [{role: broker, count: 2}]}
  - {name: b, subnet: 10.0.2.0/24, nodes: [{role: broker, count: 1}]}
links:
  - {between: [a, b], rtt: 190ms}
`
	const peers = "1=10.0.1.10:9093@10.0.1.10:9092,2=10.0.1.11:9093@10.0.1.11:9092,3=10.0.2.10:9093@10.0.2.10:9092"
	want := func(id string, extra ...string) []string {
		return append([]string{"broker", "--id", id, "--listen", ":9092", "--raft-listen", ":9093", "--http", ":8080",
			"--peers", peers, "--data-dir", "/data", "--raft-timeout", "760ms", "--session-timeout", "1.14s",
			"--default-replication-factor", "3"}, extra...)
	}
	tests := []struct {
		name   string
		unsafe []string
		want   map[string][]string
	}{
		{"one stretched cluster, timeouts from the far link", nil, map[string][]string{
			"broker-a-1": want("1"), "broker-a-2": want("2"), "broker-b-1": want("3"),
		}},
		{"the unsafe switch", []string{UnsafeBrokerUncleanElection}, map[string][]string{
			"broker-a-1": want("1", "--unclean-leader-election"), "broker-a-2": want("2", "--unclean-leader-election"),
			"broker-b-1": want("3", "--unclean-leader-election"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, brokerCmds(t, stretched, tt.unsafe))
		})
	}
}

func TestMirrorMakesRegionLocalClusters(t *testing.T) {
	got := brokerCmds(t, `
regions:
  - {name: a, subnet: 10.0.1.0/24, nodes: [{role: broker, count: 1}]}
  - {name: b, subnet: 10.0.2.0/24, nodes: [{role: broker, count: 1}, {role: mirror, count: 1}]}
  - {name: c, subnet: 10.0.3.0/24, nodes: [{role: broker, count: 1}]}
links:
  - {between: [a, b], rtt: 70ms}
  - {between: [b, c], rtt: 120ms}
  - {between: [a, c], rtt: 190ms}
`, nil)
	for node, peers := range map[string]string{
		"broker-a-1": "1=10.0.1.10:9093@10.0.1.10:9092",
		"broker-b-1": "1=10.0.2.10:9093@10.0.2.10:9092",
		"broker-c-1": "1=10.0.3.10:9093@10.0.3.10:9092",
	} {
		assert.Contains(t, got[node], peers, node)
		assert.Contains(t, got[node], "500ms", "%s: a one-region cluster takes the timeout floors", node)
	}
	// The mirror copies from the nearest other region into its own.
	assert.Equal(t, []string{"mirror", "--http", ":8080", "--source", "10.0.1.10:9092", "--source-region", "a",
		"--target", "10.0.2.10:9092", "--topic", BrokerTopic}, got["mirror-b-1"])
}

func TestBrokerTimeouts(t *testing.T) {
	raft, session := brokerTimeouts(0)
	assert.Equal(t, []time.Duration{500 * time.Millisecond, time.Second}, []time.Duration{raft, session})
	raft, session = brokerTimeouts(300 * time.Millisecond)
	assert.Equal(t, []time.Duration{1200 * time.Millisecond, 1800 * time.Millisecond}, []time.Duration{raft, session})
}
