package deploy

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

func TestWebCapacityBecomesFlags(t *testing.T) {
	top, err := topology.Parse("t.yaml", []byte(`
regions:
  - name: a
    subnet: 10.0.1.0/24
    nodes:
      - {role: lb, count: 1}
      - {role: web, count: 2, cores: 4, service_time: 50ms}
      - {role: loadgen, count: 1}
  - name: b
    subnet: 10.0.2.0/24
    nodes:
      - {role: lb, count: 1}
      - {role: web, count: 1, cores: 8}
      - {role: loadgen, count: 1}
  - name: c
    subnet: 10.0.3.0/24
    nodes:
      - {role: lb, count: 1}
      - {role: web, count: 1}
links:
  - {between: [a, b], rtt: 10ms}
  - {between: [a, c], rtt: 10ms}
  - {between: [b, c], rtt: 10ms}
`))
	require.NoError(t, err)
	d, err := Plan(top, "r", nil)
	require.NoError(t, err)
	cmds := map[string][]string{}
	for _, c := range d.Containers {
		cmds[c.Labels[runtime.LabelNode]] = c.Cmd
	}
	for node, want := range map[string][]string{
		"web-a-1":     {"web", "--cores", "4", "--service-time", "50ms"},
		"web-a-2":     {"web", "--cores", "4", "--service-time", "50ms"},
		"web-b-1":     {"web", "--cores", "8"},
		"web-c-1":     {"web"},
		"loadgen-a-1": {"loadgen"},
		"lb-a-1":      {"lb", "--backends", "10.0.1.11:8080,10.0.1.12:8080", "--affinity-cookie", AffinityCookie},
	} {
		assert.Equal(t, want, cmds[node], node)
	}

	// The compose file carries the same command.
	out, err := Compose(d)
	require.NoError(t, err)
	var f struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(out, &f))
	assert.Equal(t, []string{"web", "--cores", "4", "--service-time", "50ms"}, f.Services["web-a-1"].Command)
}

func TestGeoDNSKnowsEveryRegionAndNameserver(t *testing.T) {
	top, err := topology.Load("../topology/geo.yaml")
	require.NoError(t, err)
	d, err := Plan(top, "r", nil)
	require.NoError(t, err)
	var cmd []string
	for _, c := range d.Containers {
		if c.Labels[runtime.LabelNode] == "geodns-eu-west-1" {
			cmd = c.Cmd
		}
	}
	assert.Equal(t, []string{"geodns", "--dns-listen", ":53", "--listen", ":8080",
		"--ttl", "2s", "--check-interval", "500ms", "--check-timeout", "400ms", "--fall", "3", "--rise", "2",
		"--region", "name=us-east,subnet=10.212.1.0/24,lb=10.212.1.10:8080",
		"--region", "name=eu-west,subnet=10.212.2.0/24,lb=10.212.2.10:8080",
		"--region", "name=ap-south,subnet=10.212.3.0/24,lb=10.212.3.10:8080",
		"--rtt", "us-east:eu-west=70", "--rtt", "us-east:ap-south=190", "--rtt", "eu-west:ap-south=120",
		"--nameserver", "ns-us-east.faultline.test=10.212.1.13",
		"--nameserver", "ns-eu-west.faultline.test=10.212.2.13",
		"--nameserver", "ns-ap-south.faultline.test=10.212.3.13",
	}, cmd)
	// Own region first, then the nearest: eu-west is 70 ms from us-east and
	// 120 ms from ap-south.
	assert.Equal(t, []string{"10.212.2.13:53", "10.212.1.13:53", "10.212.3.13:53"}, d.Resolvers(top, "eu-west"))
	plain, err := Plan(topology.Default(), "r", nil)
	require.NoError(t, err)
	assert.Empty(t, plain.Resolvers(topology.Default(), "us-east"), "no geodns, no resolvers")
}

func TestStreamMasterAndWorkers(t *testing.T) {
	top, err := topology.Load("../topology/stream.yaml")
	require.NoError(t, err)
	d, err := Plan(top, "r", nil)
	require.NoError(t, err)
	cmds := map[string][]string{}
	for _, c := range d.Containers {
		cmds[c.Labels[runtime.LabelNode]] = c.Cmd
	}
	assert.Equal(t, []string{"stream", "master", "--workers", "4", "--per-spout", "10000", "--rate", "200"}, cmds["stream-us-east-1"])
	assert.Equal(t, []string{"stream", "worker", "--master", "http://10.214.1.10:8080", "--data-listen", ":7100",
		"--advertise", "10.214.1.14:7100", "--sink", "console", "--per-spout", "10000", "--rate", "200"}, cmds["stream-us-east-5"])

	// State in the db: master and workers get the db nodes (workers write
	// their checkpoints themselves).
	top.Stream.StateInDB = true
	_, err = Plan(top, "r", nil)
	assert.ErrorContains(t, err, "the topology has no db nodes")
	top.Regions[0].Nodes = append([]topology.NodeGroup{{Role: "db", Count: 3}}, top.Regions[0].Nodes...)
	d, err = Plan(top, "r", nil)
	require.NoError(t, err)
	dbs := []string{"--db", "http://10.214.1.10:8080,http://10.214.1.11:8080,http://10.214.1.12:8080"}
	for _, c := range d.Containers {
		switch c.Labels[runtime.LabelNode] {
		case "stream-us-east-1":
			assert.Equal(t, append([]string{"stream", "master", "--workers", "4", "--per-spout", "10000", "--rate", "200"}, dbs...), c.Cmd)
		case "stream-us-east-2":
			assert.Equal(t, dbs, c.Cmd[len(c.Cmd)-2:])
		}
	}

	// The sink writes to the db: workers get the db nodes for it.
	top.Stream.Sink = "db"
	d, err = Plan(top, "r", nil)
	require.NoError(t, err)
	for _, c := range d.Containers {
		if c.Labels[runtime.LabelNode] == "stream-us-east-2" {
			assert.Subset(t, c.Cmd, []string{"--sink", "db", "--sink-db", dbs[1]})
		}
	}
	top.Stream.Sink = ""

	top.Regions[0].Nodes[1].Count = 1
	_, err = Plan(top, "r", nil)
	assert.ErrorContains(t, err, "needs at least one worker")

	fed, err := topology.Load("../topology/stream-broker.yaml")
	require.NoError(t, err)
	d, err = Plan(fed, "r", nil)
	require.NoError(t, err)
	brokers := []string{"--brokers", "10.214.1.10:9092,10.214.1.11:9092,10.214.1.12:9092", "--topic", "sentences"}
	for _, c := range d.Containers {
		switch c.Labels[runtime.LabelNode] {
		case "stream-us-east-2":
			assert.Subset(t, c.Cmd, brokers)
		case "feeder-us-east-1":
			assert.Equal(t, append([]string{"feeder", "--per-spout", "10000", "--rate", "200"}, brokers...), c.Cmd)
		}
	}
	noFeeder := *fed
	noFeeder.Regions = []topology.Region{fed.Regions[0]}
	noFeeder.Regions[0].Nodes = slices.DeleteFunc(slices.Clone(fed.Regions[0].Nodes), func(g topology.NodeGroup) bool { return g.Role == "feeder" })
	_, err = Plan(&noFeeder, "r", nil)
	assert.ErrorContains(t, err, "no feeder node")
	fed.Regions[0].Nodes = fed.Regions[0].Nodes[1:]
	_, err = Plan(fed, "r", nil)
	assert.ErrorContains(t, err, "the topology has no brokers")
}
