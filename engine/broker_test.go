package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	brokercheck "github.com/faultline/faultline/checkers/broker"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/nodes/broker"
	"github.com/faultline/faultline/nodes/broker/protocol"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/topology"
	brokerwork "github.com/faultline/faultline/workloads/broker"
)

func brokerMeta(leaders ...int32) broker.Metadata {
	t := protocol.TopicMeta{Name: brokerwork.Topic}
	for i, l := range leaders {
		t.Partitions = append(t.Partitions, protocol.PartitionMeta{ID: int32(i), Leader: l})
	}
	return broker.Metadata{Controller: 1, Topics: []protocol.TopicMeta{{Name: "other"}, t}}
}

var brokerCluster = []topology.NodePlan{{Name: "broker-a-1", Role: "broker"}, {Name: "broker-b-1", Role: "broker"}, {Name: "broker-c-1", Role: "broker"}}

func TestBrokerLeaders(t *testing.T) {
	tests := []struct {
		name    string
		meta    broker.Metadata
		leaders map[int32]string
		led     bool
	}{
		{"every partition led", brokerMeta(1, 3, 2), map[int32]string{0: "broker-a-1", 1: "broker-c-1", 2: "broker-b-1"}, true},
		{"an offline partition", brokerMeta(2, -1), map[int32]string{0: "broker-b-1"}, false},
		{"no topic yet", broker.Metadata{Controller: 1}, map[int32]string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.leaders, leaders(tt.meta, brokerCluster))
			assert.Equal(t, tt.led, topicLed(tt.meta) == nil)
		})
	}
}

// A kill's partitions are those its target led in the last sample before
// the injection began; it counts from when it was carried out; kills of
// other roles are not broker failovers.
func TestBrokerKillsUseTheLastSampleBefore(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := &brokerObserver{r: &run{start: start, dep: &deploy.Deployment{Nodes: brokerCluster}}}
	o.samples = []leaderSample{
		{at: start.Add(1 * time.Second), leaders: map[int32]string{0: "broker-a-1", 1: "broker-a-1", 2: "broker-b-1"}},
		{at: start.Add(4 * time.Second), leaders: map[int32]string{0: "broker-b-1", 1: "broker-a-1", 2: "broker-b-1"}},
		{at: start.Add(9 * time.Second), leaders: map[int32]string{0: "broker-c-1", 1: "broker-c-1", 2: "broker-c-1"}},
	}
	got := o.kills([]results.Fault{
		{Kind: "kill", Targets: []string{"broker-b-1"}, InjectedAt: 4.5},
		{Kind: "kill", Targets: []string{"web-a-1"}, InjectedAt: 6},
		{Kind: "partition", Targets: []string{"broker-a-1"}, InjectedAt: 7},
		{Kind: "kill", Targets: []string{"broker-a-1"}, InjectedAt: 2, Error: "failed"},
	}, map[string][]float64{"kill broker-b-1": {1, 5}})
	assert.Equal(t, []brokercheck.Kill{{At: start.Add(5 * time.Second), Node: "broker-b-1", Partitions: []int32{0, 2}}}, got)
}

func TestFreshnessCountsAppliedChanges(t *testing.T) {
	older := brokerMeta(1, 2)
	newer := brokerMeta(3, 2)
	newer.Topics[1].Partitions[0].Epoch = 1
	assert.Greater(t, freshness(newer), freshness(older))
	assert.Greater(t, freshness(older), freshness(broker.Metadata{Controller: 1}), "a broker still replaying knows no topic yet")
}
