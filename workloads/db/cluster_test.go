package db_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/checkers/failover"
	"github.com/faultline/faultline/checkers/linearizable"
	"github.com/faultline/faultline/checkers/lostwrites"
	"github.com/faultline/faultline/checkers/staleness"
	"github.com/faultline/faultline/loadgen"
	dbnode "github.com/faultline/faultline/nodes/db"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// settle bounds every wait: generous, because -race on a busy 2-core
// machine can stall raft for a while.
const settle = 30 * time.Second

// cluster is an in-process db cluster on loopback: real raft over TCP,
// real bolt stores, real HTTP servers.
type cluster struct {
	t     *testing.T
	cfgs  []dbnode.Config
	http  []string
	nodes []*dbnode.Node
	srvs  []*http.Server
}

// newCluster starts n voters; rtt scales raft's timeouts (0: the floors,
// a 1 s heartbeat timeout and 500 ms lease).
func newCluster(t *testing.T, n int, rtt time.Duration, unsafe bool) *cluster {
	c := &cluster{t: t}
	var raftLns, httpLns []net.Listener
	var peers []dbnode.Peer
	for i := range n {
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		raftLns, httpLns = append(raftLns, rl), append(httpLns, hl)
		peers = append(peers, dbnode.Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: rl.Addr().String(), HTTPAddr: hl.Addr().String()})
		c.http = append(c.http, hl.Addr().String())
	}
	dir := t.TempDir()
	for i := range n {
		c.cfgs = append(c.cfgs, dbnode.Config{
			ID: peers[i].ID, RaftAddr: peers[i].RaftAddr, DataDir: filepath.Join(dir, peers[i].ID),
			Peers: peers, Voter: true, Bootstrap: i == 0, Fsync: true,
			UnsafeAckBeforeCommit: unsafe, RTT: rtt, Logger: hclog.NewNullLogger(),
		})
		c.nodes, c.srvs = append(c.nodes, nil), append(c.srvs, nil)
		c.serve(i, raftLns[i], httpLns[i])
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	require.Eventually(t, func() bool {
		l := c.leader()
		return l >= 0 && c.nodes[l].Status().CommitIndex > 0 && c.allApplied(n)
	}, settle, 20*time.Millisecond, "cluster did not form")
	return c
}

func (c *cluster) serve(i int, raftLn, httpLn net.Listener) {
	node, err := dbnode.Start(c.cfgs[i], raftLn)
	require.NoError(c.t, err)
	srv := &http.Server{Handler: node.Handler()}
	c.nodes[i], c.srvs[i] = node, srv
	go func() { _ = srv.Serve(httpLn) }()
}

// stop kills node i as a crash would look to its peers.
func (c *cluster) stop(i int) {
	if c.nodes[i] == nil {
		return
	}
	_ = c.srvs[i].Close()
	require.NoError(c.t, c.nodes[i].Close())
	c.nodes[i], c.srvs[i] = nil, nil
}

func (c *cluster) restart(i int) {
	rl, err := net.Listen("tcp", c.cfgs[i].RaftAddr)
	require.NoError(c.t, err)
	hl, err := net.Listen("tcp", c.http[i])
	require.NoError(c.t, err)
	c.serve(i, rl, hl)
}

// leader is the index of the running node every running node names as
// leader, or -1.
func (c *cluster) leader() int {
	idx, id := -1, ""
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		st := n.Status()
		if st.LeaderID == "" || (id != "" && st.LeaderID != id) {
			return -1
		}
		id = st.LeaderID
		if st.Role == "leader" {
			idx = i
		}
	}
	return idx
}

func (c *cluster) waitLeader() int {
	c.t.Helper()
	l := -1
	require.Eventually(c.t, func() bool { l = c.leader(); return l >= 0 }, settle, 20*time.Millisecond, "no leader")
	return l
}

// allApplied: at least want running nodes, all applied to the leader's last index.
func (c *cluster) allApplied(want int) bool {
	l := c.leader()
	if l < 0 {
		return false
	}
	last, running := c.nodes[l].Status().LastIndex, 0
	for _, n := range c.nodes {
		if n != nil {
			running++
			if n.Status().AppliedIndex < last {
				return false
			}
		}
	}
	return running >= want
}

// regions gives each node its own region whose clients fall back on the
// other nodes, as clients with a replica list would.
func (c *cluster) regions() dbwork.Regions {
	r := dbwork.Regions{}
	for i := range c.http {
		var eps []string
		for j := range c.http {
			eps = append(eps, "http://"+c.http[(i+j)%len(c.http)])
		}
		r[fmt.Sprintf("region-%d", i)] = eps
	}
	return r
}

// logErrors logs how often each kind of failure happened, for whoever
// reads a failing run.
func logErrors(t *testing.T, ops []loadgen.Operation) {
	counts := map[string]int{}
	for _, op := range ops {
		if op.Error != "" {
			msg := op.Error
			if i := strings.LastIndex(msg, ": "); i >= 0 {
				msg = msg[i+2:]
			}
			counts[op.Kind+": "+msg]++
		}
	}
	t.Logf("failures: %v", counts)
}

func phase(t *testing.T, d time.Duration, run func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	run(ctx)
}

