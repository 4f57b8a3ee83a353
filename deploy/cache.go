package deploy

import (
	"net/netip"
	"strconv"

	"github.com/faultline/faultline/topology"
)

// CachePort is where cache nodes speak the memcached text protocol; their
// /healthz and /metrics are on Port like every node.
const CachePort = 11211

func init() {
	// Before the web nodes, which connect to their region's cache nodes.
	register("cache", role{order: 8, args: func(topology.NodePlan, peerSet) ([]string, error) {
		return []string{"--cache-listen", ":" + strconv.Itoa(CachePort)}, nil
	}})
}

func cacheAddr(ip netip.Addr) string { return netip.AddrPortFrom(ip, CachePort).String() }
