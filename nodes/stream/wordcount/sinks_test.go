package wordcount

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/db/dbtest"
	"github.com/faultline/faultline/nodes/stream/engine"
)

// flakyOutside upserts counts, refusing every third write.
type flakyOutside struct {
	mu     sync.Mutex
	writes int
	counts map[string]int64
}

func (f *flakyOutside) WriteCounts(_ context.Context, counts map[string]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.writes%3 == 0 {
		return errors.New("outside unavailable")
	}
	maps.Copy(f.counts, counts)
	return nil
}

// What the sink writes out ends exact, through failed writes and replays:
// a failed write holds the checkpoint (and its acks) back until one works.
func TestSinkWritesOutExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	outside := &flakyOutside{counts: map[string]int64{}}
	cfg := Lecture(1000)
	cfg.FailRate, cfg.Sink = 0.01, outside
	tp, err := Build(cfg)
	require.NoError(t, err)
	runLocal(t, ctx, tp, cfg.PerSpout, engine.NewMemStateStore(), engine.WithAcking(time.Second, 200), engine.WithCheckpointEvery(20*time.Millisecond))

	outside.mu.Lock()
	defer outside.mu.Unlock()
	assert.Equal(t, Expected(cfg.Spouts, cfg.PerSpout), outside.counts)
	assert.GreaterOrEqual(t, outside.writes, 3, "some writes failed")
}

func TestConsoleSink(t *testing.T) {
	var out bytes.Buffer
	c := Console{W: &out, Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }}
	require.NoError(t, c.WriteCounts(context.Background(), map[string]int64{"moon": 3, "cow": 12}))
	assert.Equal(t, "2026-11-27T12:00:00Z wordcount: cow=12 moon=3\n", out.String())
}

func TestDBSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := dbtest.OneNode(t)
	m, err := dbclient.NewMulti([]string{url}, 2*time.Second)
	require.NoError(t, err)
	sink := DB{Nodes: m}
	require.NoError(t, sink.WriteCounts(ctx, map[string]int64{"cow": 1, "moon": 2}))
	require.NoError(t, sink.WriteCounts(ctx, map[string]int64{"cow": 5}))
	for w, want := range map[string]int64{"cow": 5, "moon": 2} {
		r, err := dbclient.New(url).Get(ctx, DBKeyPrefix+w, dbclient.Linearizable)
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatInt(want, 10), r.Value, w)
	}
}
