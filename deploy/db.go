package deploy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/topology"
)

// DBRaftPort is where db nodes speak raft to each other; their HTTP API is
// on Port like every node.
const DBRaftPort = 7000

// UnsafeDBEarlyAck is the unsafe switch that makes db leaders acknowledge
// writes before a quorum has them (nodes/db/earlyack.go). It exists to prove
// the checkers catch lost writes; no run should pass with it on.
const UnsafeDBEarlyAck = "db-early-ack"

// UnsafeSwitches lists the switches topology.Topology.Unsafe may hold.
func UnsafeSwitches() []string { return []string{UnsafeDBEarlyAck, UnsafeBrokerUncleanElection} }

func init() {
	// Before the web tier, which may keep its data here; published so that
	// the controller can ask the nodes who leads (faults on "the leader").
	register("db", role{order: 5, publish: true, args: dbArgs})
}

// dbArgs wires a db node to every other: all nodes know every member's
// raft and HTTP addresses (a follower forwards writes to the leader's HTTP
// address); the first voter in plan order forms the cluster and the others
// join it. Raft's timeouts scale with the largest round trip between the
// voters' regions, fsync stays on.
func dbArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	all := p.all("db")
	var peers []string
	var voterRegions []string
	bootstrap := ""
	for _, m := range all {
		peers = append(peers, fmt.Sprintf("%s=%s@%s", m.Name, dbRaftAddr(m.IP), hostPort(m.IP)))
		if p.top.Voter(m) {
			if bootstrap == "" {
				bootstrap = m.Name
			}
			if !slices.Contains(voterRegions, m.Region) {
				voterRegions = append(voterRegions, m.Region)
			}
		}
	}
	if bootstrap == "" {
		return nil, fmt.Errorf("db %s: the topology has no db voter", n.Name)
	}
	var rtt time.Duration
	for i, a := range voterRegions {
		for _, b := range voterRegions[i+1:] {
			rtt = max(rtt, p.top.RTT(a, b))
		}
	}
	args := []string{
		"--id", n.Name,
		"--raft-addr", dbRaftAddr(n.IP),
		"--peers", strings.Join(peers, ","),
		"--rtt", rtt.String(),
		"--fsync=true",
	}
	switch {
	case !p.top.Voter(n):
		args = append(args, "--nonvoter")
	case n.Name == bootstrap:
		args = append(args, "--bootstrap")
	}
	if slices.Contains(p.top.Unsafe, UnsafeDBEarlyAck) {
		args = append(args, "--unsafe-ack-before-commit")
	}
	return args, nil
}

func dbRaftAddr(ip netip.Addr) string { return netip.AddrPortFrom(ip, DBRaftPort).String() }
