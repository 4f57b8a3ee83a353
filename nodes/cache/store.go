// Package cache is faultline's memcached-compatible cache role: a sharded,
// memory-bounded LRU store served over memcached's text protocol.
package cache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// entryOverhead approximates the per-item bookkeeping (entry struct, map slot,
// list links) so that many tiny items still hit the memory bound.
const entryOverhead = 96

// maxRelativeExptime is memcached's REALTIME_MAXDELTA: larger exptimes are
// absolute unix timestamps, smaller ones are seconds from now.
const maxRelativeExptime = 60 * 60 * 24 * 30

type config struct {
	memory  int64
	maxItem int
	shards  int
	now     func() time.Time
}

// Option configures a Store.
type Option func(*config)

// WithMemory bounds the bytes held by items (keys, values and overhead).
func WithMemory(bytes int64) Option { return func(c *config) { c.memory = bytes } }

// WithMaxItemSize bounds a single value's size.
func WithMaxItemSize(bytes int) Option { return func(c *config) { c.maxItem = bytes } }

// WithShards sets the number of independently locked shards. The memory
// bound is split evenly, so LRU order is exact only within a shard.
func WithShards(n int) Option { return func(c *config) { c.shards = n } }

// WithClock replaces the wall clock, so that expiry can be tested without sleeping.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Store holds the items. It is safe for concurrent use.
type Store struct {
	shards  []shard
	seed    maphash.Seed
	maxItem int
	memory  int64
	now     func() time.Time
	cas     atomic.Uint64
	// flushAt is the unix second from which items stored at or before it are
	// invalid (flush_all with a delay); 0 means no pending flush.
	flushAt atomic.Int64
}

// NewStore builds a store; the defaults are 64 MiB, 1 MiB items and enough
// shards that each can hold at least two maximum-size items.
func NewStore(opts ...Option) (*Store, error) {
	c := config{memory: 64 << 20, maxItem: 1 << 20, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.maxItem <= 0 || c.memory <= 0 {
		return nil, fmt.Errorf("new store: memory %d and max item size %d must be positive", c.memory, c.maxItem)
	}
	biggest := int64(c.maxItem + maxKeyLen + entryOverhead)
	if c.shards == 0 {
		c.shards = 1
		for c.shards < 32 && c.memory/int64(c.shards*2) >= 2*biggest {
			c.shards *= 2
		}
	}
	per := c.memory / int64(c.shards)
	if c.shards < 1 || per < biggest {
		return nil, fmt.Errorf("new store: %d shards of %d bytes cannot hold a %d-byte item", c.shards, per, c.maxItem)
	}
	s := &Store{shards: make([]shard, c.shards), seed: maphash.MakeSeed(), maxItem: c.maxItem, memory: c.memory, now: c.now}
	for i := range s.shards {
		s.shards[i].items = make(map[string]*entry)
		s.shards[i].limit = per
	}
	return s, nil
}

type entry struct {
	key   string
	value []byte // never mutated after store, so readers may keep it after unlocking
	flags uint32
	exp   int64 // absolute unix seconds; 0 = never
	setAt int64
	cas   uint64
	size  int64

	prev, next *entry // LRU list; head is most recent
}

type shardStats struct {
	getHits, getMisses, cmdGet, cmdSet, cmdTouch uint64
	touchHits, touchMisses                       uint64
	deleteHits, deleteMisses                     uint64
	incrHits, incrMisses, decrHits, decrMisses   uint64
	casHits, casMisses, casBadval                uint64
	evictions, reclaimed, totalItems             uint64
}

type shard struct {
	mu         sync.Mutex
	items      map[string]*entry
	head, tail *entry
	bytes      int64
	limit      int64
	st         shardStats
	_          [64]byte // keeps neighbouring shards' locks off one cache line
}

func (s *Store) shard(key []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, key)%uint64(len(s.shards))]
}

// expiry converts a protocol exptime into an absolute unix second; negative
// results mean "already expired".
func (s *Store) expiry(exptime int64, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return -1
	case exptime > maxRelativeExptime:
		if exptime <= now {
			return -1
		}
		return exptime
	default:
		return now + exptime
	}
}

func (s *Store) live(e *entry, now int64) bool {
	if e.exp != 0 && e.exp <= now {
		return false
	}
	f := s.flushAt.Load()
	return f == 0 || now < f || e.setAt > f
}

