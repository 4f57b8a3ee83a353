package geodns

import (
	"net/netip"
	"sort"
)

// subnetTable maps a client address to its region by longest-prefix match.
// A handful of regions makes a linear scan over prefixes sorted longest first
// both the simplest and the fastest choice (no allocation, no tree).
type subnetTable struct {
	prefixes []netip.Prefix
	region   []int // index into Config.Regions, parallel to prefixes
}

func newSubnetTable(regions []Region) subnetTable {
	order := make([]int, len(regions))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return regions[order[a]].Subnet.Bits() > regions[order[b]].Subnet.Bits()
	})
	t := subnetTable{prefixes: make([]netip.Prefix, len(order)), region: order}
	for i, r := range order {
		t.prefixes[i] = regions[r].Subnet
	}
	return t
}

// lookup returns the region index and the matched prefix length.
func (t subnetTable) lookup(addr netip.Addr) (region, bits int, ok bool) {
	addr = addr.Unmap()
	for i, p := range t.prefixes {
		if p.Contains(addr) {
			return t.region[i], p.Bits(), true
		}
	}
	return 0, 0, false
}

// routes computes, for every client region, the region whose LB it is
// served: itself while healthy, else the healthy region with the lowest RTT
// from it (ties broken by name), else itself again because a possibly-down
// answer beats no answer.
func routes(cfg Config, healthy []bool) []int {
	served := make([]int, len(cfg.Regions))
	for c, client := range cfg.Regions {
		served[c] = c
		if healthy[c] {
			continue
		}
		best, bestRTT := -1, 0.0
		for s, cand := range cfg.Regions {
			if !healthy[s] {
				continue
			}
			rtt, _ := cfg.rtt(client.Name, cand.Name)
			if best < 0 || rtt < bestRTT || (rtt == bestRTT && cand.Name < cfg.Regions[best].Name) {
				best, bestRTT = s, rtt
			}
		}
		if best >= 0 {
			served[c] = best
		}
	}
	return served
}
