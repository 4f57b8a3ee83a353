package deploy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/faultline/faultline/topology"
)

// role is how one node role is deployed: the flags that wire a node to its
// peers, where it starts relative to other roles, and whether the controller
// reaches it through a published port. Each capability registers its roles
// in its own file (roles.go for the web tier, geodns.go, db.go, ...).
type role struct {
	// order: lower starts first, so a node's dependencies are up when it
	// starts (backends before their balancer, balancers before the load).
	order int
	// publish: the controller talks to these nodes from the host, through
	// Port published on 127.0.0.1 only.
	publish bool
	args    func(n topology.NodePlan, peers peerSet) ([]string, error)
}

var roles = map[string]role{}

func register(name string, r role) {
	if _, dup := roles[name]; dup {
		panic("deploy: role registered twice: " + name)
	}
	roles[name] = r
}

// peerSet is what a role's args may look at: the topology and every planned
// node.
type peerSet struct {
	top          *topology.Topology
	byRegionRole map[string][]topology.NodePlan
	nodes        []topology.NodePlan
}

// in lists the nodes of role in region, in plan order.
func (p peerSet) in(region, role string) []topology.NodePlan { return p.byRegionRole[region+"/"+role] }

// all lists the nodes of role in every region, in plan order.
func (p peerSet) all(role string) []topology.NodePlan {
	var out []topology.NodePlan
	for _, n := range p.nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

func init() {
	register("web", role{order: 10, args: webArgs})
	register("lb", role{order: 20, args: lbArgs})
	register("loadgen", role{order: 90, publish: true, args: func(topology.NodePlan, peerSet) ([]string, error) { return nil, nil }})
}

// webArgs passes the capacity model, when the topology sets one (see
// topology.NodeGroup), and the region's cache nodes, over which the web's
// client hashes keys.
func webArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	var args []string
	if n.Cores > 0 {
		args = append(args, "--cores", strconv.Itoa(n.Cores))
		if n.ServiceTime > 0 {
			args = append(args, "--service-time", n.ServiceTime.String())
		}
	}
	if caches := p.in(n.Region, "cache"); len(caches) > 0 {
		addrs := make([]string, len(caches))
		for i, c := range caches {
			addrs[i] = cacheAddr(c.IP)
		}
		args = append(args, "--cache", strings.Join(addrs, ","))
	}
	// Stateless where the region has a db: sessions live there, so any web
	// node serves any user. Elsewhere they stay in each node's memory.
	if dbs := p.in(n.Region, "db"); len(dbs) > 0 {
		args = append(args, "--sessions-db", "http://"+hostPort(dbs[0].IP))
	}
	return args, nil
}

// AffinityCookie is the cookie an lb pins clients to a backend with, in
// regions whose web nodes keep sessions in memory.
const AffinityCookie = "faultline_lb"

// lbArgs points a balancer at its region's web nodes.
func lbArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	webs := p.in(n.Region, "web")
	if len(webs) == 0 {
		return nil, fmt.Errorf("lb %s: region %s has no web nodes to balance", n.Name, n.Region)
	}
	addrs := make([]string, len(webs))
	for i, w := range webs {
		addrs[i] = hostPort(w.IP)
	}
	args := []string{"--backends", strings.Join(addrs, ",")}
	if len(p.in(n.Region, "db")) == 0 {
		// Stateful web nodes: a session only works on the node that made it.
		args = append(args, "--affinity-cookie", AffinityCookie)
	}
	return args, nil
}
