package cluster

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
	"github.com/faultline/faultline/nodes/stream/wordcount"
)

type testWorker struct {
	w    *engine.Worker
	stop context.CancelFunc
	errc <-chan error
}

func startWorker(t *testing.T, ctx context.Context, tp *topo.Topology, id, master string) *testWorker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	w, errc := RunWorker(wctx, tp, WorkerConfig{
		ID: id, Master: master, Listener: ln, Every: 50 * time.Millisecond,
		Engine: []engine.Option{engine.WithAcking(time.Second, 200), engine.WithCheckpointEvery(50 * time.Millisecond)},
	})
	return &testWorker{w: w, stop: stop, errc: errc}
}

func (tw *testWorker) kill(t *testing.T) {
	tw.stop()
	require.NoError(t, <-tw.errc)
}

func watermarks(t *testing.T, ctx context.Context, store engine.StateStore, tp *topo.Topology) []uint64 {
	var out []uint64
	for _, id := range tp.Component("sentences").Tasks {
		data, err := store.Load(ctx, id)
		require.NoError(t, err)
		w, err := engine.SpoutWatermark(data)
		require.NoError(t, err)
		out = append(out, w)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillWorkerMidRun runs word count on three workers, kills one while
// messages are in flight, and checks that the master moved its tasks and
// that the counts still come out exact.
func TestKillWorkerMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const perSpout = 3000
	cfg := wordcount.Lecture(perSpout)
	tp, err := wordcount.Build(cfg)
	require.NoError(t, err)

	states := engine.NewMemStateStore()
	m := NewMaster(tp, &MemAssignmentStore{}, states, WithMinWorkers(3), WithHeartbeatTimeout(time.Second))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	mctx, stopMaster := context.WithCancel(ctx)
	merr := make(chan error, 1)
	go func() { merr <- m.Run(mctx) }()

	workers := map[string]*testWorker{}
	for _, id := range []string{"w1", "w2", "w3"} {
		workers[id] = startWorker(t, ctx, tp, id, srv.URL)
	}
	waitFor(t, "first assignment", func() bool { return m.Assignment().Version > 0 })
	before := m.Assignment()
	var victimTasks []int32
	for task, w := range before.Tasks {
		if w == "w2" {
			victimTasks = append(victimTasks, task)
		}
	}
	require.NotEmpty(t, victimTasks)

	waitFor(t, "some progress", func() bool {
		var sum uint64
		for _, w := range watermarks(t, ctx, states, tp) {
			sum += w
		}
		return sum > perSpout // about a fifth of the input
	})
	workers["w2"].kill(t)

	waitFor(t, "reassignment", func() bool {
		for _, w := range m.Assignment().Tasks {
			if w == "w2" {
				return false
			}
		}
		return true
	})
	waitFor(t, "every message acked", func() bool {
		for _, w := range watermarks(t, ctx, states, tp) {
			if w != perSpout {
				return false
			}
		}
		return true
	})
	after := m.Assignment()
	running := map[int32]string{}
	for _, id := range []string{"w1", "w3"} {
		for _, task := range workers[id].w.Tasks() {
			running[task] = id
		}
	}
	for _, task := range victimTasks {
		assert.Contains(t, []string{"w1", "w3"}, after.Tasks[task], "task %d moved to a live worker", task)
		assert.Equal(t, after.Tasks[task], running[task], "task %d runs where the master put it", task)
	}
	// A loaded machine can make a live worker miss heartbeats too, so other
	// moves are allowed; the killed worker's must be there.
	var fromVictim []Move
	for _, mv := range m.Moves() {
		if mv.From == "w2" {
			fromVictim = append(fromVictim, mv)
		}
	}
	require.Len(t, fromVictim, 1)
	assert.Equal(t, len(victimTasks), fromVictim[0].Tasks)

	sinkData, err := states.Load(ctx, tp.Component("sink").Tasks[0])
	require.NoError(t, err)
	snap, err := engine.BoltSnapshot(sinkData)
	require.NoError(t, err)
	got, err := wordcount.DecodeCounts(snap)
	require.NoError(t, err)
	assert.Equal(t, wordcount.Expected(cfg.Spouts, perSpout), got)

	var replayed int64
	for id, w := range workers {
		if id != "w2" {
			replayed += w.w.Stats.Replayed.Load()
			w.kill(t)
		}
	}
	t.Logf("moved %d tasks, replayed %d messages on the survivors", len(victimTasks), replayed)
	stopMaster()
	require.NoError(t, <-merr)
}
