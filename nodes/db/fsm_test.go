package db

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

func cmdLog(t *testing.T, idx uint64, ops ...dbclient.Op) *raft.Log {
	t.Helper()
	data, err := encodeCommand(command{reqID: idx, ops: ops})
	require.NoError(t, err)
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
}

func put(k, v string) dbclient.Op { return dbclient.Op{Op: dbclient.OpPut, Key: k, Value: v} }

func casVersion(k, v string, expected uint64) dbclient.Op {
	return dbclient.Op{Op: dbclient.OpCAS, Key: k, Value: v, ExpectedVersion: &expected}
}

func openTestFSM(t *testing.T, name string) *fsm {
	t.Helper()
	f, err := openFSM(filepath.Join(t.TempDir(), name), false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func dump(t *testing.T, f *fsm, keys ...string) map[string]dbclient.Entry {
	t.Helper()
	out := map[string]dbclient.Entry{}
	for _, k := range keys {
		e, ok, err := f.get(k)
		require.NoError(t, err)
		if ok {
			out[k] = e
		}
	}
	return out
}

// history: k written at 1, CAS'd at 2 (expects version 1), overwritten at 3.
func history(t *testing.T) []*raft.Log {
	return []*raft.Log{
		cmdLog(t, 1, put("k", "a")),
		cmdLog(t, 2, casVersion("k", "b", 1)),
		cmdLog(t, 3, put("k", "c"), put("other", "x")),
	}
}

func TestFSMReplaySkipsAppliedEntries(t *testing.T) {
	f := openTestFSM(t, "state.db")
	res := f.ApplyBatch(history(t))
	require.True(t, res[1].(applyResult).res.OK, "the CAS matched the first time")
	want := dump(t, f, "k", "other")
	require.Equal(t, dbclient.Entry{Key: "k", Value: "c", Version: 3}, want["k"])

	// Raft replays its log onto the persistent state after a restart. If
	// the CAS at 2 were re-run against k@3 it would fail and the put at 1
	// would leave k=a@1 behind: the state must not move.
	require.NoError(t, f.Close())
	require.NoError(t, f.open())
	require.EqualValues(t, 3, f.appliedIndex())
	for _, l := range history(t) {
		require.Nil(t, f.Apply(l))
	}
	require.Equal(t, want, dump(t, f, "k", "other"))
}

func TestFSMNonCommandEntriesAdvanceIndex(t *testing.T) {
	f := openTestFSM(t, "state.db")
	f.ApplyBatch([]*raft.Log{
		cmdLog(t, 1, put("k", "a")),
		{Index: 2, Type: raft.LogConfiguration},
	})
	require.EqualValues(t, 2, f.appliedIndex())
	res := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: []byte("garbage!{")})
	require.Error(t, res.(applyResult).err)
	require.EqualValues(t, 3, f.appliedIndex(), "a bad entry is still consumed, the same on every replica")
}

func TestFSMSnapshotRestore(t *testing.T) {
	src := openTestFSM(t, "src.db")
	src.ApplyBatch(history(t))
	snap, err := src.Snapshot()
	require.NoError(t, err)
	// Writes after the snapshot point must not leak into it.
	src.Apply(cmdLog(t, 4, put("late", "no")))

	store := raft.NewInmemSnapshotStore()
	sink, err := store.Create(raft.SnapshotVersionMax, 3, 1, raft.Configuration{}, 1, nil)
	require.NoError(t, err)
	require.NoError(t, snap.Persist(sink))
	snap.Release()
	_, rc, err := store.Open(sink.ID())
	require.NoError(t, err)

	dst := openTestFSM(t, "dst.db")
	dst.Apply(cmdLog(t, 1, put("only-in-dst", "gone after restore")))
	require.NoError(t, dst.Restore(rc))
	require.EqualValues(t, 3, dst.appliedIndex())
	require.Equal(t, map[string]dbclient.Entry{
		"k":     {Key: "k", Value: "c", Version: 3},
		"other": {Key: "other", Value: "x", Version: 3},
	}, dump(t, dst, "k", "other", "late", "only-in-dst"))

	// The restored state keeps applying from where the snapshot ended.
	dst.Apply(cmdLog(t, 4, casVersion("k", "d", 3)))
	e, ok, err := dst.get("k")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, dbclient.Entry{Key: "k", Value: "d", Version: 4}, e)
}

func TestFSMWaitApplied(t *testing.T) {
	f := openTestFSM(t, "state.db")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, f.waitApplied(ctx, 1), context.Canceled)
	done := make(chan error, 1)
	go func() { done <- f.waitApplied(context.Background(), 2) }()
	f.Apply(cmdLog(t, 1, put("a", "1")))
	f.Apply(cmdLog(t, 2, put("b", "2")))
	require.NoError(t, <-done)
}

func TestEarlyAckStoreSignalsOnlyWaiters(t *testing.T) {
	inner := raft.NewInmemStore()
	s := newEarlyAckStore(inner)
	ch, unregister := s.register(7)
	defer unregister()
	logs := []*raft.Log{cmdLog(t, 10, put("a", "1")), cmdLog(t, 11, put("b", "2"))}
	logs[1].Data, _ = encodeCommand(command{reqID: 7, ops: []dbclient.Op{put("b", "2")}})
	require.NoError(t, s.StoreLogs(logs))
	require.EqualValues(t, 11, <-ch)
	last, err := inner.LastIndex()
	require.NoError(t, err)
	require.EqualValues(t, 11, last, "entries reach the wrapped store")
}
