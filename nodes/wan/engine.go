package wan

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Partition drops every packet whose source is in one of Src and whose
// destination is in one of Dst. It is one-way; a symmetric cut is two rules.
type Partition struct {
	ID  string         `json:"id"`
	Src []netip.Prefix `json:"src"`
	Dst []netip.Prefix `json:"dst"`
}

func (p Partition) matches(src, dst netip.Addr) bool {
	return containsAddr(p.Src, src) && containsAddr(p.Dst, dst)
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// LinkStats counts what happened on one directed region pair. From or To is
// empty for traffic outside every region.
type LinkStats struct {
	From             string `json:"from"`
	To               string `json:"to"`
	ForwardedPackets uint64 `json:"forwarded_packets"`
	ForwardedBytes   uint64 `json:"forwarded_bytes"`
	DroppedPackets   uint64 `json:"dropped_packets"`
	DroppedBytes     uint64 `json:"dropped_bytes"`
	PartitionDrops   uint64 `json:"partition_drops"`
	LossDrops        uint64 `json:"loss_drops"`
	QueueDrops       uint64 `json:"queue_drops"`
	WriteErrors      uint64 `json:"write_errors"`
}

// snapshot is the immutable configuration the packet path reads; changes
// build a new one and swap it in, so the per-packet path takes no lock.
type snapshot struct {
	links      [][]*Link // [src region+1][dst region+1]; nil = pass through
	partitions []Partition
}

type dropReason int

const (
	keep dropReason = iota
	dropPartition
	dropLoss
	dropQueue
	dropNotIPv4
)

// linkState is the pacing state and counters of one directed pair.
type linkState struct {
	pair Pair
	// busyUntil and lastRelease are owned by the reader goroutine.
	busyUntil, lastRelease int64

	fwdPkts, fwdBytes, dropPkts, dropBytes   atomic.Uint64
	partDrops, lossDrops, queueDrops, wrErrs atomic.Uint64
}

func (s *linkState) drop(reason dropReason, size int) {
	s.dropPkts.Add(1)
	s.dropBytes.Add(uint64(size))
	switch reason {
	case dropPartition:
		s.partDrops.Add(1)
	case dropLoss:
		s.lossDrops.Add(1)
	case dropQueue:
		s.queueDrops.Add(1)
	}
}

type queued struct {
	release int64 // ns since Engine.base
	seq     uint64
	pkt     []byte
	link    *linkState
}

type releaseHeap []queued

func (h releaseHeap) Len() int { return len(h) }
func (h releaseHeap) Less(i, j int) bool {
	if h[i].release != h[j].release {
		return h[i].release < h[j].release
	}
	return h[i].seq < h[j].seq
}
func (h releaseHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *releaseHeap) Push(x any)   { *h = append(*h, x.(queued)) }
func (h *releaseHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = queued{}
	*h = old[:len(old)-1]
	return x
}

// Engine is the packet loop: read from dev, decide, hold, write back to dev.
type Engine struct {
	dev      io.ReadWriteCloser
	regions  []Region
	maxQueue time.Duration
	spin     time.Duration
	hdrLen   int // bytes before the IP header in every packet
	onLinks  func([]LinkSpec) error
	rng      *rand.Rand // reader goroutine only
	base     time.Time

	cfgMu  sync.Mutex // serialises configuration writers
	cfg    atomic.Pointer[snapshot]
	nextID uint64 // guarded by cfgMu

	links [][]*linkState // fixed at creation, same shape as snapshot.links

	mu      sync.Mutex // guards queue, seq, writing
	queue   releaseHeap
	seq     uint64
	writing bool
	wake    chan struct{}
	running atomic.Bool
}

// Option configures an Engine.
type Option func(*Engine)

// WithSeed seeds the loss and jitter decisions so a run can be replayed.
func WithSeed(seed uint64) Option {
	return func(e *Engine) { e.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithMaxQueue bounds how long a packet may wait for a bandwidth-capped link
// before it is tail-dropped, like a router's finite buffer (default 100ms).
func WithMaxQueue(d time.Duration) Option { return func(e *Engine) { e.maxQueue = d } }

// WithSpin sets how long before a release the scheduler stops sleeping on a
// timer and yields in a loop instead; timer wake-ups are late by up to a
// millisecond (measured: +0.6 ms per direction with 300µs), spinning is not (default 1ms).
func WithSpin(d time.Duration) Option { return func(e *Engine) { e.spin = d } }

// WithHeaderLen says every packet read from and written to the device
// starts with n bytes before its IP header (the virtio-net header of a TUN
// with offloads); they are passed through untouched and not counted.
func WithHeaderLen(n int) Option { return func(e *Engine) { e.hdrLen = n } }

// WithLinksHook calls fn with every new set of links before it takes
// effect; an error rejects the set.
func WithLinksHook(fn func([]LinkSpec) error) Option { return func(e *Engine) { e.onLinks = fn } }

// NewEngine builds an engine over dev for the given regions, with every link
// passing traffic unchanged until SetLinks is called.
func NewEngine(dev io.ReadWriteCloser, regions []Region, opts ...Option) (*Engine, error) {
	for i, r := range regions {
		for _, o := range regions[:i] {
			if o.Name == r.Name {
				return nil, fmt.Errorf("region %q: duplicate", r.Name)
			}
			if o.Prefix.Overlaps(r.Prefix) {
				return nil, fmt.Errorf("regions %q and %q overlap", o.Name, r.Name)
			}
		}
	}
	e := &Engine{
		dev:      dev,
		regions:  slices.Clone(regions),
		maxQueue: 100 * time.Millisecond,
		spin:     time.Millisecond,
		base:     time.Now(),
		wake:     make(chan struct{}, 1),
	}
	WithSeed(1)(e)
	for _, o := range opts {
		o(e)
	}
	n := len(regions) + 1
	e.links = make([][]*linkState, n)
	for i := range e.links {
		e.links[i] = make([]*linkState, n)
		for j := range e.links[i] {
			e.links[i][j] = &linkState{pair: Pair{e.regionName(i), e.regionName(j)}}
		}
	}
	e.cfg.Store(&snapshot{links: emptyLinks(n)})
	return e, nil
}

func emptyLinks(n int) [][]*Link {
	l := make([][]*Link, n)
	for i := range l {
		l[i] = make([]*Link, n)
	}
	return l
}

func (e *Engine) regionName(idx int) string {
	if idx == 0 {
		return ""
	}
	return e.regions[idx-1].Name
}

func (e *Engine) regionIndex(name string) (int, bool) {
	for i, r := range e.regions {
		if r.Name == name {
			return i + 1, true
		}
	}
	return 0, false
}

// classify returns the region index of a, 0 when it is in none.
func (e *Engine) classify(a netip.Addr) int {
	for i, r := range e.regions {
		if r.Prefix.Contains(a) {
			return i + 1
		}
	}
	return 0
}

// SetLinks replaces every link; pairs not listed pass traffic unchanged.
func (e *Engine) SetLinks(specs []LinkSpec) error {
	n := len(e.regions) + 1
	links := emptyLinks(n)
	for _, s := range specs {
		i, ok1 := e.regionIndex(s.From)
		j, ok2 := e.regionIndex(s.To)
		if !ok1 || !ok2 {
			return fmt.Errorf("link %s: unknown region", Pair{s.From, s.To})
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("link %s: %w", Pair{s.From, s.To}, err)
		}
		if links[i][j] != nil {
			return fmt.Errorf("link %s: listed twice", Pair{s.From, s.To})
		}
		l := s.Link
		links[i][j] = &l
	}
	// The hook runs under cfgMu so that its effect and the published links
	// change in the same order when two callers race.
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	if e.onLinks != nil {
		if err := e.onLinks(specs); err != nil {
			return err
		}
	}
	next := *e.cfg.Load()
	next.links = links
	e.cfg.Store(&next)
	return nil
}

// Links returns the configured links.
func (e *Engine) Links() []LinkSpec {
	var out []LinkSpec
	for i, row := range e.cfg.Load().links {
		for j, l := range row {
			if l != nil {
				out = append(out, LinkSpec{From: e.regionName(i), To: e.regionName(j), Link: *l})
			}
		}
	}
	return out
}

// AddPartition installs a one-way partition and returns its id.
func (e *Engine) AddPartition(src, dst []netip.Prefix) (string, error) {
	if len(src) == 0 || len(dst) == 0 {
		return "", errors.New("partition needs at least one source and one destination")
	}
	var id string
	e.update(func(s *snapshot) {
		e.nextID++
		id = "p" + strconv.FormatUint(e.nextID, 10)
		s.partitions = append(slices.Clone(s.partitions),
			Partition{ID: id, Src: slices.Clone(src), Dst: slices.Clone(dst)})
	})
	return id, nil
}

// RemovePartition removes one partition; it reports whether id existed.
func (e *Engine) RemovePartition(id string) bool {
	found := false
	e.update(func(s *snapshot) {
		s.partitions = slices.DeleteFunc(slices.Clone(s.partitions), func(p Partition) bool {
			if p.ID == id {
				found = true
			}
			return p.ID == id
		})
	})
	return found
}

// HealAll removes every partition.
func (e *Engine) HealAll() { e.update(func(s *snapshot) { s.partitions = nil }) }

// Partitions returns the installed partitions.
func (e *Engine) Partitions() []Partition { return slices.Clone(e.cfg.Load().partitions) }

// update applies fn to a copy of the current snapshot and publishes it.
func (e *Engine) update(fn func(*snapshot)) {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	next := *e.cfg.Load()
	fn(&next)
	e.cfg.Store(&next)
}

// Stats returns the counters of every pair that has seen traffic.
func (e *Engine) Stats() []LinkStats {
	var out []LinkStats
	for _, row := range e.links {
		for _, s := range row {
			st := LinkStats{
				From: s.pair.From, To: s.pair.To,
				ForwardedPackets: s.fwdPkts.Load(), ForwardedBytes: s.fwdBytes.Load(),
				DroppedPackets: s.dropPkts.Load(), DroppedBytes: s.dropBytes.Load(),
				PartitionDrops: s.partDrops.Load(), LossDrops: s.lossDrops.Load(),
				QueueDrops: s.queueDrops.Load(), WriteErrors: s.wrErrs.Load(),
			}
			if st.ForwardedPackets+st.DroppedPackets+st.WriteErrors > 0 {
				out = append(out, st)
			}
		}
	}
	return out
}

// decide classifies one packet arriving at now (ns since base) and returns
// its link, and either a drop reason or the time to release it. Only the
// reader goroutine calls it: it owns the link's pacing state and the rng.
func (e *Engine) decide(cfg *snapshot, pkt []byte, now int64) (*linkState, dropReason, int64) {
	if len(pkt) < e.hdrLen {
		return e.links[0][0], dropNotIPv4, 0
	}
	pkt = pkt[e.hdrLen:]
	src, dst, ok := ipv4Addrs(pkt)
	if !ok {
		// Only forwarded IPv4 is steered into the TUN; anything else (IPv6
		// neighbour discovery from the TUN itself) would loop if written back.
		return e.links[0][0], dropNotIPv4, 0
	}
	i, j := e.classify(src), e.classify(dst)
	st := e.links[i][j]
	for _, p := range cfg.partitions {
		if p.matches(src, dst) {
			return st, dropPartition, 0
		}
	}
	l := cfg.links[i][j]
	if l == nil {
		return st, keep, now
	}
	if l.Loss > 0 && e.rng.Float64() < l.Loss {
		return st, dropLoss, 0
	}
	depart := now
	if l.BandwidthBps > 0 {
		start := max(now, st.busyUntil)
		if start-now > int64(e.maxQueue) {
			return st, dropQueue, 0
		}
		depart = start + int64(len(pkt))*8*int64(time.Second)/l.BandwidthBps
		st.busyUntil = depart
	}
	release := depart + int64(l.Delay)
	if l.Jitter > 0 {
		release += e.rng.Int64N(2*int64(l.Jitter)+1) - int64(l.Jitter)
	}
	// Jitter must not reorder a link: real paths rarely do, and TCP reads
	// reordering as loss.
	release = max(release, depart, st.lastRelease)
	st.lastRelease = release
	return st, keep, release
}

func (e *Engine) now() int64 { return int64(time.Since(e.base)) }

// Run moves packets until ctx ends; it then closes dev (which unblocks the
// pending read) and returns nil. A read error before that is returned.
// An engine runs once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("engine already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		e.dev.Close()
	}()
	go func() {
		defer wg.Done()
		e.schedule(ctx)
	}()
	err := e.read(ctx)
	cancel()
	wg.Wait()
	return err
}

func (e *Engine) read(ctx context.Context) error {
	buf := make([]byte, 1<<16)
	for {
		n, err := e.dev.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read packet: %w", err)
		}
		if n == 0 {
			continue
		}
		now := e.now()
		st, reason, release := e.decide(e.cfg.Load(), buf[:n], now)
		if reason != keep {
			st.drop(reason, max(n-e.hdrLen, 0))
			continue
		}
		e.mu.Lock()
		if release <= now && len(e.queue) == 0 && !e.writing {
			// Nothing is held and nothing is being written, so writing now
			// cannot overtake an earlier packet; skip the copy and handoff.
			e.writeOne(st, buf[:n])
			e.mu.Unlock()
			continue
		}
		e.seq++
		heap.Push(&e.queue, queued{release: release, seq: e.seq, pkt: slices.Clone(buf[:n]), link: st})
		first := e.queue[0].seq == e.seq
		e.mu.Unlock()
		if first {
			select {
			case e.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (e *Engine) writeOne(st *linkState, pkt []byte) {
	if _, err := e.dev.Write(pkt); err != nil {
		st.wrErrs.Add(1)
		return
	}
	st.fwdPkts.Add(1)
	st.fwdBytes.Add(uint64(len(pkt) - e.hdrLen))
}

// schedule writes held packets at their release time: it sleeps on a timer
// until shortly before the earliest release, then yields until it is due.
func (e *Engine) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []queued
	for {
		e.mu.Lock()
		now := e.now()
		batch = batch[:0]
		for len(e.queue) > 0 && e.queue[0].release <= now {
			batch = append(batch, heap.Pop(&e.queue).(queued))
		}
		var next int64 = -1
		if len(e.queue) > 0 {
			next = e.queue[0].release
		}
		e.writing = len(batch) > 0
		e.mu.Unlock()

		if len(batch) > 0 {
			for _, q := range batch {
				e.writeOne(q.link, q.pkt)
			}
			clear(batch)
			e.mu.Lock()
			e.writing = false
			e.mu.Unlock()
			continue
		}
		if next < 0 {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
			}
			continue
		}
		if wait := time.Duration(next - now); wait > e.spin {
			timer.Reset(wait - e.spin)
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
			case <-timer.C:
			}
			continue
		}
		for e.now() < next && ctx.Err() == nil {
			runtime.Gosched()
		}
	}
}
