// Package deploy turns a topology into what a runtime starts: one network per
// region and one container per node, with each role's flags wired to its
// peers (an lb to its region's web nodes, a loadgen to its region's lb). The
// engine starts these specs; `faultline compose` prints them as a compose
// file, so the two can never drift apart.
package deploy

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

// Port is where every node serves HTTP: its role's API, /healthz and /metrics.
const Port = 8080

// Roles lists the roles that can be deployed today, in start order. A
// topology naming another role is rejected before anything starts.
func Roles() []string {
	out := make([]string, 0, len(roles))
	for name := range roles {
		out = append(out, name)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := roles[out[i]], roles[out[j]]
		if a.order != b.order {
			return a.order < b.order
		}
		return out[i] < out[j]
	})
	return out
}

// Deployment is everything a run starts, in start order.
type Deployment struct {
	RunID      string
	Networks   []runtime.NetworkSpec
	Containers []runtime.ContainerSpec
	Nodes      []topology.NodePlan
}

// ContainerName is the engine-wide unique name of a node's container: node
// names repeat across runs, container names may not.
func ContainerName(runID, node string) string { return "fl-" + runID + "-" + node }

// Plan builds the deployment of top for one run.
func Plan(top *topology.Topology, runID string, extraLabels runtime.Labels) (*Deployment, error) {
	if err := Supported(top); err != nil {
		return nil, err
	}
	d := &Deployment{RunID: runID, Nodes: top.Plan(runID)}
	labels := func(extra map[string]string) runtime.Labels {
		l := runtime.Labels{runtime.LabelRun: runID}
		for k, v := range extraLabels {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	for _, r := range top.Regions {
		d.Networks = append(d.Networks, runtime.NetworkSpec{
			Name:   topology.NetworkName(runID, r.Name),
			Subnet: r.Subnet.String(),
			Labels: labels(map[string]string{runtime.LabelRegion: r.Name}),
		})
	}
	byRegionRole := map[string][]topology.NodePlan{}
	for _, n := range d.Nodes {
		byRegionRole[n.Region+"/"+n.Role] = append(byRegionRole[n.Region+"/"+n.Role], n)
	}
	for _, n := range d.Nodes {
		role := roles[n.Role]
		args, err := role.args(n, peerSet{top: top, byRegionRole: byRegionRole, nodes: d.Nodes})
		if err != nil {
			return nil, err
		}
		spec := runtime.ContainerSpec{
			Name:  ContainerName(runID, n.Name),
			Image: top.Image,
			Cmd:   append([]string{n.Role}, args...),
			Env: map[string]string{
				"FAULTLINE_NODE":   n.Name,
				"FAULTLINE_REGION": n.Region,
				"FAULTLINE_ROLE":   n.Role,
			},
			Labels: labels(map[string]string{
				runtime.LabelRegion: n.Region,
				runtime.LabelRole:   n.Role,
				runtime.LabelNode:   n.Name,
			}),
			Networks: []runtime.Attachment{{Network: n.Network, IP: n.IP.String()}},
			Health: &runtime.HealthCheck{
				Cmd: []string{"/node", "health"},
				// Each check is a docker exec, which costs CPU the system
				// under test needs; start-up waits probe HTTP directly.
				Interval: 5 * time.Second,
				Timeout:  3 * time.Second,
				Retries:  3,
				HTTPPort: Port,
				HTTPPath: "/healthz",
			},
		}
		if role.publish {
			spec.Ports = []int{Port}
		}
		d.Containers = append(d.Containers, spec)
	}
	if len(top.Regions) >= 2 {
		d.Containers = append(d.Containers, wanSpec(top, runID, labels))
	}
	// The router before anything that talks across regions, then each role
	// after the roles it depends on (see role.order).
	orderOf := func(c runtime.ContainerSpec) int {
		if c.Labels[runtime.LabelRole] == WANNode {
			return -1
		}
		return roles[c.Labels[runtime.LabelRole]].order
	}
	sort.SliceStable(d.Containers, func(i, j int) bool { return orderOf(d.Containers[i]) < orderOf(d.Containers[j]) })
	return d, nil
}

// Supported reports the first role in top that cannot be deployed yet.
func Supported(top *topology.Topology) error {
	for _, r := range top.Regions {
		for _, g := range r.Nodes {
			if _, ok := roles[g.Role]; g.Count > 0 && !ok {
				return fmt.Errorf("%s: region %s: role %q cannot be deployed yet (deployable: %s)",
					top.File, r.Name, g.Role, strings.Join(Roles(), ", "))
			}
		}
	}
	return nil
}

func hostPort(ip netip.Addr) string { return netip.AddrPortFrom(ip, Port).String() }

// EntryURL is the base URL of a region's public entry: its first lb; in a
// region without one, its first edge (a CDN in front of the origin); in a
// region with neither, the origin region's lb across the WAN (far clients).
func (d *Deployment) EntryURL(region string) (string, bool) {
	for _, role := range []string{"lb", "edge"} {
		if ns := d.NodesOf(role, region); len(ns) > 0 {
			return "http://" + hostPort(ns[0].IP), true
		}
	}
	if len(d.NodesOf("", region)) == 0 {
		return "", false
	}
	for _, r := range d.Regions() {
		if ns := d.NodesOf("lb", r); len(ns) > 0 {
			return "http://" + hostPort(ns[0].IP), true
		}
	}
	return "", false
}

// NodesOf lists the nodes of a role in a region ("" matches any).
func (d *Deployment) NodesOf(role, region string) []topology.NodePlan {
	var out []topology.NodePlan
	for _, n := range d.Nodes {
		if (role == "" || n.Role == role) && (region == "" || n.Region == region) {
			out = append(out, n)
		}
	}
	return out
}

// Regions lists the deployment's regions in topology order.
func (d *Deployment) Regions() []string {
	var out []string
	for _, n := range d.Networks {
		out = append(out, n.Labels[runtime.LabelRegion])
	}
	return out
}

// PortOf parses a runtime's published "127.0.0.1:N" address for a container port.
func PortOf(info runtime.ContainerInfo, port int) (string, error) {
	addr, ok := info.Ports[port]
	if !ok || addr == "" {
		return "", fmt.Errorf("%s: port %d is not published", info.Name, port)
	}
	if _, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:]); err != nil {
		return "", fmt.Errorf("%s: bad published address %q", info.Name, addr)
	}
	return addr, nil
}
