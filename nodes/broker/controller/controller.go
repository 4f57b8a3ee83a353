package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Config configures one controller replica. Every broker runs one (the
// controllers are the brokers, as in Kafka's combined KRaft mode).
type Config struct {
	ID        int32
	Listener  net.Listener     // raft traffic
	Advertise string           // raft address the others dial
	Peers     map[int32]string // every voter's raft address, this one included
	Dir       string
	// SessionTimeout is how long a broker may go without a heartbeat before
	// it is fenced and loses its leaderships.
	SessionTimeout time.Duration
	// RaftTimeout is raft's heartbeat and election timeout.
	RaftTimeout time.Duration
	NoSync      bool // skip fsync of the raft log (tests)
	Logger      hclog.Logger
}

// Controller is one replica of the metadata quorum.
type Controller struct {
	cfg       Config
	raft      *raft.Raft
	fsm       *fsm
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore

	mu       sync.Mutex
	lastSeen map[int32]time.Time
}

// Open starts the raft replica, bootstrapping the cluster from Peers on first
// start (every replica bootstraps with the same configuration, which raft
// allows).
func Open(cfg Config) (_ *Controller, err error) {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 3 * time.Second
	}
	if cfg.RaftTimeout <= 0 {
		cfg.RaftTimeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "controller", Level: hclog.Warn, Output: os.Stderr})
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.ID, err)
	}
	c := &Controller{cfg: cfg, fsm: newFSM(), lastSeen: map[int32]time.Time{}}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	c.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), NoSync: cfg.NoSync})
	if err != nil {
		return nil, fmt.Errorf("controller %d: open raft log: %w", cfg.ID, err)
	}
	closers = append(closers, c.store.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.ID, err)
	}
	c.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: cfg.Listener, advertise: cfg.Advertise},
		MaxPool: 3,
		Timeout: 5 * time.Second,
		Logger:  cfg.Logger,
	})
	closers = append(closers, c.transport.Close)

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.ID)
	rc.HeartbeatTimeout = cfg.RaftTimeout
	rc.ElectionTimeout = cfg.RaftTimeout
	rc.LeaderLeaseTimeout = cfg.RaftTimeout
	rc.CommitTimeout = 5 * time.Millisecond
	rc.Logger = cfg.Logger
	existing, err := raft.HasExistingState(c.store, c.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.ID, err)
	}
	c.raft, err = raft.NewRaft(rc, c.fsm, c.store, c.store, snaps, c.transport)
	if err != nil {
		return nil, fmt.Errorf("controller %d: raft: %w", cfg.ID, err)
	}
	closers = append(closers, func() error { return c.raft.Shutdown().Error() })
	if !existing {
		var boot raft.Configuration
		for id, addr := range cfg.Peers {
			boot.Servers = append(boot.Servers, raft.Server{ID: serverID(id), Address: raft.ServerAddress(addr), Suffrage: raft.Voter})
		}
		if err := c.raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("controller %d: bootstrap: %w", cfg.ID, err)
		}
	}
	return c, nil
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// ErrNotController means this replica is not the raft leader.
var ErrNotController = protocol.NotController

// Apply replicates cmd through raft; only the leader can. The result is the
// command's own error code, if any.
func (c *Controller) Apply(ctx context.Context, cmd Command) error {
	if c.raft.State() != raft.Leader {
		return ErrNotController
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("apply %s: %w", cmd.Op, err)
	}
	timeout := c.cfg.RaftTimeout * 5
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := c.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotController
		}
		return fmt.Errorf("apply %s: %w", cmd.Op, err)
	}
	code, _ := f.Response().(protocol.ErrorCode)
	return code.Err()
}

// Heartbeat records that a broker is alive, registering (or unfencing) it
// through raft when needed. Only the leader accepts heartbeats.
func (c *Controller) Heartbeat(ctx context.Context, id int32, addr string) error {
	if c.raft.State() != raft.Leader {
		return ErrNotController
	}
	c.mu.Lock()
	c.lastSeen[id] = time.Now()
	c.mu.Unlock()
	st, _ := c.Watch()
	if b := st.Brokers[id]; b != nil && !b.Fenced && b.Addr == addr {
		return nil
	}
	return c.Apply(ctx, Command{Op: OpRegister, Broker: id, Addr: addr})
}

