package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/broker/protocol"
)

func threeBrokers(t *testing.T, unclean bool) *State {
	t.Helper()
	s := newState()
	for id := int32(1); id <= 3; id++ {
		require.Equal(t, protocol.None, s.apply(Command{Op: OpRegister, Broker: id, Addr: "x"}))
	}
	require.Equal(t, protocol.None, s.apply(Command{Op: OpCreate, Topic: "t", Partitions: 3, ReplicationFactor: 3, MinISR: 2, Unclean: unclean}))
	return s
}

func TestCreateSpreadsLeaders(t *testing.T) {
	s := threeBrokers(t, false)
	leaders := map[int32]bool{}
	for _, p := range s.Topics["t"].Partitions {
		assert.Len(t, p.Replicas, 3)
		assert.ElementsMatch(t, p.Replicas, p.ISR)
		assert.Equal(t, p.Replicas[0], p.Leader)
		leaders[p.Leader] = true
	}
	assert.Len(t, leaders, 3)
	assert.Equal(t, protocol.TopicAlreadyExists, s.apply(Command{Op: OpCreate, Topic: "t", Partitions: 1, ReplicationFactor: 1, MinISR: 1}))
	assert.Equal(t, protocol.InvalidReplicationFactor, s.apply(Command{Op: OpCreate, Topic: "u", Partitions: 1, ReplicationFactor: 4, MinISR: 1}))
	assert.Equal(t, protocol.InvalidReplicationFactor, s.apply(Command{Op: OpCreate, Topic: "u", Partitions: 1, ReplicationFactor: 2, MinISR: 3}))
}

func TestElection(t *testing.T) {
	tests := []struct {
		name       string
		unclean    bool
		steps      []Command
		wantLeader int32
		wantISR    []int32
		wantEpoch  int32
	}{
		{
			name:       "fenced leader replaced from the ISR",
			steps:      []Command{{Op: OpFence, Broker: 1}},
			wantLeader: 2, wantISR: []int32{2, 3}, wantEpoch: 1,
		},
		{
			name: "ISR shrunk to the leader, leader dies: offline",
			steps: []Command{
				{Op: OpAlterISR, Topic: "t", Broker: 1, Epoch: 0, ISR: []int32{1}},
				{Op: OpFence, Broker: 1},
			},
			wantLeader: -1, wantISR: []int32{1}, wantEpoch: 1,
		},
		{
			name: "offline partition gets its ISR member back",
			steps: []Command{
				{Op: OpAlterISR, Topic: "t", Broker: 1, Epoch: 0, ISR: []int32{1}},
				{Op: OpFence, Broker: 1},
				{Op: OpRegister, Broker: 1, Addr: "y"},
			},
			wantLeader: 1, wantISR: []int32{1}, wantEpoch: 2,
		},
		{
			name:    "unclean: an out-of-sync replica takes over",
			unclean: true,
			steps: []Command{
				{Op: OpAlterISR, Topic: "t", Broker: 1, Epoch: 0, ISR: []int32{1}},
				{Op: OpFence, Broker: 1},
			},
			wantLeader: 2, wantISR: []int32{2}, wantEpoch: 1,
		},
		{
			name: "alter ISR from a stale epoch is refused",
			steps: []Command{
				{Op: OpFence, Broker: 1},
				{Op: OpRegister, Broker: 1, Addr: "y"},
				{Op: OpAlterISR, Topic: "t", Broker: 1, Epoch: 0, ISR: []int32{1}},
			},
			wantLeader: 2, wantISR: []int32{2, 3}, wantEpoch: 1,
		},
		{
			name: "follower fenced leaves the ISR, leader stays",
			steps: []Command{
				{Op: OpFence, Broker: 3},
			},
			wantLeader: 1, wantISR: []int32{1, 2}, wantEpoch: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := threeBrokers(t, tt.unclean)
			// find the partition led by 1 with replicas 1,2,3 in that order
			var idx int
			for i, p := range s.Topics["t"].Partitions {
				if p.Leader == 1 {
					idx = i
				}
			}
			require.Equal(t, []int32{1, 2, 3}, s.Topics["t"].Partitions[idx].Replicas)
			for _, c := range tt.steps {
				c.Partition = int32(idx)
				s.apply(c)
			}
			p := s.Topics["t"].Partitions[idx]
			assert.Equal(t, tt.wantLeader, p.Leader)
			assert.Equal(t, tt.wantISR, p.ISR)
			assert.Equal(t, tt.wantEpoch, p.Epoch)
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := threeBrokers(t, false)
	c := s.Clone()
	c.Topics["t"].Partitions[0].ISR[0] = 99
	c.Brokers[1].Fenced = true
	assert.NotEqual(t, int32(99), s.Topics["t"].Partitions[0].ISR[0])
	assert.False(t, s.Brokers[1].Fenced)
}
