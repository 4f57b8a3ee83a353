// Package controller keeps the cluster metadata (brokers, topics, partition
// replicas, leaders, in-sync sets, leader epochs) in a raft-replicated state
// machine, and on the raft leader fences brokers that stop heartbeating and
// elects new partition leaders.
package controller

import (
	"hash/fnv"
	"slices"
	"sort"

	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Broker is a registered broker.
type Broker struct {
	ID     int32
	Addr   string
	Fenced bool // missed its session: leads nothing, sits in no in-sync set
}

// Partition is one partition's replication state.
type Partition struct {
	Replicas []int32
	Leader   int32 // -1: offline
	Epoch    int32 // bumped on every leader change
	ISR      []int32
}

// Topic is a topic and its per-topic settings.
type Topic struct {
	Name       string
	MinISR     int32
	Unclean    bool // UNSAFE: may elect a leader outside the in-sync set
	Partitions []Partition
}

// State is the whole metadata. Apply is deterministic so every controller
// replica computes the same elections.
type State struct {
	Brokers map[int32]*Broker
	Topics  map[string]*Topic
}

// Op names a command.
type Op string

const (
	OpRegister Op = "register"
	OpFence    Op = "fence"
	OpCreate   Op = "create"
	OpAlterISR Op = "alter-isr"
)

// Command is one metadata change, the unit raft replicates.
type Command struct {
	Op                Op
	Broker            int32
	Addr              string
	Topic             string
	Partitions        int32
	ReplicationFactor int32
	MinISR            int32
	Unclean           bool
	Partition         int32
	Epoch             int32
	ISR               []int32
}

func newState() *State {
	return &State{Brokers: map[int32]*Broker{}, Topics: map[string]*Topic{}}
}

// apply changes s by c and returns the error code for the requester.
func (s *State) apply(c Command) protocol.ErrorCode {
	switch c.Op {
	case OpRegister:
		b := s.Brokers[c.Broker]
		if b == nil {
			b = &Broker{ID: c.Broker}
			s.Brokers[c.Broker] = b
		}
		b.Addr, b.Fenced = c.Addr, false
		s.electOffline()
	case OpFence:
		b := s.Brokers[c.Broker]
		if b == nil || b.Fenced {
			return protocol.None
		}
		b.Fenced = true
		s.removeFenced(c.Broker)
	case OpCreate:
		return s.create(c)
	case OpAlterISR:
		return s.alterISR(c)
	default:
		return protocol.InvalidRequest
	}
	return protocol.None
}

func (s *State) live(id int32) bool {
	b := s.Brokers[id]
	return b != nil && !b.Fenced
}

func (s *State) create(c Command) protocol.ErrorCode {
	if _, ok := s.Topics[c.Topic]; ok {
		return protocol.TopicAlreadyExists
	}
	var live []int32
	for id, b := range s.Brokers {
		if !b.Fenced {
			live = append(live, id)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i] < live[j] })
	if c.ReplicationFactor < 1 || int(c.ReplicationFactor) > len(live) || c.Partitions < 1 ||
		c.MinISR < 1 || c.MinISR > c.ReplicationFactor {
		return protocol.InvalidReplicationFactor
	}
	h := fnv.New32a()
	h.Write([]byte(c.Topic))
	start := int(h.Sum32() % uint32(len(live)))
	t := &Topic{Name: c.Topic, MinISR: c.MinISR, Unclean: c.Unclean}
	for p := range int(c.Partitions) {
		replicas := make([]int32, c.ReplicationFactor)
		for r := range replicas {
			replicas[r] = live[(start+p+r)%len(live)]
		}
		t.Partitions = append(t.Partitions, Partition{
			Replicas: replicas, Leader: replicas[0], ISR: slices.Clone(replicas),
		})
	}
	s.Topics[c.Topic] = t
	return protocol.None
}

