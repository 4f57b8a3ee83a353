package edge

import (
	"container/list"
	"net/http"
	"sync"
	"time"
)

// entryOverhead approximates an entry's bookkeeping (struct, map slot, list
// element) so that many tiny objects still reach the memory bound.
const entryOverhead = 256

// entry is one cached response. It is never changed after it is stored, so
// readers may use it without the store's lock.
type entry struct {
	key      string
	header   http.Header
	body     []byte
	received time.Time     // when the origin's answer arrived
	initAge  time.Duration // Age it already had then
	life     time.Duration // freshness lifetime
	size     int64
}

func newEntry(key string, h http.Header, body []byte, received time.Time, initAge, life time.Duration) *entry {
	e := &entry{key: key, header: h, body: body, received: received, initAge: initAge, life: life}
	e.size = int64(len(key)+len(body)) + entryOverhead
	for k, vs := range h {
		for _, v := range vs {
			e.size += int64(len(k) + len(v))
		}
	}
	return e
}

func (e *entry) age(now time.Time) time.Duration { return e.initAge + max(0, now.Sub(e.received)) }

// staleFor is how long past its lifetime the entry is; negative while fresh.
func (e *entry) staleFor(now time.Time) time.Duration { return e.age(now) - e.life }

// store holds entries under a byte bound, evicting the least recently used.
type store struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	items   map[string]*list.Element
	lru     *list.List // front: most recently used; values are *entry
	evicted func()     // called for every eviction, for the metric
}

func newStore(limit int64, evicted func()) *store {
	return &store{limit: limit, items: map[string]*list.Element{}, lru: list.New(), evicted: evicted}
}

// get returns the entry for key, fresh or not, and marks it used.
func (s *store) get(key string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil
	}
	s.lru.MoveToFront(el)
	return el.Value.(*entry)
}

// put stores e, replacing an entry of the same key and evicting the least
// recently used ones until it fits. An entry larger than the bound is not
// stored.
func (s *store) put(e *entry) bool {
	if e.size > s.limit {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[e.key]; ok {
		s.removeLocked(el)
	}
	for s.used+e.size > s.limit {
		s.removeLocked(s.lru.Back())
		s.evicted()
	}
	s.items[e.key] = s.lru.PushFront(e)
	s.used += e.size
	return true
}

func (s *store) removeLocked(el *list.Element) {
	e := s.lru.Remove(el).(*entry)
	delete(s.items, e.key)
	s.used -= e.size
}

// stats reports the bytes and objects held.
func (s *store) stats() (bytes int64, objects int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used, len(s.items)
}
