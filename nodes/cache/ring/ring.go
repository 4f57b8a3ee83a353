// Package ring maps keys onto a region's cache nodes by consistent hashing,
// so that adding or removing one of n nodes moves only about 1/n of the keys.
package ring

import (
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// DefaultVirtualNodes spreads each node over enough points that, with a
// handful of nodes, each owns within a few tens of percent of its fair share.
const DefaultVirtualNodes = 160

type point struct {
	hash uint64
	node string
}

// Ring is a consistent-hash ring of node names (addresses, typically).
// It is safe for concurrent use.
type Ring struct {
	vnodes int
	mu     sync.RWMutex
	nodes  map[string]struct{}
	points []point // sorted by hash, then node
}

// Option configures a Ring.
type Option func(*Ring)

// WithVirtualNodes sets how many points each node has on the ring.
func WithVirtualNodes(n int) Option { return func(r *Ring) { r.vnodes = max(1, n) } }

// New builds a ring over nodes.
func New(nodes []string, opts ...Option) *Ring {
	r := &Ring{vnodes: DefaultVirtualNodes, nodes: make(map[string]struct{}, len(nodes))}
	for _, o := range opts {
		o(r)
	}
	for _, n := range nodes {
		r.nodes[n] = struct{}{}
	}
	r.rebuild()
	return r
}

// Add puts node on the ring; adding a present node changes nothing.
func (r *Ring) Add(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.nodes[node]; ok {
		return
	}
	r.nodes[node] = struct{}{}
	r.rebuild()
}

// Remove takes node off the ring; its keys go to their next nodes clockwise.
func (r *Ring) Remove(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.nodes[node]; !ok {
		return
	}
	delete(r.nodes, node)
	r.rebuild()
}

// Nodes lists the nodes on the ring, sorted.
func (r *Ring) Nodes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Get returns the node that owns key, or false when the ring is empty.
func (r *Ring) Get(key string) (string, bool) {
	h := xxhash.Sum64String(key)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.points) == 0 {
		return "", false
	}
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	if i == len(r.points) {
		i = 0
	}
	return r.points[i].node, true
}

// rebuild recomputes the points; the caller holds mu (or owns r).
func (r *Ring) rebuild() {
	pts := make([]point, 0, len(r.nodes)*r.vnodes)
	buf := make([]byte, 0, 64)
	for n := range r.nodes {
		for v := range r.vnodes {
			buf = strconv.AppendInt(append(append(buf[:0], n...), '#'), int64(v), 10)
			pts = append(pts, point{hash: xxhash.Sum64(buf), node: n})
		}
	}
	// Ties on hash are broken by name so every client builds the same ring.
	slices.SortFunc(pts, func(a, b point) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		switch {
		case a.node < b.node:
			return -1
		case a.node > b.node:
			return 1
		}
		return 0
	})
	r.points = pts
}
