package deploy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/topology"
)

// Broker ports: the binary protocol (clients and replication) and the
// controller quorum's raft; the HTTP side is on Port like every node.
const (
	BrokerPort     = 9092
	BrokerRaftPort = 9093
)

// UnsafeBrokerUncleanElection lets every topic elect a partition leader
// outside the in-sync set (nodes/broker: --unclean-leader-election). It
// exists to prove the checkers catch the acknowledged messages it loses.
const UnsafeBrokerUncleanElection = "broker-unclean-election"

// BrokerTopic is the topic a run's broker workloads and mirrors use.
const BrokerTopic = "events"

func init() {
	// Before the web tier and the loadgens; published so that the
	// controller can read who leads each partition (faults on "the leader",
	// failover times) and create the run's topic.
	register("broker", role{order: 6, publish: true, args: brokerArgs})
	// After the brokers it copies between; published for its lag.
	register("mirror", role{order: 7, publish: true, args: mirrorArgs})
}

// BrokerClusters groups the broker nodes into clusters: one cluster
// stretched over every region, or, when the topology has mirror nodes, one
// cluster per region (region-local clusters that mirrors join). Each
// cluster's nodes are in plan order; the map key is "" for the stretched
// cluster and the region otherwise.
func BrokerClusters(nodes []topology.NodePlan) map[string][]topology.NodePlan {
	perRegion := slices.ContainsFunc(nodes, func(n topology.NodePlan) bool { return n.Role == "mirror" })
	out := map[string][]topology.NodePlan{}
	for _, n := range nodes {
		if n.Role != "broker" {
			continue
		}
		key := ""
		if perRegion {
			key = n.Region
		}
		out[key] = append(out[key], n)
	}
	return out
}

// brokerCluster is the cluster n belongs to.
func brokerCluster(n topology.NodePlan, p peerSet) []topology.NodePlan {
	for _, c := range BrokerClusters(p.nodes) {
		if slices.ContainsFunc(c, func(m topology.NodePlan) bool { return m.Name == n.Name }) {
			return c
		}
	}
	return nil
}

// brokerArgs wires a broker to its cluster: ids 1..N in plan order, every
// member a controller voter (the brokers are the quorum), addresses the
// node IPs. The controller's raft and broker session timeouts scale with
// the largest round trip inside the cluster, so a stretched cluster does
// not fence brokers for being far away.
func brokerArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	cluster := brokerCluster(n, p)
	var peers, regions []string
	id := 0
	for i, m := range cluster {
		peers = append(peers, fmt.Sprintf("%d=%s@%s", i+1, brokerRaftAddr(m.IP), BrokerAddr(m.IP)))
		if m.Name == n.Name {
			id = i + 1
		}
		if !slices.Contains(regions, m.Region) {
			regions = append(regions, m.Region)
		}
	}
	if id == 0 {
		return nil, fmt.Errorf("broker %s: not in any cluster", n.Name)
	}
	var rtt time.Duration
	for i, a := range regions {
		for _, b := range regions[i+1:] {
			rtt = max(rtt, p.top.RTT(a, b))
		}
	}
	raftTimeout, session := brokerTimeouts(rtt)
	rf := min(3, len(cluster))
	args := []string{
		"--id", fmt.Sprint(id),
		"--listen", fmt.Sprintf(":%d", BrokerPort),
		"--raft-listen", fmt.Sprintf(":%d", BrokerRaftPort),
		"--http", fmt.Sprintf(":%d", Port),
		"--peers", strings.Join(peers, ","),
		"--data-dir", "/data",
		"--raft-timeout", raftTimeout.String(),
		"--session-timeout", session.String(),
		"--default-replication-factor", fmt.Sprint(rf),
	}
	if slices.Contains(p.top.Unsafe, UnsafeBrokerUncleanElection) {
		args = append(args, "--unclean-leader-election")
	}
	return args, nil
}

// brokerTimeouts are the controller's raft timeout and the broker session
// timeout for a cluster whose members are at most rtt apart: several round
// trips each, with floors that hold on a loaded 2-core machine. Failover
// takes about a session plus an election, so they are kept as low as that
// allows.
func brokerTimeouts(rtt time.Duration) (raft, session time.Duration) {
	return max(500*time.Millisecond, 4*rtt), max(time.Second, 6*rtt)
}

// mirrorArgs points a mirror at its own region's cluster (the target) and
// the nearest other region's cluster (the source, ties by topology order):
// it copies the run's topic from there to here.
func mirrorArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	clusters := BrokerClusters(p.nodes)
	target := clusters[n.Region]
	if len(target) == 0 {
		return nil, fmt.Errorf("mirror %s: region %s has no brokers to copy into", n.Name, n.Region)
	}
	source := ""
	for _, r := range p.top.Regions {
		if r.Name == n.Region || len(clusters[r.Name]) == 0 {
			continue
		}
		if source == "" || p.top.RTT(n.Region, r.Name) < p.top.RTT(n.Region, source) {
			source = r.Name
		}
	}
	if source == "" {
		return nil, fmt.Errorf("mirror %s: no other region has brokers to copy from", n.Name)
	}
	addrs := func(ns []topology.NodePlan) string {
		out := make([]string, len(ns))
		for i, m := range ns {
			out[i] = BrokerAddr(m.IP)
		}
		return strings.Join(out, ",")
	}
	return []string{
		"--http", fmt.Sprintf(":%d", Port),
		"--source", addrs(clusters[source]), "--source-region", source,
		"--target", addrs(target),
		"--topic", BrokerTopic,
	}, nil
}

// BrokerAddr is a broker's protocol address.
func BrokerAddr(ip netip.Addr) string { return netip.AddrPortFrom(ip, BrokerPort).String() }

func brokerRaftAddr(ip netip.Addr) string { return netip.AddrPortFrom(ip, BrokerRaftPort).String() }
