package broker

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

// testCluster is brokers on 127.0.0.1 ephemeral ports and temp dirs that a
// test can kill and restart (same ports, same data).
type testCluster struct {
	t       testing.TB
	root    string
	addrs   map[int32]string
	raft    map[int32]string
	brokers map[int32]*Broker
	unclean bool
	lag     time.Duration
	// ids up to brokerIDs are brokers, the rest controller-only voters
	brokerIDs int32
}

// controllerOnly is how many extra controller voters a test cluster runs
// (ids after the brokers), so the metadata quorum survives two dead brokers.
const controllerOnly = 2

func newTestCluster(t testing.TB, n int, unclean bool, lag time.Duration) *testCluster {
	t.Helper()
	c := &testCluster{t: t, root: t.TempDir(), addrs: map[int32]string{}, raft: map[int32]string{}, brokers: map[int32]*Broker{}, unclean: unclean, lag: lag}
	c.brokerIDs = int32(n)
	for id := int32(1); id <= int32(n+controllerOnly); id++ {
		c.addrs[id] = freeAddr(t)
		c.raft[id] = freeAddr(t)
	}
	for id := range c.addrs {
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.brokers {
			c.kill(id)
		}
	})
	return c
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func (c *testCluster) start(id int32) {
	c.t.Helper()
	var ln, rln net.Listener
	var err error
	// A port just released can take a moment to be free again.
	for range 50 {
		if ln, err = net.Listen("tcp", c.addrs[id]); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(c.t, err)
	for range 50 {
		if rln, err = net.Listen("tcp", c.raft[id]); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(c.t, err)
	peers := map[int32]Peer{}
	for pid := range c.addrs {
		peers[pid] = Peer{Raft: c.raft[pid], Addr: c.addrs[pid]}
	}
	b, err := Start(Config{ControllerOnly: id > c.brokerIDs,
		ID: id, Listener: ln, Advertise: c.addrs[id], RaftListener: rln, RaftAdvertise: c.raft[id],
		Peers: peers, Dir: filepath.Join(c.root, fmt.Sprint(id)),
		ReplicaLagMax: c.lag, SessionTimeout: c.lag, HeartbeatInterval: 100 * time.Millisecond,
		RaftTimeout: 500 * time.Millisecond, RaftNoSync: true, UncleanLeaderElection: c.unclean,
		Logger: hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("broker-%d", id), Level: testLogLevel}),
	})
	require.NoError(c.t, err)
	c.brokers[id] = b
}

// kill stops a broker abruptly from the cluster's point of view: its
// connections drop and it stops heartbeating.
func (c *testCluster) kill(id int32) {
	c.t.Helper()
	b := c.brokers[id]
	if b == nil {
		return
	}
	delete(c.brokers, id)
	require.NoError(c.t, b.Close())
}

func (c *testCluster) bootstrap() []string {
	var out []string
	for id, a := range c.addrs {
		if id <= c.brokerIDs {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// partitionMeta is the partition's metadata as the controller leader has
// it, once a leader has applied everything committed (brokers' copies may
// lag, which clients tolerate but tests must not read as truth). It waits
// through controller elections; a topic the controller does not know yet
// reads as offline.
func (c *testCluster) partitionMeta(topic string, p int32) protocol.PartitionMeta {
	c.t.Helper()
	var pm protocol.PartitionMeta
	waitFor(c.t, "an authoritative controller", func() bool {
		for _, b := range c.brokers {
			if leader, ok := b.ctrl.Leader(); !ok || leader != b.ID() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := b.ctrl.Barrier(ctx)
			cancel()
			if err != nil {
				return false
			}
			st, _ := b.ctrl.Watch()
			pm = protocol.PartitionMeta{ID: p, Leader: -1}
			if t := st.Topics[topic]; t != nil && int(p) < len(t.Partitions) {
				pt := t.Partitions[p]
				pm = protocol.PartitionMeta{ID: p, Leader: pt.Leader, Epoch: pt.Epoch, Replicas: pt.Replicas, ISR: pt.ISR}
			}
			return true
		}
		return false
	})
	return pm
}

// ledPartition waits until the partition has a leader and returns its
// metadata.
func (c *testCluster) ledPartition(topic string, p int32) protocol.PartitionMeta {
	c.t.Helper()
	var pm protocol.PartitionMeta
	waitFor(c.t, "a partition leader", func() bool {
		pm = c.partitionMeta(topic, p)
		return pm.Leader > 0
	})
	return pm
}

// waitFor polls cond until it holds; the bound is generous because the
// machine is small and shared, and is not what the test measures.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createTopic(t testing.TB, cl *client.Client, name string, cfg client.TopicConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.CreateTopic(ctx, name, cfg))
}

// testLogLevel keeps raft's expected complaints about killed peers out of
// test output.
var testLogLevel = hclog.Off
