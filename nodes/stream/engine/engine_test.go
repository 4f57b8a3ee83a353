package engine

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// countSpout emits n messages: (seq) and, when direct is set, sends
// message seq to task direct(seq).
type countSpout struct {
	n      uint64
	direct func(seq uint64) int32
}

func (s countSpout) Next(seq uint64, out *topo.Emitter) (bool, error) {
	if seq >= s.n {
		return false, nil
	}
	if s.direct != nil {
		out.EmitDirect(s.direct(seq), topo.Int(int64(seq)))
	} else {
		out.Emit(topo.Int(int64(seq)))
	}
	return true, nil
}

// recorder notes which task got which tuple from which task.
type recorder struct {
	mu   sync.Mutex
	got  map[int32][]int64 // receiving task → values
	from map[[2]int32]int  // (src, dst) → tuples
}

func newRecorder() *recorder {
	return &recorder{got: map[int32][]int64{}, from: map[[2]int32]int{}}
}

func (r *recorder) bolt(task topo.Task) topo.Bolt { return recordBolt{r: r, id: task.ID} }

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.got {
		n += len(v)
	}
	return n
}

type recordBolt struct {
	r  *recorder
	id int32
}

func (b recordBolt) Execute(in *topo.Tuple, _ *topo.Emitter) error {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.r.got[b.id] = append(b.r.got[b.id], in.Value(0).Int())
	b.r.from[[2]int32{in.Src, b.id}]++
	return nil
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "condition not met in time")
		time.Sleep(5 * time.Millisecond)
	}
}

func runLocal(t *testing.T, tp *topo.Topology, opts ...Option) (*Worker, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	w := Start(ctx, "local", tp, nil, opts...)
	require.NoError(t, w.Apply(LocalAssignment(tp, 1, "local")))
	t.Cleanup(func() { cancel(); w.Wait() })
	return w, cancel
}

func TestAllAndGlobalInEngine(t *testing.T) {
	const n = 500
	all, global := newRecorder(), newRecorder()
	b := topo.NewBuilder("t")
	b.Spout("s", 3, []string{"n"}, func(topo.Task) topo.Spout { return countSpout{n: n} })
	b.Sink("all", 4, all.bolt).All("s")
	b.Sink("global", 4, global.bolt).Global("s")
	tp, err := b.Build()
	require.NoError(t, err)
	runLocal(t, tp, WithAcking(5*time.Second, 100))
	waitUntil(t, func() bool { return all.total() == 4*3*n && global.total() == 3*n })

	for _, id := range tp.Component("all").Tasks {
		assert.Len(t, all.got[id], 3*n, "all: task %d gets every tuple", id)
	}
	assert.Len(t, global.got, 1)
	assert.Len(t, global.got[tp.Component("global").Tasks[0]], 3*n, "global: lowest task gets everything")
}

func TestDirectInEngine(t *testing.T) {
	const n = 400
	rec := newRecorder()
	b := topo.NewBuilder("t")
	var sinkTasks []int32
	b.Spout("s", 1, []string{"n"}, func(topo.Task) topo.Spout {
		return countSpout{n: n, direct: func(seq uint64) int32 { return sinkTasks[seq%3] }}
	})
	b.Sink("k", 3, rec.bolt).Direct("s")
	tp, err := b.Build()
	require.NoError(t, err)
	sinkTasks = tp.Component("k").Tasks
	runLocal(t, tp)
	waitUntil(t, func() bool { return rec.total() == n })
	for i, id := range sinkTasks {
		for _, v := range rec.got[id] {
			require.Equal(t, i, int(v%3), "message %d went to task %d", v, id)
		}
	}
}

// TestLocalOrShuffleStaysLocal places half the tasks on each of two
// workers: every tuple must reach a consumer task on its own worker.
func TestLocalOrShuffleStaysLocal(t *testing.T) {
	const n = 1000
	rec := newRecorder()
	b := topo.NewBuilder("t")
	b.Spout("s", 2, []string{"n"}, func(topo.Task) topo.Spout { return countSpout{n: n} })
	b.Sink("k", 4, rec.bolt).LocalOrShuffle("s")
	tp, err := b.Build()
	require.NoError(t, err)
	// Tasks: spouts 1, 2; sinks 3..6; acker 7.
	place := map[int32]string{1: "w1", 3: "w1", 4: "w1", 2: "w2", 5: "w2", 6: "w2", 7: "w1"}
	ctx, cancel := context.WithCancel(context.Background())
	a := Assignment{Version: 1, Tasks: place, Addrs: map[string]string{}}
	var workers []*Worker
	for _, id := range []string{"w1", "w2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		a.Addrs[id] = ln.Addr().String()
		workers = append(workers, Start(ctx, id, tp, ln, WithAcking(5*time.Second, 100)))
	}
	for _, w := range workers {
		require.NoError(t, w.Apply(a))
	}
	defer func() {
		cancel()
		for _, w := range workers {
			w.Wait()
		}
	}()
	waitUntil(t, func() bool { return rec.total() == 2*n })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for pair, cnt := range rec.from {
		assert.Equal(t, place[pair[0]], place[pair[1]], "%d tuples from task %d reached task %d on another worker", cnt, pair[0], pair[1])
	}
	for _, id := range []int32{3, 4, 5, 6} {
		assert.InDelta(t, n/2, len(rec.got[id]), n*0.15/2, "task %d shuffled among its worker's local tasks", id)
	}
}

// blockingBolt holds every tuple until released.
type blockingBolt struct{ release <-chan struct{} }

func (b blockingBolt) Execute(*topo.Tuple, *topo.Emitter) error {
	<-b.release
	return nil
}

// TestBackpressureBoundsInFlight stalls the only consumer: the spout must
// stop once the bounded queues are full instead of buffering without end.
func TestBackpressureBoundsInFlight(t *testing.T) {
	release := make(chan struct{})
	b := topo.NewBuilder("t")
	b.Spout("s", 1, []string{"n"}, func(topo.Task) topo.Spout { return countSpout{n: 1 << 40} })
	b.Sink("k", 1, func(topo.Task) topo.Bolt { return blockingBolt{release: release} }).Shuffle("s")
	tp, err := b.Build()
	require.NoError(t, err)
	const batch, queue = 8, 2
	w, _ := runLocal(t, tp, WithBatchSize(batch), WithQueueLen(queue))
	// Wait until the spout is stuck: its count stops moving.
	var last int64 = -1
	waitUntil(t, func() bool {
		n := w.Stats.Emitted.Load()
		stuck := n == last && n > 0
		last = n
		time.Sleep(20 * time.Millisecond)
		return stuck
	})
	// One batch in the bolt's hands, queue batches queued, one batch being
	// sent and one being filled: that is all that may exist.
	assert.LessOrEqual(t, w.Stats.Emitted.Load(), int64((queue+3)*batch))
	close(release)
	waitUntil(t, func() bool { return w.Stats.Emitted.Load() > int64(10*(queue+3)*batch) })
}
