// Package netsetup is the controller's side of a run's emulated network. It
// finds a run's regions, nodes and wan router from their labels, gives every
// node routes to the other regions through its own region's router (from the
// host, in the node's network namespace, so it works for any image), and
// offers what network faults and probes need: the nodes' namespaces, the
// wan's control API, and a list of anything faultline left behind.
package netsetup

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"syscall"

	"github.com/moby/moby/client"

	"github.com/faultline/faultline/chaos/netem"
	"github.com/faultline/faultline/runtime"
)

// WANRole is the role label of a run's inter-region router.
const WANRole = "wan"

// wanPort is where the wan role serves its control API.
const wanPort = 8080

// Region is one region network as the run made it.
type Region struct {
	Name   string
	Subnet netip.Prefix
	// Router is the wan's address on this network: the next hop from the
	// region to every other region.
	Router netip.Addr
}

// Node is one container of the run.
type Node struct {
	Name, Role, Region string
	Container          string
	IP                 netip.Addr
}

// Net is one run's network. Pids are looked up on every use: a restarted
// container has a new process and a new namespace.
type Net struct {
	rt      runtime.Runtime
	runID   string
	regions []Region
	nodes   map[string]Node
	wan     *WAN
}

// ErrNoNamespaces is returned for a runtime whose containers are not
// processes of this host (the in-memory runtime: its pids are made up and
// entering them would reach unrelated processes).
var ErrNoNamespaces = errors.New("the runtime's containers have no network namespaces on this host")

// HasNamespaces reports whether rt's containers are processes of this host
// whose namespaces the controller can enter: true for a Docker engine.
func HasNamespaces(rt runtime.Runtime) bool {
	_, ok := rt.(interface{ Client() *client.Client })
	return ok
}

// Discover finds the network of run runID from its labels.
func Discover(ctx context.Context, rt runtime.Runtime, runID string) (*Net, error) {
	if !HasNamespaces(rt) {
		return nil, ErrNoNamespaces
	}
	sel := runtime.Labels{runtime.LabelRun: runID}
	nets, err := rt.ListNetworks(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list networks of run %s: %w", runID, err)
	}
	n := &Net{rt: rt, runID: runID, nodes: map[string]Node{}}
	netRegion := map[string]string{}
	for _, nw := range nets {
		p, err := netip.ParsePrefix(nw.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("network %s: bad subnet %q", nw.Name, nw.Subnet)
		}
		name := nw.Labels[runtime.LabelRegion]
		netRegion[nw.Name] = name
		n.regions = append(n.regions, Region{Name: name, Subnet: p.Masked(), Router: RouterIP(p)})
	}
	sort.Slice(n.regions, func(i, j int) bool { return n.regions[i].Name < n.regions[j].Name })
	cs, err := rt.List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list containers of run %s: %w", runID, err)
	}
	for _, c := range cs {
		node := Node{Name: c.Labels[runtime.LabelNode], Role: c.Labels[runtime.LabelRole], Region: c.Labels[runtime.LabelRegion], Container: c.Name}
		if node.Name == "" {
			continue
		}
		for netName, ip := range c.IPs {
			if netRegion[netName] == node.Region && node.Region != "" {
				node.IP, _ = netip.ParseAddr(ip)
			}
		}
		n.nodes[node.Name] = node
		if node.Role == WANRole {
			addr, ok := c.Ports[wanPort]
			if !ok {
				return nil, fmt.Errorf("wan %s: control port %d is not published", c.Name, wanPort)
			}
			n.wan = newWAN(addr)
		}
	}
	return n, nil
}

// Setup installs the inter-region routes in every node of run runID. A
// runtime without namespaces, or a run without a wan, needs none.
func Setup(ctx context.Context, rt runtime.Runtime, runID string) error {
	if !HasNamespaces(rt) {
		return nil
	}
	n, err := Discover(ctx, rt, runID)
	if err != nil {
		return err
	}
	return n.InstallAll(ctx)
}

// RouterIP is the address reserved for the wan on a region network: the
// last usable one (.254 in a /24), as topology.Region.RouterIP.
func RouterIP(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(1)<<(32-p.Bits()) - 2
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// RunID is the run this network belongs to.
func (n *Net) RunID() string { return n.runID }

// Regions lists the run's regions, sorted by name.
func (n *Net) Regions() []Region { return n.regions }

// Region returns a region by name.
func (n *Net) Region(name string) (Region, bool) {
	for _, r := range n.regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// Node returns a node by name.
func (n *Net) Node(name string) (Node, bool) {
	node, ok := n.nodes[name]
	return node, ok
}

// Nodes lists every node but the wan, sorted by name.
func (n *Net) Nodes() []Node {
	var out []Node
	for _, node := range n.nodes {
		if node.Role != WANRole {
			out = append(out, node)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WAN is the run's router, or nil in a single-region run.
func (n *Net) WAN() *WAN { return n.wan }

// Routes are the routes a node of region needs: every other region via its
// own region's router.
func (n *Net) Routes(region string) []netem.Route {
	own, ok := n.Region(region)
	if !ok || len(n.regions) < 2 {
		return nil
	}
	var out []netem.Route
	for _, r := range n.regions {
		if r.Name != region {
			out = append(out, netem.Route{Dst: r.Subnet, Via: own.Router})
		}
	}
	return out
}

// InstallAll installs the routes in every running node.
func (n *Net) InstallAll(ctx context.Context) error {
	var errs []error
	for _, node := range n.Nodes() {
		errs = append(errs, n.Install(ctx, node.Name))
	}
	return errors.Join(errs...)
}

// Install installs one node's routes; call it again after the node's
// container restarts, as its namespace is new.
func (n *Net) Install(ctx context.Context, node string) error {
	routes := n.Routes(n.nodes[node].Region)
	if len(routes) == 0 {
		return nil
	}
	pid, err := n.Pid(ctx, node)
	if err != nil {
		return err
	}
	if err := netem.InstallRoutes(ctx, pid, routes); err != nil {
		return fmt.Errorf("routes of %s: %w", node, err)
	}
	return nil
}

// Pid is the host pid of a running node of this run, checked to live in a
// network namespace of its own.
func (n *Net) Pid(ctx context.Context, node string) (int, error) {
	nd, ok := n.nodes[node]
	if !ok {
		return 0, fmt.Errorf("no node %q in run %s", node, n.runID)
	}
	info, err := n.rt.Inspect(ctx, nd.Container)
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w", node, err)
	}
	if info.Labels[runtime.LabelRun] != n.runID {
		return 0, fmt.Errorf("refusing to touch %s: it is not part of run %s", node, n.runID)
	}
	if info.Pid <= 0 || (info.State != runtime.StateRunning && info.State != runtime.StatePaused) {
		return 0, fmt.Errorf("%s is %s, not running", node, info.State)
	}
	if shared, err := sharesHostNetns(info.Pid); err != nil || shared {
		return 0, fmt.Errorf("%s (pid %d) has no network namespace of its own (err: %v)", node, info.Pid, err)
	}
	return info.Pid, nil
}

// sharesHostNetns guards against ever changing the controller's own
// network: a container on the host network shares it.
func sharesHostNetns(pid int) (bool, error) {
	var self, other syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		return false, err
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &other); err != nil {
		return false, err
	}
	return self.Ino == other.Ino && self.Dev == other.Dev, nil
}
