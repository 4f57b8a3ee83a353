package wordcount

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
)

// waitDone polls the spouts' checkpoints until every message is acked.
func waitDone(t *testing.T, ctx context.Context, store engine.StateStore, tp *topo.Topology, perSpout uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for _, id := range tp.Component("sentences").Tasks {
			data, err := store.Load(ctx, id)
			require.NoError(t, err)
			w, err := engine.SpoutWatermark(data)
			require.NoError(t, err)
			done = done && w == perSpout
		}
		if done {
			return
		}
		require.True(t, time.Now().Before(deadline), "spout messages not all acked in time")
		time.Sleep(20 * time.Millisecond)
	}
}

// runLocal runs tp on one worker until every message of its spouts is
// acked, and returns the stopped worker.
func runLocal(t *testing.T, ctx context.Context, tp *topo.Topology, perSpout uint64, store engine.StateStore, opts ...engine.Option) *engine.Worker {
	t.Helper()
	wctx, stop := context.WithCancel(ctx)
	w := engine.Start(wctx, "local", tp, nil, append([]engine.Option{engine.WithStateStore(store)}, opts...)...)
	require.NoError(t, w.Apply(engine.LocalAssignment(tp, 2, "local")))
	waitDone(t, ctx, store, tp, perSpout)
	stop()
	w.Wait()
	return w
}

// results reads the sink's counts and each count task's counts from the
// checkpoints.
func results(t *testing.T, ctx context.Context, store engine.StateStore, tp *topo.Topology) (map[string]int64, []map[string]int64) {
	t.Helper()
	load := func(id int32) map[string]int64 {
		data, err := store.Load(ctx, id)
		require.NoError(t, err)
		snap, err := engine.BoltSnapshot(data)
		require.NoError(t, err)
		m, err := DecodeCounts(snap)
		require.NoError(t, err)
		return m
	}
	var per []map[string]int64
	for _, id := range tp.Component("count").Tasks {
		per = append(per, load(id))
	}
	return load(tp.Component("sink").Tasks[0]), per
}

func checkExact(t *testing.T, want, sink map[string]int64, perTask []map[string]int64) {
	t.Helper()
	assert.Equal(t, want, sink, "sink counts")
	sum := map[string]int64{}
	owner := map[string]int{}
	for i, m := range perTask {
		for w, n := range m {
			prev, dup := owner[w]
			assert.False(t, dup, "word %q counted by count tasks %d and %d", w, prev, i)
			owner[w] = i
			sum[w] += n
		}
	}
	assert.Equal(t, want, sum, "count tasks' counts")
}

func TestWordCountExactInProcess(t *testing.T) {
	cases := []struct {
		name     string
		perSpout uint64
		fail     float64
		loss     float64
	}{
		{"clean", 2000, 0, 0},
		{"bolts fail tuples", 1000, 0.02, 0},
		{"tuples lost between tasks", 1000, 0, 0.005},
		{"both", 1000, 0.01, 0.002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cfg := Lecture(tc.perSpout)
			cfg.FailRate = tc.fail
			tp, err := Build(cfg)
			require.NoError(t, err)
			store := engine.NewMemStateStore()
			w := runLocal(t, ctx, tp, tc.perSpout, store,
				engine.WithAcking(time.Second, 200), engine.WithCheckpointEvery(50*time.Millisecond), engine.WithLoss(tc.loss))

			sink, per := results(t, ctx, store, tp)
			checkExact(t, Expected(cfg.Spouts, tc.perSpout), sink, per)
			assert.Equal(t, int64(5*tc.perSpout), w.Stats.Emitted.Load())
			if tc.fail > 0 || tc.loss > 0 {
				assert.Positive(t, w.Stats.Replayed.Load(), "failures were injected, so messages replayed")
			}
			comps := w.Components()
			spout, split, count, sinkc := comps["sentences"], comps["split"], comps["count"], comps["sink"]
			assert.Equal(t, w.Stats.Acked.Load(), spout.Acked.Load())
			assert.Equal(t, w.Stats.Emitted.Load()+w.Stats.Replayed.Load(), spout.Emitted.Load(), "a sentence is one tuple")
			assert.Equal(t, w.Stats.Replayed.Load(), spout.Replayed.Load())
			assert.Positive(t, spout.CompleteNanos.Load())
			assert.Equal(t, w.Stats.Executed.Load(), split.Executed.Load()+count.Executed.Load()+sinkc.Executed.Load())
			for _, c := range []*engine.ComponentStats{split, count, sinkc} {
				assert.Positive(t, c.BusyNanos.Load())
			}
			if tc.fail == 0 && tc.loss == 0 {
				words := int64(0)
				for _, n := range Expected(cfg.Spouts, tc.perSpout) {
					words += n
				}
				assert.Equal(t, int64(5*tc.perSpout), split.Executed.Load())
				assert.Equal(t, words, split.Emitted.Load())
				assert.Equal(t, words, count.Executed.Load())
				assert.Equal(t, words, sinkc.Executed.Load())
				assert.Zero(t, spout.Failed.Load()+split.Failed.Load()+count.Failed.Load())
			} else if tc.fail > 0 {
				assert.Positive(t, split.Failed.Load()+count.Failed.Load(), "bolts failed tuples")
			}
			t.Logf("emitted %d acked %d failed %d replayed %d dropped %d",
				w.Stats.Emitted.Load(), w.Stats.Acked.Load(), w.Stats.Failed.Load(), w.Stats.Replayed.Load(), w.Stats.Dropped.Load())
		})
	}
}

