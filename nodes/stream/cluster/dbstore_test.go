package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbtest"
	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/wordcount"
)

// A master keeping its assignment and the checkpoints in the db can be
// replaced by a new one that takes over both: the state outlives it.
func TestMasterStateSurvivesInTheDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := dbtest.OneNode(t)
	dead := "http://" + deadAddr(t)
	store, err := NewDBStore([]string{dead, url}, "stream/")
	require.NoError(t, err)

	a, err := store.Assignments().Load(ctx)
	require.NoError(t, err)
	assert.Zero(t, a.Version, "nothing stored yet")
	want := engine.Assignment{Version: 3, Tasks: map[int32]string{1: "w1", 2: "w2"}, Addrs: map[string]string{"w1": "a:1", "w2": "b:1"}}
	require.NoError(t, store.Assignments().Save(ctx, want))
	data, err := store.States().Load(ctx, 7)
	require.NoError(t, err)
	assert.Nil(t, data)
	require.NoError(t, store.States().Save(ctx, 7, []byte{0, 1, 2, 255}))

	// A new master on a new store finds both.
	again, err := NewDBStore([]string{url}, "stream/")
	require.NoError(t, err)
	tp, err := wordcount.Build(wordcount.Lecture(10))
	require.NoError(t, err)
	m := NewMaster(tp, again.Assignments(), again.States(), WithHeartbeatTimeout(time.Second))
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	require.Eventually(t, func() bool { return m.Assignment().Version == 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, want, m.Assignment(), "no worker has checked in: nothing moved yet")
	data, err = again.States().Load(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2, 255}, data)
	stop()
	require.NoError(t, <-done)

	_, err = NewDBStore(nil, "x")
	assert.Error(t, err)
	none, err := NewDBStore([]string{dead}, "x")
	require.NoError(t, err)
	_, err = none.Assignments().Load(ctx)
	assert.ErrorContains(t, err, "every db node failed")
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// A worker's checkpoints land only for the tasks the stored assignment gives
// it: once the master moves a task, the old owner's writes of it fail, in
// the same batch as its other tasks' writes, which still land.
func TestWorkerCheckpointsAreFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := dbtest.OneNode(t)
	master, err := NewDBStore([]string{url}, "s/")
	require.NoError(t, err)
	w1, err := NewDBStore([]string{url}, "s/", WithOwner("w1"))
	require.NoError(t, err)

	errs := w1.States().SaveBatch(ctx, map[int32][]byte{1: {1}})
	assert.ErrorIs(t, errs[1], ErrFenced, "no assignment yet: nobody owns task 1")

	a := engine.Assignment{Version: 1, Tasks: map[int32]string{1: "w1", 2: "w1", 3: "w2"}, Addrs: map[string]string{"w1": "a", "w2": "b"}}
	require.NoError(t, master.Assignments().Save(ctx, a))
	assert.Empty(t, compact(w1.States().SaveBatch(ctx, map[int32][]byte{1: {1}, 2: {2}})))

	a.Version, a.Tasks[1] = 2, "w2"
	require.NoError(t, master.Assignments().Save(ctx, a))
	errs = compact(w1.States().SaveBatch(ctx, map[int32][]byte{1: {10}, 2: {20}, 3: {30}}))
	assert.ErrorIs(t, errs[1], ErrFenced)
	assert.ErrorIs(t, errs[3], ErrFenced)
	assert.NotContains(t, errs, int32(2))
	for task, want := range map[int32][]byte{1: {1}, 2: {20}, 3: nil} {
		got, err := master.States().Load(ctx, task)
		require.NoError(t, err)
		assert.Equal(t, want, got, "task %d", task)
	}
}

// compact drops the nil entries of a SaveBatch result.
func compact(errs map[int32]error) map[int32]error {
	out := map[int32]error{}
	for k, v := range errs {
		if v != nil {
			out[k] = v
		}
	}
	return out
}