// TestSafeLeaderKill runs the register (linearizable and stale reads) and
// set workloads from three regions while the leader is killed: the history
// is linearizable, no acknowledged write is lost, and failover and stale
// read ages are measured.
func TestSafeLeaderKill(t *testing.T) {
	c := newCluster(t, 3, 0, false)
	regions := c.regions()
	reg, err := dbwork.NewRegister(regions, dbwork.WithOptions(dbwork.Clients(6)))
	require.NoError(t, err)
	staleReg, err := dbwork.NewRegister(regions, dbwork.ReadLevel(dbclient.Stale), dbwork.Mix(1, 0, 0),
		dbwork.WithOptions(dbwork.Clients(3), dbwork.Think(5*time.Millisecond)))
	require.NoError(t, err)
	set, err := dbwork.NewSet(regions, "set-", dbwork.Clients(3))
	require.NoError(t, err)

	h := &loadgen.MemHistory{}
	all := func(ctx context.Context) {
		done := make(chan struct{}, 2)
		go func() { reg.Run(ctx, h); done <- struct{}{} }()
		go func() { staleReg.Run(ctx, h); done <- struct{}{} }()
		set.Add(ctx, h)
		<-done
		<-done
	}
	phase(t, 1500*time.Millisecond, all)
	kill := time.Now()
	c.stop(c.waitLeader())
	phase(t, 5*time.Second, all)
	phase(t, settle, func(ctx context.Context) { set.ReadAll(ctx, h) })

	ops := h.Operations()
	lin, err := linearizable.Check(ops, linearizable.Visualize(filepath.Join(t.TempDir(), "lin.html")))
	require.NoError(t, err)
	lost, err := lostwrites.Check(ops)
	require.NoError(t, err)
	st, err := staleness.Check(ops)
	require.NoError(t, err)
	fo := failover.Check(ops, []time.Time{kill})
	db := checkers.NewDB(&lost, &lin, &st, &fo)
	t.Logf("ops=%d register=%+v set=%+v staleness=%+v failover=%+v", len(ops), lin, lost, st, fo)
	logErrors(t, ops)

	require.Equal(t, linearizable.Ok, lin.Result)
	require.Equal(t, true, *db.Linearizable)
	require.Zero(t, db.LostWrites)
	require.Zero(t, lost.Unread)
	require.Positive(t, lost.Acknowledged)
	require.Positive(t, st.Reads)
	require.Equal(t, 1, fo.Kills)
	require.Zero(t, fo.Unrecovered, "writes resumed after the kill")
}

// TestCutOffLeaderKill cuts the leader off (its followers stop), keeps
// writing to it, kills it and brings the followers back. Safe mode never
// acknowledges those writes; with the unsafe switch they are acknowledged
// and lost, and the checkers must say so.
func TestCutOffLeaderKill(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsafe=%v", unsafe), func(t *testing.T) {
			// A 1 s leader lease leaves the cut-off leader time to take
			// writes before it notices it lost its quorum.
			c := newCluster(t, 3, 200*time.Millisecond, unsafe)
			regions := c.regions()
			reg, err := dbwork.NewRegister(regions, dbwork.Keys("a", "b"), dbwork.Mix(1, 2, 0),
				dbwork.WithOptions(dbwork.Clients(3)))
			require.NoError(t, err)
			set, err := dbwork.NewSet(regions, "set-", dbwork.Clients(3))
			require.NoError(t, err)
			h := &loadgen.MemHistory{}
			both := func(ctx context.Context) {
				done := make(chan struct{})
				go func() { reg.Run(ctx, h); close(done) }()
				set.Add(ctx, h)
				<-done
			}

			phase(t, time.Second, both)
			// Unsafe acks come early even with every node up: wait until
			// all have the entries, so only the cut-off writes are at risk.
			require.Eventually(t, func() bool { return c.allApplied(3) }, settle, 20*time.Millisecond)
			l := c.waitLeader()
			var followers []int
			for i := range c.nodes {
				if i != l {
					followers = append(followers, i)
					c.stop(i)
				}
			}
			// Shorter than the 1 s lease: the leader still thinks it leads.
			phase(t, 600*time.Millisecond, both)
			c.stop(l)
			for _, i := range followers {
				c.restart(i)
			}
			c.waitLeader()
			phase(t, 1500*time.Millisecond, func(ctx context.Context) { reg.Run(ctx, h) })
			phase(t, settle, func(ctx context.Context) { set.ReadAll(ctx, h) })

			ops := h.Operations()
			lin, err := linearizable.Check(ops, linearizable.Visualize(filepath.Join(t.TempDir(), "lin.html")))
			require.NoError(t, err)
			lost, err := lostwrites.Check(ops)
			require.NoError(t, err)
			t.Logf("ops=%d register=%+v set=%+v", len(ops), lin, lost)
			require.Zero(t, lost.Unread)
			if !unsafe {
				require.Equal(t, linearizable.Ok, lin.Result)
				require.Zero(t, lost.LostWrites)
				return
			}
			require.True(t, lost.LostWrites > 0 || lin.Result == linearizable.Illegal,
				"the unsafe switch lost acknowledged writes unnoticed: %+v %+v", lost, lin)
		})
	}
}
