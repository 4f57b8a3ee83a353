// Package db is faultline's replicated database role: a key/value store
// replicated with raft (hashicorp/raft over TCP, raft-boltdb log, bbolt state
// machine), with per-request read consistency and follower write forwarding.
package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

const (
	timeoutOpen   = 5 * time.Second
	minHeartbeat  = time.Second            // raft's defaults: below them a loaded
	minLease      = 500 * time.Millisecond // machine's fsync stalls depose leaders
	joinRetry     = 200 * time.Millisecond
	joinAttempt   = 5 * time.Second // a silently partitioned peer must not stall the loop
	transportPool = 3
)

// Peer is one member of the cluster as named by --peers.
type Peer struct {
	ID       string
	RaftAddr string
	HTTPAddr string
}

// Config is everything a node needs; Run fills it from flags.
type Config struct {
	ID       string
	RaftAddr string // advertised to the other nodes; may be a host name
	DataDir  string
	Peers    []Peer
	// Voter is false for non-voting read replicas (far regions).
	Voter bool
	// Bootstrap makes this node form a one-node cluster the others join.
	Bootstrap bool
	// RTT is the largest round trip between voters; raft timeouts scale with it.
	RTT   time.Duration
	Fsync bool
	// UnsafeAckBeforeCommit acknowledges unconditional writes once the
	// leader has them in its own log, before a quorum does.
	UnsafeAckBeforeCommit bool
	SnapshotThreshold     uint64 // 0: raft's default
	TrailingLogs          uint64 // 0: raft's default
	Logger                hclog.Logger
}

// Timeouts derives raft's timeouts from the voters' max RTT. A candidate
// waits ten round trips (the election timeout) before trying again, so a
// vote over a long link is not cut short. Followers give up on a silent
// leader after a quarter of that: hashicorp/raft only notices at its next
// randomized timer tick, so a follower really waits 1-3 heartbeat
// timeouts, and a follower that still believes in the dead leader refuses
// to vote, which can cost the first candidate a whole election timeout.
// Measured on db-leader-kill (largest voter RTT 190 ms): with both at ten
// round trips the median failover was 6 s; with the heartbeat timeout at
// half the election timeout, 3-4 s. The lease is half the heartbeat
// timeout (at least 500 ms) so a cut-off leader steps down before the
// others elect a new one. In-process clusters (no RTT) keep hashicorp/raft's
// 1 s defaults: with 300 ms a 2-core machine under -race and a busy disk
// deposed healthy leaders.
func Timeouts(rtt time.Duration) (heartbeat, election, lease time.Duration) {
	floor := minHeartbeat
	if rtt > 0 {
		floor = minWANHeartbeat
	}
	heartbeat = max(rtt*5/2, floor)
	election = max(10*rtt, minHeartbeat)
	lease = min(heartbeat, max(heartbeat/2, minLease))
	return heartbeat, election, lease
}

// minWANHeartbeat is the heartbeat timeout's floor for clusters across
// emulated links: the leader still heartbeats every tenth of it (50 ms).
const minWANHeartbeat = 500 * time.Millisecond

// peerTransport is how a node reaches its peers' HTTP APIs (forwarding to
// the leader, joining). A connection to a live peer takes one round trip;
// one to a dead peer's address gets no answer at all, so the dial gives up
// after a few round trips and the request fails at once (as a definite
// failure: nothing was sent) instead of hanging until the client's timeout
// while the cluster elects a new leader.
func peerTransport(rtt time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = (&net.Dialer{Timeout: max(3*rtt, minDialTimeout), KeepAlive: 30 * time.Second}).DialContext
	return t
}

// minDialTimeout: within a region, or in-process, a peer answers a dial in
// well under a millisecond; this leaves room for a loaded machine.
const minDialTimeout = 300 * time.Millisecond

