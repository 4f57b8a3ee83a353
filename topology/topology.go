// Package topology describes the regions faultline emulates: their subnets,
// the nodes in each, and the links (RTT, jitter, loss, bandwidth) between
// them. It parses and validates topology files and plans node names and
// addresses; it starts nothing.
package topology

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"
)

// DefaultImage is the node image used when a topology names none.
const DefaultImage = "faultline/node:dev"

// Roles are the node roles a topology may place. A role here must be one
// `node <role>` understands.
var Roles = []string{"broker", "mirror", "stream", "feeder", "web", "lb", "cache", "edge", "db", "wan", "loadgen", "geodns"}

// Topology is a validated set of regions and the links between them.
type Topology struct {
	Name    string
	Image   string
	Regions []Region
	Links   []Link
	DNS     DNS
	Stream  Stream
	File    string // where it was read from, for messages
	// Unsafe lists the unsafe switches a run turns on in the system under
	// test (e.g. "db-early-ack"), to prove the checkers catch what they
	// break. Never read from a topology file: a scenario or the CLI sets it.
	Unsafe []string
}

// Region is one emulated datacenter: its own network and nodes.
type Region struct {
	Name   string
	Subnet netip.Prefix
	Nodes  []NodeGroup
}

// NodeGroup is Count nodes of one role.
type NodeGroup struct {
	Role  string
	Count int
	// Cores and ServiceTime are a web node's capacity model: it serves at
	// most Cores requests at once, each holding its core for ServiceTime,
	// so about Cores/ServiceTime requests a second whatever the host. Zero
	// Cores serves as fast as the host can. Only web groups may set them.
	Cores       int
	ServiceTime time.Duration
	// NonVoter makes db nodes non-voting read replicas (`voter: false`):
	// they follow the log but take no part in elections or quorums. Only
	// db groups may set it.
	NonVoter bool
}

// Link is the emulated WAN path between two regions, the same both ways.
type Link struct {
	A, B         string
	RTT, Jitter  time.Duration
	Loss         float64 // probability a packet is dropped, 0..1
	BandwidthBps int64   // bits per second; 0 = unlimited
}

// NodePlan is one node's fixed identity: the same topology and run ID always
// give the same names and addresses, so a run can be replayed and its
// containers found again.
type NodePlan struct {
	Name    string
	Role    string
	Region  string
	Index   int // 1-based within role and region
	IP      netip.Addr
	Network string
	// Cores and ServiceTime come from the node's group (see NodeGroup).
	Cores       int
	ServiceTime time.Duration
}

// Addresses inside a region's subnet, as offsets from the network address.
// Docker takes the first host as gateway; the WAN router takes the last; nodes
// start at 10 so a few addresses stay free for tools poked in by hand.
const (
	gatewayOffset   = 1
	firstNodeOffset = 10
)

// Load reads and parses a topology file.
func Load(path string) (*Topology, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// maxFileSize bounds what is read, so a path to a device or a huge file
// fails instead of exhausting memory.
const maxFileSize = 1 << 20

// ReadFile reads a regular file of at most 1 MiB.
func ReadFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("read %s: %d bytes is over the %d byte limit", path, st.Size(), maxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	// Files in /proc report size 0 whatever they hold: bound the read too.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read %s: over the %d byte limit", path, maxFileSize)
	}
	return data, nil
}

// Region returns the named region.
func (t *Topology) Region(name string) (Region, bool) {
	for _, r := range t.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// Link returns the link between a and b in either order, oriented so that
// the result's A is a.
func (t *Topology) Link(a, b string) (Link, bool) {
	for _, l := range t.Links {
		switch {
		case l.A == a && l.B == b:
			return l, true
		case l.A == b && l.B == a:
			l.A, l.B = l.B, l.A
			return l, true
		}
	}
	return Link{}, false
}

// RTT is the round-trip time between two regions: 0 within a region (the
// LAN is not emulated) and 0 for regions without a link.
func (t *Topology) RTT(a, b string) time.Duration {
	if a == b {
		return 0
	}
	l, _ := t.Link(a, b)
	return l.RTT
}

// NearestHealthy returns the healthy region closest to from by RTT (from
// itself if healthy), breaking ties by name so that failover is
// deterministic. It returns false if from is unknown or no region is healthy.
func (t *Topology) NearestHealthy(from string, healthy func(region string) bool) (string, bool) {
	if _, ok := t.Region(from); !ok {
		return "", false
	}
	best, found := "", false
	for _, r := range t.Regions {
		if !healthy(r.Name) {
			continue
		}
		if !found {
			best, found = r.Name, true
			continue
		}
		d, bd := t.RTT(from, r.Name), t.RTT(from, best)
		if d < bd || (d == bd && r.Name < best) {
			best = r.Name
		}
	}
	return best, found
}

// ByDistance lists the regions from from outwards: from itself first (when
// it is a region), then the others by RTT, ties broken by name, the same
// order NearestHealthy prefers.
func (t *Topology) ByDistance(from string) []string {
	var out []string
	for _, r := range t.Regions {
		out = append(out, r.Name)
	}
	rank := func(r string) (int, time.Duration) {
		if r == from {
			return 0, 0
		}
		return 1, t.RTT(from, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, di := rank(out[i])
		rj, dj := rank(out[j])
		if ri != rj {
			return ri < rj
		}
		if di != dj {
			return di < dj
		}
		return out[i] < out[j]
	})
	return out
}

// NetworkName is the Docker network of a region in one run.
func NetworkName(runID, region string) string {
	return "fl-" + runID + "-" + region
}

// Plan names every node and gives it an address: regions in file order,
// groups in file order, addresses from .10 up.
func (t *Topology) Plan(runID string) []NodePlan {
	var out []NodePlan
	for _, r := range t.Regions {
		next := firstNodeOffset
		for _, g := range r.Nodes {
			for i := 1; i <= g.Count; i++ {
				out = append(out, NodePlan{
					Name:        NodeName(g.Role, r.Name, i),
					Role:        g.Role,
					Region:      r.Name,
					Index:       i,
					IP:          offset(r.Subnet, next),
					Network:     NetworkName(runID, r.Name),
					Cores:       g.Cores,
					ServiceTime: g.ServiceTime,
				})
				next++
			}
		}
	}
	return out
}

// NodeName is the name of the index-th node (1-based) of a role in a region.
func NodeName(role, region string, index int) string {
	return fmt.Sprintf("%s-%s-%d", role, region, index)
}

// RegionOf returns the region whose subnet holds addr.
func (t *Topology) RegionOf(addr netip.Addr) (string, bool) {
	for _, r := range t.Regions {
		if r.Subnet.Contains(addr) {
			return r.Name, true
		}
	}
	return "", false
}

// Gateway is the address Docker gives the region network's bridge.
func (r Region) Gateway() netip.Addr { return offset(r.Subnet, gatewayOffset) }

// RouterIP is the address reserved for the WAN router on this region's
// network (.254 in a /24): the next hop to every other region.
func (r Region) RouterIP() netip.Addr { return offset(r.Subnet, size(r.Subnet)-2) }

// Capacity is how many nodes fit between the first node address and the
// router address.
func (r Region) Capacity() int { return size(r.Subnet) - 2 - firstNodeOffset }

// NodeCount is the number of nodes the region asks for.
func (r Region) NodeCount() int {
	n := 0
	for _, g := range r.Nodes {
		n += g.Count
	}
	return n
}

// size is the number of addresses in an IPv4 prefix; validation keeps
// prefixes between /16 and /27, so this fits an int.
func size(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

func offset(p netip.Prefix, off int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) + uint32(off)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
