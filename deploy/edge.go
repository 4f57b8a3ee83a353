package deploy

import (
	"fmt"

	"github.com/faultline/faultline/topology"
)

func init() {
	// After the balancers: an edge's origin is the origin region's lb.
	register("edge", role{order: 30, args: edgeArgs})
}

// OriginRegion is where static content comes from: the first region, in
// topology order, with an lb. Edges elsewhere cache it for far clients.
func OriginRegion(top *topology.Topology, lbs func(region string) []topology.NodePlan) (string, bool) {
	for _, r := range top.Regions {
		if len(lbs(r.Name)) > 0 {
			return r.Name, true
		}
	}
	return "", false
}

// edgeArgs points an edge at the origin region's lb.
func edgeArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	origin, ok := OriginRegion(p.top, func(r string) []topology.NodePlan { return p.in(r, "lb") })
	if !ok {
		return nil, fmt.Errorf("edge %s: no region has an lb to be its origin", n.Name)
	}
	return []string{"--origin", "http://" + hostPort(p.in(origin, "lb")[0].IP)}, nil
}
