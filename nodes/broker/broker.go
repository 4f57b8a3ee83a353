// Package broker is the Kafka-like broker role: topics split into
// partitions, each an append-only log replicated from a leader to followers
// that fetch from it, with an in-sync replica set, a high watermark that
// bounds what consumers see, and acks 0, 1 or all. A raft quorum run by the
// brokers themselves (package controller) holds the metadata and elects
// leaders.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline/faultline/nodes/broker/controller"
	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Config configures a broker.
type Config struct {
	ID        int32
	Listener  net.Listener // client and replica traffic
	Advertise string       // address others dial for Listener
	// Raft* and Peers configure this broker's controller replica.
	RaftListener  net.Listener
	RaftAdvertise string
	Peers         map[int32]Peer // every controller voter, this one included
	Dir           string
	// ControllerOnly runs only the controller replica (Kafka's
	// process.roles=controller): it votes and serves controller requests
	// but hosts no partitions. Extra voters let the metadata quorum outlive
	// the loss of most brokers.
	ControllerOnly bool

	SegmentBytes  int64
	Sync          log.SyncPolicy
	FlushInterval time.Duration // periodic fsync with SyncNone; 0: only on roll/close

	// ReplicaLagMax is how long a follower may go without catching up
	// before the leader drops it from the in-sync set.
	ReplicaLagMax     time.Duration
	SessionTimeout    time.Duration
	RaftTimeout       time.Duration
	HeartbeatInterval time.Duration
	RaftNoSync        bool

	DefaultReplicationFactor int32 // default 3
	DefaultMinISR            int32 // default 1
	// UncleanLeaderElection (UNSAFE) lets every topic created through this
	// broker elect leaders outside the in-sync set.
	UncleanLeaderElection bool

	Logger hclog.Logger
}

func (c *Config) defaults() {
	if c.ReplicaLagMax <= 0 {
		c.ReplicaLagMax = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 1500 * time.Millisecond
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = c.SessionTimeout / 6
	}
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = 3
	}
	if c.DefaultMinISR <= 0 {
		c.DefaultMinISR = 1
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("broker-%d", c.ID), Level: hclog.Warn, Output: os.Stderr})
	}
}

// Peer is a controller voter's addresses.
type Peer struct {
	Raft string // raft transport
	Addr string // broker protocol, where controller requests are forwarded
}

// Broker is a running broker.
type Broker struct {
	cfg   Config
	ctrl  *controller.Controller
	conns *connPool

	mu         sync.Mutex
	partitions map[tp]*partition

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}
}

type tp struct {
	topic     string
	partition int32
}