// A rate-limited spout releases sentence seq only rate per second after its
// first start, and a restored copy keeps that schedule: after a move it
// finds the whole backlog due, not a fresh start.
func TestSentenceSpoutRate(t *testing.T) {
	now := time.Unix(100, 0)
	clock := func() time.Time { return now }
	s := &SentenceSpout{rate: 10, now: clock}
	var em topo.Emitter
	ok, err := s.Next(0, &em)
	require.NoError(t, err)
	assert.False(t, ok, "nothing is due at the first instant")
	now = now.Add(250 * time.Millisecond)
	for seq := uint64(0); seq < 3; seq++ {
		em.Reset()
		ok, err = s.Next(seq, &em)
		require.NoError(t, err)
		assert.True(t, ok, "seq %d due after 250 ms at 10/s", seq)
	}
	ok, _ = s.Next(3, &em)
	assert.False(t, ok, "seq 3 is due at 300 ms")

	snap, err := s.Snapshot()
	require.NoError(t, err)
	moved := &SentenceSpout{rate: 10, now: clock}
	require.NoError(t, moved.Restore(snap))
	now = now.Add(10 * time.Second)
	ok, _ = moved.Next(100, &em)
	assert.True(t, ok, "the backlog of 10 s is due at once after a move")
	ok, _ = moved.Next(103, &em)
	assert.False(t, ok)
	assert.Error(t, moved.Restore([]byte{0xff}))
}

// slowStore is a replicated store's shape: every write takes a consensus
// round, whatever it carries, and some fail.
type slowStore struct {
	*engine.MemStateStore
	mu              sync.Mutex
	batches, saves  int
	failEvery, took int
}

func (s *slowStore) SaveBatch(ctx context.Context, cps map[int32][]byte) map[int32]error {
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	s.batches++
	fail := s.failEvery > 0 && s.batches%s.failEvery == 0
	s.mu.Unlock()
	errs := map[int32]error{}
	for task, data := range cps {
		if fail {
			errs[task] = errors.New("no quorum")
			continue
		}
		s.mu.Lock()
		s.saves++
		s.mu.Unlock()
		errs[task] = s.MemStateStore.Save(ctx, task, data)
	}
	return errs
}

// Checkpoints go to the store off the tasks' goroutines, a worker's waiting
// ones together in one write; failed writes are retried by the next round.
// Counts stay exact, and a write carries many tasks' checkpoints.
func TestWordCountExactWithSlowBatchingStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Lecture(1000)
	cfg.FailRate = 0.01
	tp, err := Build(cfg)
	require.NoError(t, err)
	store := &slowStore{MemStateStore: engine.NewMemStateStore(), failEvery: 7}
	runLocal(t, ctx, tp, cfg.PerSpout, store, engine.WithAcking(2*time.Second, 200), engine.WithCheckpointEvery(50*time.Millisecond))

	sink, per := results(t, ctx, store, tp)
	checkExact(t, Expected(cfg.Spouts, cfg.PerSpout), sink, per)
	store.mu.Lock()
	defer store.mu.Unlock()
	assert.Greater(t, float64(store.saves)/float64(store.batches), 2.0,
		"checkpoints per write (%d in %d writes)", store.saves, store.batches)
}
