package wordcount

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/broker"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/stream/engine"
)

// oneBroker starts a single broker (its own controller) on loopback.
func oneBroker(t *testing.T) *client.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b, err := broker.Start(broker.Config{ID: 1, Listener: ln, Advertise: ln.Addr().String(), RaftListener: rln, RaftAdvertise: rln.Addr().String(),
		Peers: map[int32]broker.Peer{1: {Raft: rln.Addr().String(), Addr: ln.Addr().String()}}, Dir: t.TempDir(),
		RaftNoSync: true, RaftTimeout: 500 * time.Millisecond, Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	c := client.New([]string{ln.Addr().String()})
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		require.NoError(t, b.Close())
	})
	// A topic can be created once the controller counts the broker live.
	require.Eventually(t, func() bool {
		md, err := c.Refresh(context.Background())
		return err == nil && len(md.Brokers) == 1
	}, 30*time.Second, 20*time.Millisecond, "broker registered")
	return c
}

// Word count fed by a broker topic, with bolts failing tuples on purpose:
// every sentence fed is read by offset, replays re-read the same records,
// and the counts equal those of the topic's contents.
func TestWordCountFromBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := oneBroker(t)
	const perSpout = 300
	cfg := Lecture(perSpout)
	cfg.FailRate = 0.01
	cfg.Source = SourceBroker(c, "sentences")
	require.NoError(t, c.CreateTopic(ctx, "sentences", client.TopicConfig{Partitions: int32(cfg.Spouts), ReplicationFactor: 1}))
	require.NoError(t, Feed(ctx, c, "sentences", cfg.Spouts, perSpout, 0))
	want, ends, err := CountTopic(ctx, c, "sentences", cfg.Spouts, perSpout)
	require.NoError(t, err)
	assert.Equal(t, Expected(cfg.Spouts, perSpout), want, "nothing failed, so the topic holds each sentence once")
	assert.Equal(t, []int64{perSpout, perSpout, perSpout, perSpout, perSpout}, ends)
	require.NoError(t, Feed(ctx, c, "sentences", cfg.Spouts, perSpout, 0), "a feeder started again")
	_, ends, err = CountTopic(ctx, c, "sentences", cfg.Spouts, 0)
	require.NoError(t, err)
	assert.Equal(t, []int64{perSpout, perSpout, perSpout, perSpout, perSpout}, ends, "carries on where the partitions end")

	tp, err := Build(cfg)
	require.NoError(t, err)
	store := engine.NewMemStateStore()
	wctx, stop := context.WithCancel(ctx)
	w := engine.Start(wctx, "local", tp, nil, engine.WithAcking(time.Second, 200), engine.WithStateStore(store),
		engine.WithCheckpointEvery(50*time.Millisecond))
	require.NoError(t, w.Apply(engine.LocalAssignment(tp, 2, "local")))
	waitDone(t, ctx, store, tp, perSpout)
	stop()
	w.Wait()
	sink, per := results(t, ctx, store, tp)
	checkExact(t, want, sink, per)
	assert.Positive(t, w.Stats.Replayed.Load(), "failed tuples were replayed from the topic")
}
