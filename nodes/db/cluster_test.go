package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// settle bounds every wait in these tests: generous, because a 2-core
// machine running -race with other builds can stall raft for a while.
const settle = 30 * time.Second

// testNode is one member of an in-process cluster: real TCP transport on
// 127.0.0.1, real bolt stores in a temp dir, real HTTP server.
type testNode struct {
	cfg      Config
	httpAddr string
	node     *Node
	srv      *http.Server
	client   *dbclient.Client
}

type cluster struct {
	t     testing.TB
	nodes []*testNode
}

type clusterOpt func(i int, c *Config)

// newCluster starts n nodes; node 0 bootstraps and the others join it.
func newCluster(t testing.TB, n int, opts ...clusterOpt) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var raftLns, httpLns []net.Listener
	var peers []Peer
	for i := range n {
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		raftLns, httpLns = append(raftLns, rl), append(httpLns, hl)
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: rl.Addr().String(), HTTPAddr: hl.Addr().String()})
	}
	dir := t.TempDir()
	for i := range n {
		cfg := Config{
			ID:        peers[i].ID,
			RaftAddr:  peers[i].RaftAddr,
			DataDir:   filepath.Join(dir, peers[i].ID),
			Peers:     peers,
			Voter:     true,
			Bootstrap: i == 0,
			Fsync:     true,
			Logger:    hclog.NewNullLogger(),
		}
		for _, o := range opts {
			o(i, &cfg)
		}
		tn := &testNode{cfg: cfg, httpAddr: peers[i].HTTPAddr}
		tn.client = dbclient.New("http://" + tn.httpAddr)
		c.nodes = append(c.nodes, tn)
		c.serve(i, raftLns[i], httpLns[i])
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitMembers(n)
	return c
}

func (c *cluster) serve(i int, raftLn, httpLn net.Listener) {
	c.t.Helper()
	tn := c.nodes[i]
	node, err := Start(tn.cfg, raftLn)
	require.NoError(c.t, err)
	tn.node = node
	tn.srv = &http.Server{Handler: node.Handler()}
	go func() { _ = tn.srv.Serve(httpLn) }()
}

// stop kills node i the way a crash would look to its peers (no leadership
// hand-over); its data dir stays for a restart.
func (c *cluster) stop(i int) {
	tn := c.nodes[i]
	if tn.node == nil {
		return
	}
	_ = tn.srv.Close()
	require.NoError(c.t, tn.node.Close())
	tn.node, tn.srv = nil, nil
}

// restart starts node i again on the same addresses and data dir.
func (c *cluster) restart(i int) {
	c.t.Helper()
	tn := c.nodes[i]
	rl, err := net.Listen("tcp", tn.cfg.RaftAddr)
	require.NoError(c.t, err)
	hl, err := net.Listen("tcp", tn.httpAddr)
	require.NoError(c.t, err)
	c.serve(i, rl, hl)
}

// leader waits until exactly one running node leads and every running
// node agrees on it, and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	idx := -1
	require.Eventually(c.t, func() bool {
		idx = -1
		var leaderID string
		for i, tn := range c.nodes {
			if tn.node == nil {
				continue
			}
			st := tn.node.Status()
			if st.Role == "leader" {
				if idx >= 0 {
					return false
				}
				idx = i
			}
			if leaderID == "" {
				leaderID = st.LeaderID
			}
			if st.LeaderID == "" || st.LeaderID != leaderID {
				return false
			}
		}
		return idx >= 0 && c.nodes[idx].cfg.ID == leaderID
	}, settle, 20*time.Millisecond, "no agreed leader")
	return idx
}

// waitMembers waits until the leader's configuration holds n servers.
func (c *cluster) waitMembers(n int) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		l := c.leader()
		f := c.nodes[l].node.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == n
	}, settle, 20*time.Millisecond, "cluster did not reach %d members", n)
}