// Node is one running member.
type Node struct {
	cfg       Config
	peers     map[string]Peer
	raft      *raft.Raft
	fsm       *fsm
	logs      *raftboltdb.BoltStore
	stable    *closingStable
	early     *earlyAckStore // nil unless UnsafeAckBeforeCommit
	transport *raft.NetworkTransport
	observer  *raft.Observer
	metrics   *metrics
	http      *http.Client
	applyWait time.Duration

	barrierTerm atomic.Uint64 // term in which this leader's barrier completed

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Start opens the stores in cfg.DataDir, starts raft on raftLn and, for a
// fresh non-bootstrap node, keeps asking the peers to add it until one does.
func Start(cfg Config, raftLn net.Listener) (n *Node, err error) {
	if cfg.ID == "" {
		return nil, errors.New("start db: empty id")
	}
	if cfg.Bootstrap && !cfg.Voter {
		return nil, errors.New("start db: a non-voter cannot bootstrap")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "db." + cfg.ID, Level: hclog.Info, Output: os.Stderr})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("start db %s: %w", cfg.ID, err)
	}
	n = &Node{cfg: cfg, peers: map[string]Peer{}, http: &http.Client{Transport: peerTransport(cfg.RTT)}}
	for _, p := range cfg.Peers {
		n.peers[p.ID] = p
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	// The state is a cache of the raft log, which alone is fsynced: every
	// start discards it and raft rebuilds it from the latest snapshot and
	// the log. An acknowledged write is then as durable as etcd's (its WAL
	// fsynced, its state written back lazily) at one fsync per write
	// batch instead of two, and a state file torn by a power loss can
	// never be read back.
	statePath := filepath.Join(cfg.DataDir, "state.db")
	if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("start db %s: discard old state: %w", cfg.ID, err)
	}
	n.fsm, err = openFSM(statePath, true)
	if err != nil {
		return nil, fmt.Errorf("start db %s: %w", cfg.ID, err)
	}
	closers = append(closers, n.fsm.Close)
	n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"), NoSync: !cfg.Fsync})
	if err != nil {
		return nil, fmt.Errorf("start db %s: open raft log: %w", cfg.ID, err)
	}
	closers = append(closers, n.logs.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "snapshots"), 2, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("start db %s: %w", cfg.ID, err)
	}

	heartbeat, election, lease := Timeouts(cfg.RTT)
	n.applyWait = election
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = heartbeat
	rc.ElectionTimeout = election
	rc.LeaderLeaseTimeout = lease
	rc.BatchApplyCh = true
	rc.Logger = cfg.Logger
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}

	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  newStreamLayer(raftLn, cfg.RaftAddr),
		MaxPool: transportPool,
		// Generous: an InstallSnapshot over a slow emulated WAN link must fit.
		Timeout: 10 * time.Second,
		Logger:  cfg.Logger.Named("transport"),
	})
	closers = append(closers, n.transport.Close)

	var logStore raft.LogStore = n.logs
	if cfg.UnsafeAckBeforeCommit {
		n.early = newEarlyAckStore(n.logs)
		logStore = n.early
	}
	existing, err := raft.HasExistingState(logStore, n.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("start db %s: %w", cfg.ID, err)
	}
	n.stable = newClosingStable(n.logs)
	n.raft, err = raft.NewRaft(rc, n.fsm, logStore, n.stable, snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("start db %s: raft: %w", cfg.ID, err)
	}
	closers = append(closers, func() error { return n.raft.Shutdown().Error() })

	n.metrics = newMetrics(n)
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	obs := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(1)
	go n.watchLeader(ctx, obs)

	switch {
	case existing:
		// Membership is already in the log; raft rejoins on its own.
	case cfg.Bootstrap:
		boot := raft.Configuration{Servers: []raft.Server{{
			ID: raft.ServerID(cfg.ID), Address: n.transport.LocalAddr(), Suffrage: raft.Voter,
		}}}
		if err := n.raft.BootstrapCluster(boot).Error(); err != nil {
			cancel()
			n.wg.Wait()
			return nil, fmt.Errorf("start db %s: bootstrap: %w", cfg.ID, err)
		}
	default:
		n.wg.Add(1)
		go n.joinLoop(ctx)
	}
	return n, nil
}

