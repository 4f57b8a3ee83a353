package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// Options tune a Worker. The zero value is filled in by defaults.
type Options struct {
	Acking         bool
	MessageTimeout time.Duration // a tree not complete by then fails and is replayed
	MaxPending     int           // unacked messages per spout task
	Checkpoint     time.Duration // how often stateful tasks save state (and release acks)
	BatchSize      int           // tuples per batch between tasks
	QueueLen       int           // batches an inbox holds before senders wait
	Store          StateStore
	Loss           float64 // chance to drop each tuple between tasks, to test replay
}

// Option sets an Option field, vegeta-style.
type Option func(*Options)

// WithAcking turns on Storm acking: at-least-once with replay after timeout,
// at most maxPending messages in flight per spout task.
func WithAcking(timeout time.Duration, maxPending int) Option {
	return func(o *Options) { o.Acking, o.MessageTimeout, o.MaxPending = true, timeout, maxPending }
}

// WithCheckpointEvery sets the stateful tasks' checkpoint period.
func WithCheckpointEvery(d time.Duration) Option { return func(o *Options) { o.Checkpoint = d } }

// WithBatchSize sets how many tuples move between tasks at once.
func WithBatchSize(n int) Option { return func(o *Options) { o.BatchSize = n } }

// WithQueueLen sets how many batches a task's inbox holds.
func WithQueueLen(n int) Option { return func(o *Options) { o.QueueLen = n } }

// WithLoss drops each tuple between tasks with probability p, like a lossy
// network: the trees fail by timeout and replay.
func WithLoss(p float64) Option { return func(o *Options) { o.Loss = p } }

// WithStateStore sets where checkpoints go (default: a MemStateStore).
func WithStateStore(s StateStore) Option { return func(o *Options) { o.Store = s } }

// Assignment places every task (topology tasks 1..N, then acker tasks
// N+1..) on a worker.
type Assignment struct {
	Version uint64            `json:"version"`
	Tasks   map[int32]string  `json:"tasks"` // task id → worker id
	Addrs   map[string]string `json:"addrs"` // worker id → data address
}

// LocalAssignment puts all tasks and ackers acker tasks on one worker.
func LocalAssignment(t *topo.Topology, ackers int, worker string) Assignment {
	a := Assignment{Version: 1, Tasks: map[int32]string{}, Addrs: map[string]string{worker: ""}}
	for id := int32(1); id <= int32(t.NumTasks()+ackers); id++ {
		a.Tasks[id] = worker
	}
	return a
}

// Stats are a worker's counters since it started.
type Stats struct {
	Emitted  atomic.Int64 // spout messages emitted for the first time
	Acked    atomic.Int64 // spout messages whose tree completed
	Failed   atomic.Int64 // trees failed by a bolt or timed out
	Replayed atomic.Int64 // messages emitted again after a failure
	Executed atomic.Int64 // tuples bolts executed
	Dropped  atomic.Int64 // tuples or batches with no live destination
}

// Worker runs the tasks an Assignment gives it.
type Worker struct {
	id    string
	topo  *topo.Topology
	opts  Options
	ctx   context.Context
	net   *transport
	ckpt  *checkpointer
	Stats Stats
	comps map[string]*ComponentStats

	mu      sync.Mutex
	running map[int32]*running
	routes  atomic.Pointer[routes]
	wg      sync.WaitGroup
}

type running struct {
	cancel context.CancelFunc
	in     *inbox
}

// routes is an immutable view of where each task runs, swapped on Apply.
type routes struct {
	version uint64
	local   []*inbox // by task id; nil when not here
	remote  []string // by task id; data address when elsewhere
	ackers  []int32
	here    []int32 // tasks on this worker, ascending
}

func (r *routes) acker(root uint64) int32 { return r.ackers[root%uint64(len(r.ackers))] }

// Start starts a worker with no tasks. With a listener it accepts tuples
// from other workers. Everything stops when ctx ends; Wait waits for that.
func Start(ctx context.Context, id string, t *topo.Topology, ln net.Listener, opts ...Option) *Worker {
	o := Options{MessageTimeout: 5 * time.Second, MaxPending: 1000, Checkpoint: 100 * time.Millisecond, BatchSize: 128, QueueLen: 32}
	for _, f := range opts {
		f(&o)
	}
	if o.Store == nil {
		o.Store = NewMemStateStore()
	}
	w := &Worker{id: id, topo: t, opts: o, ctx: ctx, running: map[int32]*running{}, comps: map[string]*ComponentStats{}}
	for _, c := range t.Components {
		w.comps[c.Name] = &ComponentStats{}
	}
	w.routes.Store(&routes{})
	w.net = newTransport(w)
	w.ckpt = newCheckpointer(o.Store)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.ckpt.run(ctx)
	}()
	if ln != nil {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.net.serve(ctx, ln)
		}()
	}
	return w
}

// Wait returns once ctx ended and every task and connection stopped.
func (w *Worker) Wait() { w.wg.Wait() }