func (s *State) alterISR(c Command) protocol.ErrorCode {
	t := s.Topics[c.Topic]
	if t == nil || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return protocol.UnknownTopicOrPartition
	}
	p := &t.Partitions[c.Partition]
	if p.Leader != c.Broker || p.Epoch != c.Epoch {
		return protocol.FencedLeaderEpoch
	}
	if !slices.Contains(c.ISR, c.Broker) {
		return protocol.InvalidRequest
	}
	for _, id := range c.ISR {
		if !slices.Contains(p.Replicas, id) || !s.live(id) {
			return protocol.InvalidRequest
		}
	}
	p.ISR = sortedUnique(c.ISR)
	return protocol.None
}

// removeFenced takes a fenced broker out of every in-sync set (unless it is
// the last member: that one must stay, it may hold the only copy of
// committed data) and moves leadership off it.
func (s *State) removeFenced(id int32) {
	for _, t := range s.Topics {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if len(p.ISR) > 1 {
				p.ISR = slices.DeleteFunc(p.ISR, func(x int32) bool { return x == id })
			}
			if p.Leader == id {
				s.elect(t, p)
			}
		}
	}
}

// electOffline gives offline partitions a leader once one can be had.
func (s *State) electOffline() {
	for _, t := range s.Topics {
		for i := range t.Partitions {
			if p := &t.Partitions[i]; p.Leader == -1 {
				s.elect(t, p)
			}
		}
	}
}

// elect picks a live in-sync replica in replica order; failing that, only
// with unclean election, any live replica, whose log then defines the
// partition and may lack acknowledged records.
func (s *State) elect(t *Topic, p *Partition) {
	leader := int32(-1)
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && s.live(r) {
			leader = r
			break
		}
	}
	if leader == -1 && t.Unclean {
		for _, r := range p.Replicas {
			if s.live(r) {
				leader = r
				p.ISR = []int32{r}
				break
			}
		}
	}
	if leader != p.Leader {
		p.Leader = leader
		p.Epoch++
	}
	if leader != -1 {
		// Members that are not live cannot stay in sync with the new leader.
		p.ISR = slices.DeleteFunc(p.ISR, func(x int32) bool { return !s.live(x) })
	}
}

func sortedUnique(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Clone is a deep copy safe to read without the controller's lock.
func (s *State) Clone() *State {
	out := newState()
	for id, b := range s.Brokers {
		bb := *b
		out.Brokers[id] = &bb
	}
	for name, t := range s.Topics {
		tt := *t
		tt.Partitions = make([]Partition, len(t.Partitions))
		for i, p := range t.Partitions {
			tt.Partitions[i] = Partition{Replicas: slices.Clone(p.Replicas), Leader: p.Leader, Epoch: p.Epoch, ISR: slices.Clone(p.ISR)}
		}
		out.Topics[name] = &tt
	}
	return out
}

// Metadata renders the state for a metadata response.
func (s *State) Metadata(controller int32, topics []string) *protocol.MetadataResponse {
	resp := &protocol.MetadataResponse{ControllerID: controller}
	for _, b := range s.Brokers {
		if !b.Fenced {
			resp.Brokers = append(resp.Brokers, protocol.Broker{ID: b.ID, Addr: b.Addr})
		}
	}
	sort.Slice(resp.Brokers, func(i, j int) bool { return resp.Brokers[i].ID < resp.Brokers[j].ID })
	if len(topics) == 0 {
		for name := range s.Topics {
			topics = append(topics, name)
		}
		sort.Strings(topics)
	}
	for _, name := range topics {
		t := s.Topics[name]
		if t == nil {
			resp.Topics = append(resp.Topics, protocol.TopicMeta{Name: name, Err: protocol.UnknownTopicOrPartition})
			continue
		}
		tm := protocol.TopicMeta{Name: name, MinISR: t.MinISR}
		for i, p := range t.Partitions {
			tm.Partitions = append(tm.Partitions, protocol.PartitionMeta{
				ID: int32(i), Leader: p.Leader, Epoch: p.Epoch,
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
			})
		}
		resp.Topics = append(resp.Topics, tm)
	}
	return resp
}
