package wordcount

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/engine"
)

// TestWordCountAcrossTwoWorkers splits the tasks over two workers joined by
// loopback TCP, with a fixed assignment.
func TestWordCountAcrossTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const perSpout = 1000
	cfg := Lecture(perSpout)
	cfg.FailRate = 0.01
	tp, err := Build(cfg)
	require.NoError(t, err)
	store := engine.NewMemStateStore()

	a := engine.Assignment{Version: 1, Tasks: map[int32]string{}, Addrs: map[string]string{}}
	wctx, stop := context.WithCancel(ctx)
	var workers []*engine.Worker
	for _, id := range []string{"w1", "w2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		a.Addrs[id] = ln.Addr().String()
		workers = append(workers, engine.Start(wctx, id, tp, ln,
			engine.WithAcking(time.Second, 200), engine.WithStateStore(store),
			engine.WithCheckpointEvery(50*time.Millisecond)))
	}
	for id := int32(1); id <= int32(tp.NumTasks()+2); id++ {
		a.Tasks[id] = workers[id%2].ID()
	}
	for _, w := range workers {
		require.NoError(t, w.Apply(a))
	}
	waitDone(t, ctx, store, tp, perSpout)
	stop()
	for _, w := range workers {
		w.Wait()
	}
	sink, per := results(t, ctx, store, tp)
	checkExact(t, Expected(cfg.Spouts, perSpout), sink, per)
}