// Start opens the broker's controller replica and begins serving. It runs
// until Close.
func Start(cfg Config) (*Broker, error) {
	cfg.defaults()
	raftPeers := map[int32]string{}
	for id, p := range cfg.Peers {
		raftPeers[id] = p.Raft
	}
	ctrl, err := controller.Open(controller.Config{
		ID: cfg.ID, Listener: cfg.RaftListener, Advertise: cfg.RaftAdvertise, Peers: raftPeers,
		Dir: filepath.Join(cfg.Dir, "raft"), SessionTimeout: cfg.SessionTimeout,
		RaftTimeout: cfg.RaftTimeout, NoSync: cfg.RaftNoSync, Logger: cfg.Logger.Named("controller"),
	})
	if err != nil {
		return nil, fmt.Errorf("start broker %d: %w", cfg.ID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg: cfg, ctrl: ctrl, conns: newConnPool(), partitions: map[tp]*partition{},
		cancel: cancel, closed: make(chan struct{}),
	}
	b.goLoop(func() { ctrl.Run(ctx) })
	b.goLoop(func() {
		if err := protocol.Serve(ctx, cfg.Listener, b.handle); err != nil {
			cfg.Logger.Error("serve", "error", err)
		}
	})
	if cfg.ControllerOnly {
		return b, nil
	}
	b.goLoop(func() { b.heartbeatLoop(ctx) })
	b.goLoop(func() { b.reconcileLoop(ctx) })
	b.goLoop(func() { b.isrLoop(ctx) })
	if cfg.FlushInterval > 0 {
		b.goLoop(func() { b.flushLoop(ctx) })
	}
	return b, nil
}

func (b *Broker) goLoop(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// ID is the broker's id.
func (b *Broker) ID() int32 { return b.cfg.ID }

// Addr is the address clients dial.
func (b *Broker) Addr() string { return b.cfg.Advertise }

// Close stops serving, replication and the controller, and closes the logs.
func (b *Broker) Close() error {
	b.cancel()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	b.conns.close()
	for _, p := range b.partitions {
		errs = append(errs, p.log.Close())
	}
	errs = append(errs, b.ctrl.Close())
	return errors.Join(errs...)
}

// heartbeatLoop keeps this broker's controller session alive.
func (b *Broker) heartbeatLoop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		// Half a session: a first heartbeat to a new controller across
		// the WAN needs a connection set up before it can be answered.
		hctx, cancel := context.WithTimeout(ctx, max(b.cfg.HeartbeatInterval*2, b.cfg.SessionTimeout/2))
		err := b.toController(hctx, &protocol.HeartbeatRequest{BrokerID: b.cfg.ID, Addr: b.cfg.Advertise})
		cancel()
		if err != nil && ctx.Err() == nil {
			b.cfg.Logger.Debug("heartbeat", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// toController runs a controller request on the raft leader: locally, or
// forwarded to the broker that leads.
func (b *Broker) toController(ctx context.Context, req protocol.Request) error {
	leader, ok := b.ctrl.Leader()
	if !ok {
		return protocol.NotController
	}
	if leader == b.cfg.ID {
		return b.controllerLocal(ctx, req)
	}
	peer, ok := b.cfg.Peers[leader]
	if !ok || peer.Addr == "" {
		return fmt.Errorf("controller %d has no known address: %w", leader, protocol.NotController)
	}
	var resp protocol.ErrResponse
	if err := b.conns.call(ctx, peer.Addr, req, &resp); err != nil {
		return err
	}
	return resp.Err.Err()
}

func (b *Broker) controllerLocal(ctx context.Context, req protocol.Request) error {
	switch r := req.(type) {
	case *protocol.HeartbeatRequest:
		return b.ctrl.Heartbeat(ctx, r.BrokerID, r.Addr)
	case *protocol.AlterISRRequest:
		return b.ctrl.Apply(ctx, controller.Command{
			Op: controller.OpAlterISR, Topic: r.Topic, Partition: r.Partition,
			Broker: r.LeaderID, Epoch: r.LeaderEpoch, ISR: r.ISR,
		})
	case *protocol.CreateTopicRequest:
		return b.ctrl.Apply(ctx, controller.Command{
			Op: controller.OpCreate, Topic: r.Name, Partitions: r.Partitions,
			ReplicationFactor: r.ReplicationFactor, MinISR: r.MinISR, Unclean: r.Unclean,
		})
	}
	return protocol.InvalidRequest
}

// reconcileLoop makes local replicas follow the controller's metadata.
func (b *Broker) reconcileLoop(ctx context.Context) {
	for {
		st, changed := b.ctrl.Watch()
		b.reconcile(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (b *Broker) reconcile(ctx context.Context, st *controller.State) {
	now := time.Now()
	for name, t := range st.Topics {
		for i, meta := range t.Partitions {
			if !slices.Contains(meta.Replicas, b.cfg.ID) {
				continue
			}
			p, err := b.partition(name, int32(i))
			if err != nil {
				b.cfg.Logger.Error("open partition", "topic", name, "partition", i, "error", err)
				continue
			}
			p.mu.Lock()
			roleChanged := meta.Leader != p.leader || meta.Epoch != p.epoch
			stop := p.stopFetch
			if roleChanged {
				p.stopFetch = nil
			}
			p.mu.Unlock()
			if roleChanged && stop != nil {
				// The old fetcher must be gone before the new role starts,
				// or it could append the old leader's records after it.
				stop()
			}
			p.update(b.cfg.ID, t, meta, now)
			if roleChanged && meta.Leader != b.cfg.ID && meta.Leader >= 0 {
				if lb := st.Brokers[meta.Leader]; lb != nil {
					stop := b.startFetcher(ctx, p, meta.Leader, lb.Addr)
					p.mu.Lock()
					p.stopFetch = stop
					p.mu.Unlock()
				}
			}
		}
	}
}

// partition returns the local replica, opening its log on first use.
func (b *Broker) partition(topic string, id int32) (*partition, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := tp{topic, id}
	if p := b.partitions[key]; p != nil {
		return p, nil
	}
	opts := []log.Option{log.Sync(b.cfg.Sync)}
	if b.cfg.SegmentBytes > 0 {
		opts = append(opts, log.SegmentBytes(b.cfg.SegmentBytes))
	}
	l, err := log.Open(filepath.Join(b.cfg.Dir, "logs", fmt.Sprintf("%s-%d", topic, id)), opts...)
	if err != nil {
		return nil, err
	}
	p := &partition{topic: topic, id: id, log: l, leader: -2, epoch: -1, changed: make(chan struct{})}
	b.partitions[key] = p
	return p, nil
}

func (b *Broker) partitionList() []*partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*partition, 0, len(b.partitions))
	for _, p := range b.partitions {
		out = append(out, p)
	}
	return out
}

func (b *Broker) lookup(topic string, id int32) *partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partitions[tp{topic, id}]
}

// isrLoop asks the controller to shrink or expand the in-sync sets of the
// partitions this broker leads.
func (b *Broker) isrLoop(ctx context.Context) {
	// Often enough that a returning replica rejoins the in-sync set soon
	// after it caught up, not a fifth of the lag window later.
	tick := time.NewTicker(max(min(b.cfg.ReplicaLagMax/5, 250*time.Millisecond), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, p := range b.partitionList() {
			p.mu.Lock()
			if p.leader != b.cfg.ID || p.pending != nil {
				p.mu.Unlock()
				continue
			}
			want := p.wantISRLocked(now, b.cfg.ReplicaLagMax)
			if slices.Equal(want, p.isr) {
				p.mu.Unlock()
				continue
			}
			p.pending = want
			req := &protocol.AlterISRRequest{Topic: p.topic, Partition: p.id, LeaderID: b.cfg.ID, LeaderEpoch: p.epoch, ISR: want}
			p.mu.Unlock()

			actx, cancel := context.WithTimeout(ctx, b.cfg.SessionTimeout)
			err := b.toController(actx, req)
			cancel()
			if err != nil && ctx.Err() == nil {
				b.cfg.Logger.Debug("alter isr", "topic", p.topic, "partition", p.id, "isr", want, "error", err)
			}
			p.mu.Lock()
			if p.epoch == req.LeaderEpoch {
				p.pending = nil
				p.advanceHWLocked()
			}
			p.mu.Unlock()
		}
	}
}

func (b *Broker) flushLoop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Sync outside b.mu: an fsync must not hold up partition lookups on
		// the produce path.
		for _, p := range b.partitionList() {
			if err := p.log.Sync(); err != nil {
				b.cfg.Logger.Error("flush", "topic", p.topic, "partition", p.id, "error", err)
			}
		}
	}
}