// lookup returns the live entry for key, dropping it if it has expired.
// The caller holds sh.mu.
func (s *Store) lookup(sh *shard, key []byte, now int64) *entry {
	e := sh.items[string(key)]
	if e == nil {
		return nil
	}
	if !s.live(e, now) {
		sh.unlink(e)
		sh.st.reclaimed++
		return nil
	}
	return e
}

func (sh *shard) unlink(e *entry) {
	delete(sh.items, e.key)
	sh.detach(e)
	sh.bytes -= e.size
}

func (sh *shard) detach(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *shard) pushFront(e *entry) {
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}

func (sh *shard) bump(e *entry) {
	if sh.head != e {
		sh.detach(e)
		sh.pushFront(e)
	}
}

// item is what a get returns; value is shared with the store and must not be modified.
type item struct {
	value []byte
	flags uint32
	cas   uint64
}

func (s *Store) get(key []byte) (item, bool) {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.cmdGet++
	e := s.lookup(sh, key, now)
	if e == nil {
		sh.st.getMisses++
		return item{}, false
	}
	sh.st.getHits++
	sh.bump(e)
	return item{value: e.value, flags: e.flags, cas: e.cas}, true
}

// getAndTouch is gat: a get that also sets a new exptime.
func (s *Store) getAndTouch(key []byte, exptime int64) (item, bool) {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.cmdGet++
	sh.st.cmdTouch++
	e := s.lookup(sh, key, now)
	if e == nil {
		sh.st.getMisses++
		sh.st.touchMisses++
		return item{}, false
	}
	sh.st.getHits++
	sh.st.touchHits++
	if exp := s.expiry(exptime, now); exp < 0 {
		sh.unlink(e)
	} else {
		e.exp = exp
		sh.bump(e)
	}
	return item{value: e.value, flags: e.flags, cas: e.cas}, true
}

type storeMode int

const (
	modeSet storeMode = iota
	modeAdd
	modeReplace
	modeAppend
	modePrepend
	modeCAS
)

type storeResult int

const (
	stored storeResult = iota
	notStored
	exists
	notFound
	tooLarge
)

var errNonNumeric = errors.New("cannot increment or decrement non-numeric value")

// store implements set/add/replace/append/prepend/cas. value becomes owned by the store.
func (s *Store) store(mode storeMode, key, value []byte, flags uint32, exptime int64, casIn uint64) storeResult {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.cmdSet++
	if len(value) > s.maxItem {
		sh.dropStale(mode, key)
		return tooLarge
	}
	old := s.lookup(sh, key, now)
	switch mode {
	case modeAdd:
		if old != nil {
			sh.bump(old)
			return notStored
		}
	case modeReplace, modeAppend, modePrepend:
		if old == nil {
			return notStored
		}
	case modeCAS:
		if old == nil {
			sh.st.casMisses++
			return notFound
		}
		if old.cas != casIn {
			sh.st.casBadval++
			return exists
		}
		sh.st.casHits++
	}
	exp := s.expiry(exptime, now)
	if mode == modeAppend || mode == modePrepend {
		// append/prepend keep the old flags and exptime, as memcached does.
		joined := make([]byte, 0, len(old.value)+len(value))
		if mode == modeAppend {
			joined = append(append(joined, old.value...), value...)
		} else {
			joined = append(append(joined, value...), old.value...)
		}
		if len(joined) > s.maxItem {
			return tooLarge
		}
		value, flags, exp = joined, old.flags, old.exp
	}
	if old != nil {
		sh.unlink(old)
	}
	if exp < 0 {
		return stored // stored and immediately expired, like memcached
	}
	e := &entry{key: string(key), value: value, flags: flags, exp: exp, setAt: now, cas: s.cas.Add(1)}
	e.size = int64(len(e.key)+len(value)) + entryOverhead
	// NewStore sized shards to hold any valid item, so this ends before the list does.
	for sh.bytes+e.size > sh.limit && sh.tail != nil {
		victim := sh.tail
		if s.live(victim, now) {
			sh.st.evictions++
		} else {
			sh.st.reclaimed++
		}
		sh.unlink(victim)
	}
	sh.items[e.key] = e
	sh.pushFront(e)
	sh.bytes += e.size
	sh.st.totalItems++
	return stored
}

// rejectTooLarge accounts for a storage command whose data was too large to read.
func (s *Store) rejectTooLarge(mode storeMode, key []byte) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.cmdSet++
	sh.dropStale(mode, key)
}