// follower returns the index of a running node that is not the leader.
func (c *cluster) follower() int {
	l := c.leader()
	for i, tn := range c.nodes {
		if i != l && tn.node != nil && tn.cfg.Voter {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// waitApplied waits until node i has applied index idx.
func (c *cluster) waitApplied(i int, idx uint64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	require.NoError(c.t, c.nodes[i].node.fsm.waitApplied(ctx, idx))
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	t.Cleanup(cancel)
	return ctx
}

// retry repeats an idempotent request while it fails the way an election
// makes requests fail (503, or no answer), bounded by settle.
func retry[T any](t testing.TB, op func(ctx context.Context) (T, error)) (T, error) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := op(ctx)
		cancel()
		transient := statusCode(err) == http.StatusServiceUnavailable || (err != nil && statusCode(err) == 0 &&
			!errors.Is(err, dbclient.ErrNotFound) && dbclient.Indefinite(err))
		if !transient || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustPut(t testing.TB, cl *dbclient.Client, key, value string) uint64 {
	t.Helper()
	v, err := retry(t, func(ctx context.Context) (uint64, error) { return cl.Put(ctx, key, value) })
	require.NoError(t, err, "put %s", key)
	return v
}

func getRetry(t testing.TB, cl *dbclient.Client, key string, level dbclient.Consistency) (dbclient.ReadResult, error) {
	t.Helper()
	return retry(t, func(ctx context.Context) (dbclient.ReadResult, error) { return cl.Get(ctx, key, level) })
}

func statusCode(err error) int {
	var se *dbclient.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestClusterFormsWithVotersAndNonvoter(t *testing.T) {
	c := newCluster(t, 4, func(i int, cfg *Config) { cfg.Voter = i != 3 })
	l := c.leader()
	f := c.nodes[l].node.raft.GetConfiguration()
	require.NoError(t, f.Error())
	suffrage := map[string]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		suffrage[string(s.ID)] = s.Suffrage
	}
	require.Equal(t, map[string]raft.ServerSuffrage{
		"n0": raft.Voter, "n1": raft.Voter, "n2": raft.Voter, "n3": raft.Nonvoter,
	}, suffrage)

	ctx := ctxT(t)
	// A write through the non-voter reaches the leader and replicates back.
	v := mustPut(t, c.nodes[3].client, "far", "replica")
	c.waitApplied(3, v)
	got, err := c.nodes[3].client.Get(ctx, "far", dbclient.Stale)
	require.NoError(t, err)
	require.Equal(t, "replica", got.Value)
	require.Equal(t, "n3", got.ServedBy)
	st, err := c.nodes[3].client.Status(ctx)
	require.NoError(t, err)
	require.False(t, st.Voter)
	require.Equal(t, "follower", st.Role)
	require.Equal(t, c.nodes[l].cfg.ID, st.LeaderID)
}

func TestWritesThroughAnyNode(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t)
	l := c.leader()
	leaderID := c.nodes[l].cfg.ID
	for i, tn := range c.nodes {
		key := "k" + strconv.Itoa(i)
		v := mustPut(t, tn.client, key, "v"+strconv.Itoa(i))
		require.NotZero(t, v)
		for _, reader := range c.nodes {
			got, err := getRetry(t, reader.client, key, dbclient.Linearizable)
			require.NoError(t, err)
			require.Equal(t, dbclient.Entry{Key: key, Value: "v" + strconv.Itoa(i), Version: v}, got.Entry)
			require.Equal(t, leaderID, got.ServedBy, "linearizable reads are served by the leader")
			if reader == c.nodes[l] {
				require.Empty(t, got.ForwardedBy)
			} else {
				require.Equal(t, reader.cfg.ID, got.ForwardedBy)
			}
		}
	}
	v, err := c.nodes[c.follower()].client.Delete(ctx, "k0")
	require.NoError(t, err)
	require.NotZero(t, v)
	_, err = c.nodes[l].client.Get(ctx, "k0", dbclient.Leader)
	require.ErrorIs(t, err, dbclient.ErrNotFound)

	// The follower counted what it proxied.
	resp, err := http.Get("http://" + c.nodes[c.follower()].httpAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body [1 << 16]byte
	nr, _ := resp.Body.Read(body[:])
	require.Contains(t, string(body[:nr]), `faultline_db_forwarded_requests_total{kind="write"}`)
}

func TestReadLevels(t *testing.T) {
	for _, isolate := range []string{"follower", "leader"} {
		t.Run("isolated "+isolate, func(t *testing.T) {
			c := newCluster(t, 3)
			ctx := ctxT(t)
			l := c.leader()
			v := mustPut(t, c.nodes[l].client, "k", "v1")
			for i := range c.nodes {
				c.waitApplied(i, v)
			}
			f := c.follower()

			got, err := c.nodes[f].client.Get(ctx, "k", dbclient.Stale, dbclient.MaxStaleness(time.Minute))
			require.NoError(t, err)
			require.Equal(t, "v1", got.Value)
			require.Equal(t, c.nodes[f].cfg.ID, got.ServedBy, "stale reads are local")
			require.GreaterOrEqual(t, got.Staleness, time.Duration(0))
			got, err = getRetry(t, c.nodes[f].client, "k", dbclient.Leader)
			require.NoError(t, err)
			require.Equal(t, "v1", got.Value)

			// Cut the chosen node off by stopping everyone else.
			lone := f
			if isolate == "leader" {
				lone = l
			}
			for i := range c.nodes {
				if i != lone {
					c.stop(i)
				}
			}
			cl := c.nodes[lone].client
			_, err = cl.Get(ctx, "k", dbclient.Linearizable)
			require.Equal(t, http.StatusServiceUnavailable, statusCode(err), "linearizable read on a minority: %v", err)

			// The lone node stops hearing from any leader; once that is
			// older than max_staleness, bounded stale reads are refused...
			require.Eventually(t, func() bool {
				s, ok := c.nodes[lone].node.staleness()
				return ok && s > 500*time.Millisecond
			}, settle, 20*time.Millisecond)
			_, err = cl.Get(ctx, "k", dbclient.Stale, dbclient.MaxStaleness(200*time.Millisecond))
			require.Equal(t, http.StatusServiceUnavailable, statusCode(err))
			require.ErrorContains(t, err, "max_staleness")
			// ...while unbounded ones still answer and say how stale they are.
			got, err = cl.Get(ctx, "k", dbclient.Stale)
			require.NoError(t, err)
			require.Equal(t, "v1", got.Value)
			require.Greater(t, got.Staleness, 500*time.Millisecond)
		})
	}
}

func TestCAS(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t)
	cl := c.nodes[c.follower()].client
	u := func(v uint64) *uint64 { return &v }
	s := func(v string) *string { return &v }

	v1, err := cl.CAS(ctx, "reg", dbclient.CASRequest{ExpectedVersion: u(0), Value: "a"})
	require.NoError(t, err, "create if absent")

	tests := []struct {
		name     string
		req      dbclient.CASRequest
		wantOK   bool
		wantCurr string
	}{
		{"create on existing key", dbclient.CASRequest{ExpectedVersion: u(0), Value: "x"}, false, "a"},
		{"wrong version", dbclient.CASRequest{ExpectedVersion: u(v1 + 1000), Value: "x"}, false, "a"},
		{"wrong value", dbclient.CASRequest{ExpectedValue: s("zzz"), Value: "x"}, false, "a"},
		{"right version wrong value", dbclient.CASRequest{ExpectedVersion: u(v1), ExpectedValue: s("zzz"), Value: "x"}, false, "a"},
		{"right value", dbclient.CASRequest{ExpectedValue: s("a"), Value: "b"}, true, ""},
		{"old version after a write", dbclient.CASRequest{ExpectedVersion: u(v1), Value: "x"}, false, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := getRetry(t, cl, "reg", dbclient.Linearizable)
			require.NoError(t, err)
			v, err := cl.CAS(ctx, "reg", tt.req)
			after, gerr := getRetry(t, cl, "reg", dbclient.Linearizable)
			require.NoError(t, gerr)
			if tt.wantOK {
				require.NoError(t, err)
				require.Equal(t, dbclient.Entry{Key: "reg", Value: tt.req.Value, Version: v}, after.Entry)
				return
			}
			var ce *dbclient.ConflictError
			require.ErrorAs(t, err, &ce)
			require.False(t, dbclient.Indefinite(err))
			require.Equal(t, tt.wantCurr, ce.Current.Value)
			require.Equal(t, before.Entry, after.Entry, "a failed CAS writes nothing")
		})
	}

	_, err = cl.CAS(ctx, "reg", dbclient.CASRequest{Value: "no expectation"})
	require.Equal(t, http.StatusBadRequest, statusCode(err))
}

func TestBatchIsAtomic(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t)
	cl := c.nodes[c.follower()].client
	_, err := cl.Put(ctx, "gone", "soon")
	require.NoError(t, err)
	zero := uint64(0)

	v, err := cl.Batch(ctx, []dbclient.Op{
		{Op: dbclient.OpPut, Key: "a", Value: "1"},
		{Op: dbclient.OpPut, Key: "b", Value: "2"},
		{Op: dbclient.OpDelete, Key: "gone"},
		{Op: dbclient.OpCAS, Key: "c", Value: "3", ExpectedVersion: &zero},
	})
	require.NoError(t, err)
	for key, want := range map[string]string{"a": "1", "b": "2", "c": "3"} {
		got, err := getRetry(t, cl, key, dbclient.Linearizable)
		require.NoError(t, err)
		require.Equal(t, dbclient.Entry{Key: key, Value: want, Version: v}, got.Entry, "one entry, one version")
	}
	_, err = getRetry(t, cl, "gone", dbclient.Linearizable)
	require.ErrorIs(t, err, dbclient.ErrNotFound)

	// The last op fails, so none of the earlier ones may show.
	_, err = cl.Batch(ctx, []dbclient.Op{
		{Op: dbclient.OpPut, Key: "a", Value: "changed"},
		{Op: dbclient.OpDelete, Key: "b"},
		{Op: dbclient.OpPut, Key: "new", Value: "x"},
		{Op: dbclient.OpCAS, Key: "c", Value: "4", ExpectedVersion: &zero},
	})
	var ce *dbclient.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "c", ce.Current.Key)
	for key, want := range map[string]string{"a": "1", "b": "2", "c": "3"} {
		got, err := getRetry(t, cl, key, dbclient.Linearizable)
		require.NoError(t, err)
		require.Equal(t, dbclient.Entry{Key: key, Value: want, Version: v}, got.Entry)
	}
	_, err = getRetry(t, cl, "new", dbclient.Linearizable)
	require.ErrorIs(t, err, dbclient.ErrNotFound)

	// A CAS may depend on an earlier op of the same batch.
	v2, err := cl.Batch(ctx, []dbclient.Op{
		{Op: dbclient.OpDelete, Key: "a"},
		{Op: dbclient.OpCAS, Key: "a", Value: "again", ExpectedVersion: &zero},
	})
	require.NoError(t, err)
	got, err := getRetry(t, cl, "a", dbclient.Linearizable)
	require.NoError(t, err)
	require.Equal(t, dbclient.Entry{Key: "a", Value: "again", Version: v2}, got.Entry)
}

