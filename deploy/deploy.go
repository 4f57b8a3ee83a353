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

// Roles lists the roles that can be deployed today. A topology naming another
// role is rejected before anything starts.
var Roles = []string{"lb", "loadgen", "web"}

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
		args, err := roleArgs(n, byRegionRole)
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
		// The controller drives loadgens from the host, through a port
		// published on 127.0.0.1 only.
		if n.Role == "loadgen" {
			spec.Ports = []int{Port}
		}
		d.Containers = append(d.Containers, spec)
	}
	if len(top.Regions) >= 2 {
		d.Containers = append(d.Containers, wanSpec(top, runID, labels))
	}
	// The router before anything that talks across regions, backends before
	// their balancer, balancers before the load that hits them.
	order := map[string]int{"wan": -1, "web": 0, "lb": 1, "loadgen": 2}
	sort.SliceStable(d.Containers, func(i, j int) bool {
		return order[d.Containers[i].Labels[runtime.LabelRole]] < order[d.Containers[j].Labels[runtime.LabelRole]]
	})
	return d, nil
}

// Supported reports the first role in top that cannot be deployed yet.
func Supported(top *topology.Topology) error {
	for _, r := range top.Regions {
		for _, g := range r.Nodes {
			if g.Count > 0 && !contains(Roles, g.Role) {
				return fmt.Errorf("%s: region %s: role %q cannot be deployed yet (deployable: %s)",
					top.File, r.Name, g.Role, strings.Join(Roles, ", "))
			}
		}
	}
	return nil
}

func roleArgs(n topology.NodePlan, peers map[string][]topology.NodePlan) ([]string, error) {
	switch n.Role {
	case "loadgen":
		return nil, nil
	case "web":
		// The capacity model, when the topology sets one (see topology.NodeGroup).
		if n.Cores == 0 {
			return nil, nil
		}
		args := []string{"--cores", strconv.Itoa(n.Cores)}
		if n.ServiceTime > 0 {
			args = append(args, "--service-time", n.ServiceTime.String())
		}
		return args, nil
	case "lb":
		webs := peers[n.Region+"/web"]
		if len(webs) == 0 {
			return nil, fmt.Errorf("lb %s: region %s has no web nodes to balance", n.Name, n.Region)
		}
		addrs := make([]string, len(webs))
		for i, w := range webs {
			addrs[i] = hostPort(w.IP)
		}
		return []string{"--backends", strings.Join(addrs, ",")}, nil
	default:
		return nil, fmt.Errorf("node %s: role %q cannot be deployed yet", n.Name, n.Role)
	}
}

func hostPort(ip netip.Addr) string { return netip.AddrPortFrom(ip, Port).String() }

// EntryURL is the base URL of a region's public entry (its first lb).
func (d *Deployment) EntryURL(region string) (string, bool) {
	for _, n := range d.Nodes {
		if n.Region == region && n.Role == "lb" {
			return "http://" + hostPort(n.IP), true
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