// dropStale removes key after a failed set, as memcached does, so that a
// client never reads the value it just tried to overwrite.
func (sh *shard) dropStale(mode storeMode, key []byte) {
	if mode != modeSet {
		return
	}
	if e := sh.items[string(key)]; e != nil {
		sh.unlink(e)
	}
}

func (s *Store) delete(key []byte) bool {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.lookup(sh, key, now)
	if e == nil {
		sh.st.deleteMisses++
		return false
	}
	sh.st.deleteHits++
	sh.unlink(e)
	return true
}

func (s *Store) touch(key []byte, exptime int64) bool {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.cmdTouch++
	e := s.lookup(sh, key, now)
	if e == nil {
		sh.st.touchMisses++
		return false
	}
	sh.st.touchHits++
	if exp := s.expiry(exptime, now); exp < 0 {
		sh.unlink(e)
	} else {
		e.exp = exp
		sh.bump(e)
	}
	return true
}

// delta implements incr/decr: incr wraps at 2^64, decr stops at 0.
func (s *Store) delta(key []byte, incr bool, d uint64) (uint64, bool, error) {
	now := s.now().Unix()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.lookup(sh, key, now)
	if e == nil {
		if incr {
			sh.st.incrMisses++
		} else {
			sh.st.decrMisses++
		}
		return 0, false, nil
	}
	n, ok := parseCounter(e.value)
	if !ok {
		return 0, true, errNonNumeric
	}
	if incr {
		n += d
		sh.st.incrHits++
	} else {
		n -= min(n, d)
		sh.st.decrHits++
	}
	// A fresh slice: readers may still hold the old value.
	value := strconv.AppendUint(make([]byte, 0, 20), n, 10)
	sh.bytes += int64(len(value) - len(e.value))
	e.size += int64(len(value) - len(e.value))
	e.value = value
	e.cas = s.cas.Add(1)
	sh.bump(e)
	return n, true, nil
}

// parseCounter accepts what memcached's safe_strtoull does for a stored
// counter: decimal digits, optionally followed by spaces.
func parseCounter(b []byte) (uint64, bool) {
	end := len(b)
	for end > 0 && b[end-1] == ' ' {
		end--
	}
	if end == 0 {
		return 0, false
	}
	return parseUint(b[:end], 64)
}

// flush invalidates every item stored up to now+delay seconds.
func (s *Store) flush(delay int64) {
	now := s.now().Unix()
	if delay > 0 {
		s.flushAt.Store(now + delay)
		return
	}
	s.flushAt.Store(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.items)
		sh.head, sh.tail, sh.bytes = nil, nil, 0
		sh.mu.Unlock()
	}
}

// Stats is a snapshot of the store's counters, named after memcached's stats.
type Stats struct {
	CurrItems, TotalItems, Bytes, LimitMaxBytes      uint64
	CmdGet, CmdSet, CmdTouch, GetHits, GetMisses     uint64
	TouchHits, TouchMisses, DeleteHits, DeleteMisses uint64
	IncrHits, IncrMisses, DecrHits, DecrMisses       uint64
	CasHits, CasMisses, CasBadval                    uint64
	Evictions, Reclaimed                             uint64
}

// Stats sums the shards' counters.
func (s *Store) Stats() Stats {
	out := Stats{LimitMaxBytes: uint64(s.memory)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st := sh.st
		out.CurrItems += uint64(len(sh.items))
		out.Bytes += uint64(sh.bytes)
		sh.mu.Unlock()
		out.TotalItems += st.totalItems
		out.CmdGet += st.cmdGet
		out.CmdSet += st.cmdSet
		out.CmdTouch += st.cmdTouch
		out.GetHits += st.getHits
		out.GetMisses += st.getMisses
		out.TouchHits += st.touchHits
		out.TouchMisses += st.touchMisses
		out.DeleteHits += st.deleteHits
		out.DeleteMisses += st.deleteMisses
		out.IncrHits += st.incrHits
		out.IncrMisses += st.incrMisses
		out.DecrHits += st.decrHits
		out.DecrMisses += st.decrMisses
		out.CasHits += st.casHits
		out.CasMisses += st.casMisses
		out.CasBadval += st.casBadval
		out.Evictions += st.evictions
		out.Reclaimed += st.reclaimed
	}
	return out
}