// Run fences brokers whose session expired, while this replica leads. It
// returns when ctx ends.
func (c *Controller) Run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.SessionTimeout / 5)
	defer tick.Stop()
	leading := false
	prevLeader := int32(-1) // the last other replica seen leading
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.raft.State() != raft.Leader {
			leading = false
			if id, ok := c.Leader(); ok && id != c.cfg.ID {
				prevLeader = id
			}
			continue
		}
		now := time.Now()
		if !leading {
			// A new leader may not have applied its predecessor's commands
			// yet, and has seen no heartbeats: catch up, then give every
			// broker a full session before judging it.
			bctx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
			err := c.Barrier(bctx)
			cancel()
			if err != nil {
				continue
			}
			leading = true
			c.mu.Lock()
			clear(c.lastSeen)
			c.mu.Unlock()
			// Raft moved its leadership because the previous leader
			// stopped answering: most likely its broker died too. Fence it
			// now rather than a whole session later, so its partitions
			// fail over in one election; if it is alive, its next
			// heartbeat registers it again.
			if prevLeader >= 0 {
				if b := st0(c).Brokers[prevLeader]; b != nil && !b.Fenced {
					actx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
					err := c.Apply(actx, Command{Op: OpFence, Broker: prevLeader})
					cancel()
					if err != nil {
						c.cfg.Logger.Warn("fence previous controller", "broker", prevLeader, "error", err)
					}
				}
				prevLeader = -1
			}
		}
		st, _ := c.Watch()
		for id, b := range st.Brokers {
			if b.Fenced {
				continue
			}
			c.mu.Lock()
			seen, ok := c.lastSeen[id]
			if !ok {
				seen = now
				c.lastSeen[id] = now
			}
			c.mu.Unlock()
			if now.Sub(seen) > c.cfg.SessionTimeout {
				actx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
				err := c.Apply(actx, Command{Op: OpFence, Broker: id})
				cancel()
				if err != nil {
					c.cfg.Logger.Warn("fence broker", "broker", id, "error", err)
				}
			}
		}
	}
}

func st0(c *Controller) *State { st, _ := c.Watch(); return st }

// Barrier waits until this replica, as leader, has applied every command
// committed before the call: its state is then the authoritative one.
func (c *Controller) Barrier(ctx context.Context) error {
	timeout := c.cfg.RaftTimeout * 5
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := c.raft.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotController
		}
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// Watch returns the current metadata and a channel closed at the next change.
func (c *Controller) Watch() (*State, <-chan struct{}) { return c.fsm.watch() }

// Leader returns the raft leader's broker id, if one is known.
func (c *Controller) Leader() (int32, bool) {
	_, id := c.raft.LeaderWithID()
	if id == "" {
		return -1, false
	}
	n, err := strconv.Atoi(string(id))
	return int32(n), err == nil
}

// Close shuts raft down.
func (c *Controller) Close() error {
	err := c.raft.Shutdown().Error()
	return errors.Join(err, c.transport.Close(), c.store.Close())
}

// fsm applies commands to the State.
type fsm struct {
	mu      sync.Mutex
	state   *State
	changed chan struct{}
}

func newFSM() *fsm { return &fsm{state: newState(), changed: make(chan struct{})} }

func (f *fsm) watch() (*State, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone(), f.changed
}

func (f *fsm) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fsm) Apply(l *raft.Log) any {
	var cmd Command
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		return protocol.InvalidRequest
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	code := f.state.apply(cmd)
	f.notifyLocked()
	return code
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.state)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	st := newState()
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("restore metadata: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	f.notifyLocked()
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}

// streamLayer lets raft use a listener the caller opened (tests hand in
// ephemeral loopback ports).
type streamLayer struct {
	net.Listener
	advertise string
}

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

func (s *streamLayer) Addr() net.Addr { return advertiseAddr(s.advertise) }

type advertiseAddr string

func (advertiseAddr) Network() string  { return "tcp" }
func (a advertiseAddr) String() string { return string(a) }