// Close stops raft and closes the stores. It does not hand leadership over:
// to the rest of the cluster it looks like the process died.
func (n *Node) Close() error {
	n.stop()
	n.wg.Wait()
	n.raft.DeregisterObserver(n.observer)
	shutdownErr := n.raft.Shutdown().Error()
	transportErr := n.transport.Close()
	n.stable.close()
	return errors.Join(
		shutdownErr,
		transportErr,
		n.logs.Close(),
		n.fsm.Close(),
	)
}

// Snapshot takes a raft snapshot now (raft also takes them on its own every
// SnapshotThreshold entries).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot %s: %w", n.cfg.ID, err)
	}
	return nil
}

// Status reports this node's view of the cluster.
func (n *Node) Status() dbclient.Status {
	addr, id := n.raft.LeaderWithID()
	st := dbclient.Status{
		ID:            n.cfg.ID,
		Role:          roleName(n.raft.State()),
		Voter:         n.cfg.Voter,
		LeaderID:      string(id),
		LeaderAddr:    string(addr),
		Term:          n.raft.CurrentTerm(),
		LastIndex:     n.raft.LastIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.appliedIndex(),
		LastContactMs: -1,
		UnsafeAck:     n.cfg.UnsafeAckBeforeCommit,
	}
	if s, ok := n.staleness(); ok {
		st.LastContactMs = s.Milliseconds()
	}
	return st
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	default:
		return "shutdown"
	}
}

// staleness is how far behind the leader this node's state may be: 0 on the
// leader, the time since the last leader contact elsewhere; false if this
// node has never heard from a leader.
func (n *Node) staleness() (time.Duration, bool) {
	if n.raft.State() == raft.Leader {
		return 0, true
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return 0, false
	}
	return time.Since(last), true
}

func (n *Node) watchLeader(ctx context.Context, obs <-chan raft.Observation) {
	defer n.wg.Done()
	var last raft.ServerID
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-obs:
			lo := o.Data.(raft.LeaderObservation)
			if lo.LeaderID != "" && lo.LeaderID != last {
				n.metrics.leaderChanges.Inc()
				last = lo.LeaderID
			}
		}
	}
}

// joinLoop asks each peer in turn to add this node until one answers yes.
// Any member will do: followers forward the join to the leader.
func (n *Node) joinLoop(ctx context.Context) {
	defer n.wg.Done()
	req := dbclient.JoinRequest{ID: n.cfg.ID, RaftAddr: string(n.transport.LocalAddr()), Voter: n.cfg.Voter}
	for attempt := 0; ; attempt++ {
		for _, p := range n.cfg.Peers {
			if p.ID == n.cfg.ID {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, joinAttempt)
			err := dbclient.New("http://"+p.HTTPAddr, dbclient.WithHTTPClient(n.http)).Join(actx, req)
			cancel()
			if err == nil {
				return
			}
			if attempt%25 == 0 {
				n.cfg.Logger.Info("join not accepted yet", "peer", p.ID, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(joinRetry):
		}
	}
}

// addMember is the leader's half of a join. Joining again with the same
// id, address and suffrage is a no-op, so a node may retry blindly.
func (n *Node) addMember(ctx context.Context, j dbclient.JoinRequest) error {
	if j.ID == "" || j.RaftAddr == "" {
		return errors.New("join: id and raft_addr are required")
	}
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return fmt.Errorf("join %s: %w", j.ID, err)
	}
	want := raft.Nonvoter
	if j.Voter {
		want = raft.Voter
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(j.ID) && s.Address == raft.ServerAddress(j.RaftAddr) && s.Suffrage == want {
			return nil
		}
	}
	var f raft.IndexFuture
	if j.Voter {
		f = n.raft.AddVoter(raft.ServerID(j.ID), raft.ServerAddress(j.RaftAddr), 0, n.applyWait)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(j.ID), raft.ServerAddress(j.RaftAddr), 0, n.applyWait)
	}
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("join %s: %w", j.ID, err)
	}
	return nil
}