// ID returns the worker id.
func (w *Worker) ID() string { return w.id }

// Apply starts the tasks a assigns here, stops the ones it moved away and
// points every other task at its worker's address.
func (w *Worker) Apply(a Assignment) error {
	n := int32(w.topo.NumTasks())
	r := &routes{version: a.Version, local: make([]*inbox, len(a.Tasks)+1), remote: make([]string, len(a.Tasks)+1)}
	for id := int32(1); id <= int32(len(a.Tasks)); id++ {
		if _, ok := a.Tasks[id]; !ok {
			return fmt.Errorf("assignment %d: task %d missing", a.Version, id)
		}
		if id > n {
			r.ackers = append(r.ackers, id)
		}
	}
	if len(r.ackers) == 0 && w.opts.Acking {
		return fmt.Errorf("assignment %d: acking needs acker tasks after task %d", a.Version, n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return fmt.Errorf("worker %s stopped: %w", w.id, w.ctx.Err())
	}
	start := []int32{}
	for id, wid := range a.Tasks {
		if wid != w.id {
			r.remote[id] = a.Addrs[wid]
			continue
		}
		r.here = append(r.here, id)
		if run := w.running[id]; run != nil {
			r.local[id] = run.in
			continue
		}
		r.local[id] = newInbox(w.opts.QueueLen)
		start = append(start, id)
	}
	sort.Slice(r.here, func(i, j int) bool { return r.here[i] < r.here[j] })
	for id, run := range w.running {
		if r.local[id] == nil {
			run.cancel()
			delete(w.running, id)
		}
	}
	w.routes.Store(r)
	for _, id := range start {
		ctx, cancel := context.WithCancel(w.ctx)
		run := &running{cancel: cancel, in: r.local[id]}
		w.running[id] = run
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer close(run.in.done)
			w.runTask(ctx, id, run.in)
		}()
	}
	return nil
}

// Tasks lists the tasks running here.
func (w *Worker) Tasks() []int32 {
	return append([]int32(nil), w.routes.Load().here...)
}

func (w *Worker) runTask(ctx context.Context, id int32, in *inbox) {
	c := w.topo.TaskComponent(id)
	var err error
	switch {
	case c == nil:
		err = w.runAcker(ctx, id, in)
	case c.Role == topo.RoleSpout:
		err = w.runSpout(ctx, id, c, in)
	default:
		err = w.runBolt(ctx, id, c, in)
	}
	if err != nil && ctx.Err() == nil {
		// A task that cannot go on stops alone; its messages time out and
		// replay once it is reassigned, as when its worker dies.
		slog.Warn("stream task stopped", "worker", w.id, "task", id, "err", err)
	}
}

// deliver hands b to its task here or on another worker. It waits while the
// destination's queue is full: that wait is the backpressure.
func (w *Worker) deliver(ctx context.Context, b *batch) {
	if w.opts.Loss > 0 {
		w.lose(b)
	}
	r := w.routes.Load()
	if int(b.dst) < len(r.local) {
		if in := r.local[b.dst]; in != nil {
			select {
			case in.data <- b:
				return
			case <-in.done:
			case <-ctx.Done():
			}
		} else if addr := r.remote[b.dst]; addr != "" {
			w.net.sendData(ctx, addr, b)
			return
		}
	}
	w.Stats.Dropped.Add(int64(len(b.tuples)))
	putBatch(b)
}

// deliverCtl hands acking messages to a task's mailbox, never waiting.
func (w *Worker) deliverCtl(ctx context.Context, dst int32, msgs []ctl) {
	r := w.routes.Load()
	if int(dst) < len(r.local) {
		if in := r.local[dst]; in != nil {
			in.ctl.push(msgs)
			return
		} else if addr := r.remote[dst]; addr != "" {
			w.net.sendCtl(ctx, addr, dst, msgs)
			return
		}
	}
	w.Stats.Dropped.Add(1)
}

// deliverLocal hands a batch from another worker to a task here; tuples for
// tasks that moved away are dropped and replay.
func (w *Worker) deliverLocal(ctx context.Context, b *batch) {
	r := w.routes.Load()
	if int(b.dst) < len(r.local) {
		if in := r.local[b.dst]; in != nil {
			select {
			case in.data <- b:
				return
			case <-in.done:
			case <-ctx.Done():
			}
		}
	}
	w.Stats.Dropped.Add(int64(len(b.tuples)))
	putBatch(b)
}

func (w *Worker) deliverLocalCtl(dst int32, msgs []ctl) {
	r := w.routes.Load()
	if int(dst) < len(r.local) {
		if in := r.local[dst]; in != nil {
			in.ctl.push(msgs)
			return
		}
	}
	w.Stats.Dropped.Add(1)
}

func (w *Worker) lose(b *batch) {
	kept := b.tuples[:0]
	for _, t := range b.tuples {
		if rand.Float64() >= w.opts.Loss {
			kept = append(kept, t)
		}
	}
	w.Stats.Dropped.Add(int64(len(b.tuples) - len(kept)))
	b.tuples = kept
}
