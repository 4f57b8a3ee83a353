package scenarios

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var netOpts = Options{
	FaultKinds: []string{"kill", "pause", "partition", "isolate", "link", "slow", "region-down", "region-isolate"},
	Workloads:  []string{"api"},
	Metrics:    []string{"requests", "error_rate"},
}

const netTop = `seed: 7
duration: 60s
topology:
  regions:
    - {name: a, subnet: 10.9.1.0/24, nodes: [{role: web, count: 2}]}
    - {name: b, subnet: 10.9.2.0/24, nodes: [{role: web, count: 2}, {role: loadgen, count: 1}]}
  links:
    - {between: [a, b], rtt: 10ms}
`

func TestNetworkFaults(t *testing.T) {
	rtt, loss, bw := 200*time.Millisecond, 0.1, int64(1_000_000)
	for _, tc := range []struct {
		fault string
		want  Scheduled
	}{
		{`{at: 1s, kind: region-down, target: {region: b}, for: 5s}`,
			Scheduled{Kind: "region-down", Targets: []string{"b"}}},
		{`{at: 1s, kind: region-isolate, target: {region: b}, for: 5s}`,
			Scheduled{Kind: "region-isolate", Targets: []string{"b"}}},
		{`{at: 1s, kind: partition, target: {region: a}, peer: {region: b}, oneway: true, for: 5s}`,
			Scheduled{Kind: "partition", Targets: []string{"a"}, Peers: []string{"b"}, OneWay: true}},
		{`{at: 1s, kind: partition, target: {node: web-a-1}, peer: {node: web-b-2}, for: 5s}`,
			Scheduled{Kind: "partition", Targets: []string{"web-a-1"}, Peers: []string{"web-b-2"}}},
		{`{at: 1s, kind: link, target: {region: a}, peer: {region: b}, rtt: 200ms, loss: 10%, for: 5s}`,
			Scheduled{Kind: "link", Targets: []string{"a"}, Peers: []string{"b"}, Link: LinkChange{RTT: &rtt, Loss: &loss}}},
		{`{at: 1s, kind: slow, target: {node: web-b-1}, bandwidth: 1mbit, for: 5s}`,
			Scheduled{Kind: "slow", Targets: []string{"web-b-1"}, Link: LinkChange{BandwidthBps: &bw}}},
	} {
		t.Run(tc.want.Kind, func(t *testing.T) {
			s, err := Parse("net.yaml", []byte(netTop+"faults:\n  - "+tc.fault+"\n"), netOpts)
			require.NoError(t, err)
			got, err := s.Expand(s.Topology.Plan("r"))
			require.NoError(t, err)
			require.Len(t, got, 1)
			want := tc.want
			want.At, want.For, want.Source = time.Second, 5*time.Second, SourceTimeline
			assert.Equal(t, want, got[0])
		})
	}
}

func TestNetworkFaultErrors(t *testing.T) {
	for _, tc := range []struct{ fault, want string }{
		{`{at: 1s, kind: kill, target: {node: web-a-1}, peer: {node: web-b-1}}`, "net.yaml:10:57: faults[0].peer: a kill fault takes no peer"},
		{`{at: 1s, kind: slow, target: {node: web-a-1}}`, "faults[0].bandwidth: required"},
		{`{at: 1s, kind: slow, target: {node: web-a-1}, bandwidth: 0}`, "needs a positive cap"},
		{`{at: 1s, kind: link, target: {region: a}, peer: {region: b}}`, "needs at least one of rtt"},
		{`{at: 1s, kind: link, target: {role: web}, peer: {region: b}, rtt: 1s}`, "target is a region"},
		{`{at: 1s, kind: link, target: {region: a}, peer: {region: a}, rtt: 1s}`, "other than the target's"},
		{`{at: 1s, kind: link, target: {region: a}, rtt: 1s}`, "faults[0].peer: required"},
		{`{at: 1s, kind: link, target: {region: a}, peer: {region: b}, loss: 120%}`, "percentage between"},
		{`{at: 1s, kind: link, target: {region: a}, peer: {region: b}, loss: 2}`, "between 0 and 1"},
		{`{at: 1s, kind: partition, target: {region: a}, peer: {node: web-b-1}}`, "the peer must be one too"},
		{`{at: 1s, kind: partition, target: {region: a}, peer: {region: a}}`, "from itself"},
		{`{at: 1s, kind: partition, target: {region: a}, oneway: maybe}`, "must be true or false"},
		{`{at: 1s, kind: partition, target: {region: a}, jitter: 1ms}`, "takes no jitter (it takes peer, oneway)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse("net.yaml", []byte(netTop+"faults:\n  - "+tc.fault+"\n"), netOpts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Parse("net.yaml", []byte(netTop+"nemesis: {every: 5s, for: 2s, kinds: [kill, slow], targets: {role: web}}\n"), netOpts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "slow needs parameters a nemesis cannot give")
}

func TestRegionDownReservesTheRegion(t *testing.T) {
	s, err := Parse("net.yaml", []byte(netTop+`faults:
  - {at: 1s, kind: region-down, target: {region: b}, for: 5s}
  - {at: 2s, kind: kill, target: {node: web-b-2}, for: 1s}
`), netOpts)
	if err == nil {
		_, err = s.Expand(s.Topology.Plan("r"))
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "region b goes down from 1s to 6s, but web-b-2 is already faulted")

	// A region's loadgens are its users, not its servers: faulting one
	// while the region is down or cut off is a plan, not a clash.
	for _, kind := range []string{"region-down", "region-isolate"} {
		s, err = Parse("net.yaml", []byte(netTop+`faults:
  - {at: 1s, kind: `+kind+`, target: {role: web, region: b}, for: 5s}
  - {at: 2s, kind: pause, target: {node: loadgen-b-1}, for: 1s}
`), netOpts)
		require.NoError(t, err, kind)
		_, err = s.Expand(s.Topology.Plan("r"))
		require.NoError(t, err, kind)
	}
}

// The committed nemesis scenario: the same seed gives the same schedule,
// which mixes process and network kinds.
func TestNemesisScenarioDeterministic(t *testing.T) {
	load := func() []Scheduled {
		s, err := Load("nemesis.yaml", netOpts)
		require.NoError(t, err)
		out, err := s.Expand(s.Topology.Plan(fmt.Sprint(time.Now().UnixNano())))
		require.NoError(t, err)
		return out
	}
	first := load()
	assert.Equal(t, first, load())
	kinds := map[string]bool{}
	for _, f := range first {
		kinds[f.Kind] = true
		assert.Equal(t, SourceNemesis, f.Source)
	}
	assert.Len(t, first, 7, "every 8s from 8s, 3s each, in 60s")
	assert.True(t, kinds["partition"], "a network kind is drawn: %v", kinds)
}