// waitFuture waits for f or ctx. The helper goroutine ends when raft
// resolves the future, which it always does: on commit, on losing
// leadership, or on shutdown.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := futureDone(f)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func futureDone(f raft.Future) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	return done
}

// raftError carries whether a failed write may still have been committed.
type raftError struct {
	err        error
	indefinite bool
}

func (e *raftError) Error() string { return e.err.Error() }
func (e *raftError) Unwrap() error { return e.err }

func classify(err error) error {
	// ErrNotLeader and ErrEnqueueTimeout are returned before the entry
	// reaches the log; anything later may or may not commit.
	definite := errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout)
	return &raftError{err: err, indefinite: !definite}
}

// write puts ops into the log as one entry and waits for the outcome. The
// second result is true when the answer was given early (unsafe mode).
// The caller has validated ops.
func (n *Node) write(ctx context.Context, ops []dbclient.Op) (dbclient.WriteResult, bool, error) {
	reqID := rand.Uint64()
	data, err := encodeCommand(command{reqID: reqID, ops: ops})
	if err != nil {
		return dbclient.WriteResult{}, false, err
	}
	start := time.Now()
	var stored <-chan uint64
	if n.early != nil && !conditional(ops) {
		ch, unregister := n.early.register(reqID)
		defer unregister()
		stored = ch
	}
	f := n.raft.Apply(data, n.applyWait)
	done := futureDone(f)
	select {
	case idx := <-stored:
		n.metrics.observeWrite(ops, start)
		return dbclient.WriteResult{OK: true, Version: idx}, true, nil
	case err := <-done:
		if err != nil {
			return dbclient.WriteResult{}, false, classify(err)
		}
	case <-ctx.Done():
		return dbclient.WriteResult{}, false, &raftError{err: ctx.Err(), indefinite: true}
	}
	res, _ := f.Response().(applyResult)
	if res.err != nil {
		return dbclient.WriteResult{}, false, res.err
	}
	n.metrics.observeWrite(ops, start)
	return res.res, false, nil
}

// readLinearizable is raft's ReadIndex: note the commit index, have a quorum
// confirm this node still leads, then wait until that index is applied. A
// new leader's commit index is only trustworthy once an entry of its own
// term has committed, hence one barrier per term.
func (n *Node) readLinearizable(ctx context.Context, key string) (dbclient.Entry, bool, error) {
	if term := n.raft.CurrentTerm(); n.barrierTerm.Load() != term {
		if err := waitFuture(ctx, n.raft.Barrier(n.applyWait)); err != nil {
			return dbclient.Entry{}, false, fmt.Errorf("linearizable read: barrier: %w", err)
		}
		n.barrierTerm.Store(term)
	}
	idx := n.raft.CommitIndex()
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		return dbclient.Entry{}, false, fmt.Errorf("linearizable read: verify leader: %w", err)
	}
	if err := n.fsm.waitApplied(ctx, n.lastStateIndex(idx)); err != nil {
		return dbclient.Entry{}, false, fmt.Errorf("linearizable read: %w", err)
	}
	return n.fsm.get(key)
}

// lastStateIndex is the highest index ≤ idx the state machine will record as
// applied. Raft keeps no-op and barrier entries from the FSM, so when such
// an entry is the commit index the state's own index never reaches it.
func (n *Node) lastStateIndex(idx uint64) uint64 {
	var l raft.Log
	for ; idx > n.fsm.appliedIndex(); idx-- {
		if err := n.logs.GetLog(idx, &l); err != nil {
			// Compacted into a snapshot, which the state already holds.
			return n.fsm.appliedIndex()
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return idx
		}
	}
	return idx
}

// streamLayer is raft's TCP stream layer on a listener we opened ourselves
// (tests bind port 0 before they know the peers), advertising an address
// that may be a host name resolved at dial time (Docker service names).
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func newStreamLayer(ln net.Listener, advertise string) *streamLayer {
	s := &streamLayer{Listener: ln, advertise: ln.Addr()}
	if advertise != "" {
		s.advertise = advertiseAddr(advertise)
	}
	return s
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", string(addr))
}
