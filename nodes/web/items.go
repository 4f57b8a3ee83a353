package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/cache/ring"
)

// ItemPath is the prefix of the item API: GET /api/item/{id} reads an item
// cache-aside, PUT /api/item/{id} writes it and invalidates the cached copy.
const ItemPath = "/api/item/"

// maxItemBody bounds a PUT /api/item body.
const maxItemBody = 64 << 10

// Item is the body of GET /api/item/{id}.
type Item struct {
	ID     string `json:"id"`
	Value  string `json:"value"`
	Node   string `json:"node"`
	Source string `json:"source"` // "cache" or "store": where this read found it
}

// ItemStore is where items live: the slow, authoritative layer the cache
// sits in front of.
type ItemStore interface {
	Get(ctx context.Context, id string) (string, error)
	Put(ctx context.Context, id, value string) error
}

// SimStore stands in for a database read when the web tier has none: every
// call takes latency (a typical indexed query over a network), and an item
// never written has a value derived from its id. Writes stay on the node.
type SimStore struct {
	latency time.Duration
	mu      sync.Mutex
	items   map[string]string
}

// MaxSimItems bounds SimStore's writes so clients cannot exhaust memory.
const MaxSimItems = 100_000

// NewSimStore returns a store whose every call takes latency.
func NewSimStore(latency time.Duration) *SimStore {
	return &SimStore{latency: latency, items: map[string]string{}}
}

func (s *SimStore) wait(ctx context.Context) error {
	if s.latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *SimStore) Get(ctx context.Context, id string) (string, error) {
	if err := s.wait(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.items[id]; ok {
		return v, nil
	}
	return "item " + id, nil
}

func (s *SimStore) Put(ctx context.Context, id, value string) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[id]; !ok && len(s.items) >= MaxSimItems {
		return fmt.Errorf("put %s: %d items stored", id, len(s.items))
	}
	s.items[id] = value
	return nil
}

// RingSelector picks a region's cache node for a key by consistent hashing
// (nodes/cache/ring), so adding or losing a cache node moves only its share
// of the keys. It implements memcache.ServerSelector.
type RingSelector struct {
	ring  *ring.Ring
	addrs map[string]net.Addr
}

// NewRingSelector hashes over the cache nodes at addrs (host:port).
func NewRingSelector(addrs []string) (*RingSelector, error) {
	s := &RingSelector{ring: ring.New(addrs), addrs: map[string]net.Addr{}}
	for _, a := range addrs {
		ta, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("cache node %q: %w", a, err)
		}
		s.addrs[a] = ta
	}
	return s, nil
}

func (s *RingSelector) PickServer(key string) (net.Addr, error) {
	node, ok := s.ring.Get(key)
	if !ok {
		return nil, memcache.ErrNoServers
	}
	return s.addrs[node], nil
}

func (s *RingSelector) Each(f func(net.Addr) error) error {
	for _, n := range s.ring.Nodes() {
		if err := f(s.addrs[n]); err != nil {
			return err
		}
	}
	return nil
}

// items serves the item API: cache-aside reads (cache, then on a miss the
// store and a fill), writes to the store that delete the cached copy.
type items struct {
	node  string
	store ItemStore
	mc    *memcache.Client // nil: no cache in this region
	ttl   int32            // seconds a filled copy lives
	res   *prometheus.CounterVec
}

// WithItems serves /api/item from store, through a cache client when mc is
// not nil (see NewRingSelector), filling it with ttl.
func WithItems(store ItemStore, mc *memcache.Client, ttl time.Duration) Option {
	return func(o *options) { o.items = &items{store: store, mc: mc, ttl: int32(max(1, ttl/time.Second))} }
}

func (it *items) register(node string, reg prometheus.Registerer) {
	it.node = node
	it.res = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "web", Name: "item_reads_total",
		Help: "Item reads by where they were answered from (hit, miss, store: no cache, error: cache failed, the store answered), and writes whose invalidation failed (invalidate-error)."},
		[]string{"result"})
	reg.MustRegister(it.res)
}

// itemOptions builds the item API from the web role's flags.
func itemOptions(caches string, storeLatency, ttl time.Duration) (Option, *memcache.Client, error) {
	if storeLatency < 0 || ttl < time.Second {
		return nil, nil, fmt.Errorf("%w: web: --store-latency %v must not be negative, --cache-ttl %v at least 1s", nodes.ErrUsage, storeLatency, ttl)
	}
	var mc *memcache.Client
	if addrs := splitList(caches); len(addrs) > 0 {
		sel, err := NewRingSelector(addrs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: web: --cache: %v", nodes.ErrUsage, err)
		}
		mc = memcache.NewFromSelector(sel)
		// Short: a cache slower than this is worth less than the store.
		mc.Timeout = 100 * time.Millisecond
		mc.MaxIdleConns = 64
	}
	return WithItems(NewSimStore(storeLatency), mc, ttl), mc, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func cacheKey(id string) string { return "item:" + id }

func (it *items) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if v, ok := cachedRead(it.mc, cacheKey(id), it.res); ok {
		writeJSON(w, Item{ID: id, Value: string(v), Node: it.node, Source: "cache"})
		return
	}
	v, err := it.store.Get(r.Context(), id)
	if err != nil {
		http.Error(w, fmt.Sprintf("item %s: %v", id, err), http.StatusServiceUnavailable)
		return
	}
	if it.mc != nil {
		_ = it.mc.Set(&memcache.Item{Key: cacheKey(id), Value: []byte(v), Expiration: it.ttl}) // a failed fill only costs the next read
	}
	writeJSON(w, Item{ID: id, Value: v, Node: it.node, Source: "store"})
}

func (it *items) put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxItemBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if err := it.store.Put(r.Context(), id, string(body)); err != nil {
		http.Error(w, fmt.Sprintf("item %s: %v", id, err), http.StatusServiceUnavailable)
		return
	}
	if it.mc != nil {
		// Invalidate, not update: a concurrent reader's fill of the old
		// value can then live at most one TTL, never past the next write.
		// The store has the write, so it succeeded; a cache node that
		// missed the delete (down, or slow) can serve the old copy for at
		// most one TTL, and this counter shows that it happened.
		if err := it.mc.Delete(cacheKey(id)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			it.res.WithLabelValues("invalidate-error").Inc()
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