func TestSnapshotRestoreAndCatchUp(t *testing.T) {
	c := newCluster(t, 3, func(_ int, cfg *Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
	})
	ctx := ctxT(t)
	l := c.leader()
	lagging := c.follower()
	stoppedAt := c.nodes[lagging].node.raft.LastIndex()
	c.stop(lagging)

	const keys = 150
	var last uint64
	for i := range keys {
		last = mustPut(t, c.nodes[l].client, fmt.Sprintf("key-%03d", i), strconv.Itoa(i))
	}
	require.NoError(t, c.nodes[l].node.Snapshot())
	first, err := c.nodes[l].node.logs.FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, stoppedAt+1, "the leader compacted the entries the stopped node lacks, so only a snapshot can catch it up")

	c.restart(lagging)
	c.waitApplied(lagging, last)
	for i := range keys {
		got, err := c.nodes[lagging].client.Get(ctx, fmt.Sprintf("key-%03d", i), dbclient.Stale)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), got.Value)
	}

	// A whole-cluster restart comes back from disk with the same state.
	for i := range c.nodes {
		c.stop(i)
	}
	for i := range c.nodes {
		c.restart(i)
	}
	nl := c.leader()
	for i := range keys {
		got, err := getRetry(t, c.nodes[nl].client, fmt.Sprintf("key-%03d", i), dbclient.Linearizable)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), got.Value)
	}
}

// TestLeaderKillLosesNoAcknowledgedWrite writes through a follower while
// the leader is killed half-way; every write that was acknowledged must be
// readable from the new leader.
func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t)
	old := c.leader()
	oldID := c.nodes[old].cfg.ID
	acked := map[string]string{}
	const writes = 60
	for i := range writes {
		if i == writes/2 {
			c.stop(old)
		}
		key, val := fmt.Sprintf("w%02d", i), strconv.Itoa(i)
		// Bounded retries: during the election writes fail (definitely or
		// not); a write counts only once it is acknowledged.
		for range 200 {
			var alive *testNode
			for j, tn := range c.nodes {
				if j != old && tn.node != nil {
					alive = tn
					break
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := alive.client.Put(wctx, key, val)
			cancel()
			if err == nil {
				acked[key] = val
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.Len(t, acked, writes, "the survivors kept accepting writes")
	nl := c.leader()
	require.NotEqual(t, oldID, c.nodes[nl].cfg.ID)
	for key, val := range acked {
		got, err := getRetry(t, c.nodes[nl].client, key, dbclient.Linearizable)
		require.NoError(t, err, key)
		require.Equal(t, val, got.Value)
	}

	// The killed leader rejoins and catches up.
	c.restart(old)
	c.waitApplied(old, c.nodes[nl].node.fsm.appliedIndex())
	got, err := c.nodes[old].client.Get(ctx, fmt.Sprintf("w%02d", writes-1), dbclient.Stale)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(writes-1), got.Value)
}

// TestUnsafeAckLosesAcknowledgedWrite cuts the leader off, writes to it and
// kills it. Safe mode never acknowledges that write; with
// --unsafe-ack-before-commit it is acknowledged and then lost, which is
// what faultline's lost-write checker must catch.
func TestUnsafeAckLosesAcknowledgedWrite(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsafe=%v", unsafe), func(t *testing.T) {
			c := newCluster(t, 3, func(_ int, cfg *Config) {
				cfg.UnsafeAckBeforeCommit = unsafe
				// A 1 s leader lease leaves the cut-off leader time to take
				// the write before it notices it lost its quorum.
				cfg.RTT = 200 * time.Millisecond
			})
			ctx := ctxT(t)
			l := c.leader()
			// In unsafe mode even this ack comes early: wait until every
			// node has applied it, so it is really committed.
			before := mustPut(t, c.nodes[l].client, "before", "committed")
			for i := range c.nodes {
				c.waitApplied(i, before)
			}
			var followers []int
			for i := range c.nodes {
				if i != l {
					followers = append(followers, i)
					c.stop(i)
				}
			}

			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.nodes[l].client.Put(wctx, "doomed", "acked?")
			cancel()
			if unsafe {
				require.NoError(t, err, "unsafe mode acknowledges before the quorum has the entry")
			} else {
				require.Error(t, err)
				require.True(t, dbclient.Indefinite(err), "the entry reached the leader's log, so the outcome is unknown: %v", err)
			}

			c.stop(l)
			for _, i := range followers {
				c.restart(i)
			}
			nl := c.leader()
			require.NotEqual(t, l, nl)
			got, err := getRetry(t, c.nodes[nl].client, "before", dbclient.Linearizable)
			require.NoError(t, err)
			require.Equal(t, "committed", got.Value)
			_, err = getRetry(t, c.nodes[nl].client, "doomed", dbclient.Linearizable)
			require.ErrorIs(t, err, dbclient.ErrNotFound, "the write only the old leader had is gone")
		})
	}
}
