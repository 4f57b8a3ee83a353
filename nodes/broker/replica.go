package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Follower fetch parameters: a long poll so new records reach followers (and
// the high watermark advances) as soon as the leader has them.
const (
	replicaFetchBytes = 4 << 20
	replicaFetchWait  = 500 * time.Millisecond
	replicaBackoff    = 50 * time.Millisecond
)

// startFetcher copies the leader's log into p until the returned stop is
// called (stop waits for the fetcher to end) or ctx ends.
func (b *Broker) startFetcher(ctx context.Context, p *partition, leader int32, addr string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		for ctx.Err() == nil {
			if err := b.fetchOnce(ctx, p, addr); err != nil && ctx.Err() == nil {
				b.cfg.Logger.Debug("replica fetch", "topic", p.topic, "partition", p.id, "leader", leader, "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(replicaBackoff):
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (b *Broker) fetchOnce(ctx context.Context, p *partition, addr string) error {
	req := &protocol.FetchRequest{
		ReplicaID: b.cfg.ID, Topic: p.topic, Partition: p.id,
		Offset: p.log.EndOffset(), LastFetchedEpoch: p.log.LastEpoch(),
		MaxBytes: replicaFetchBytes, MaxWaitMs: int32(replicaFetchWait / time.Millisecond),
	}
	cctx, cancel := context.WithTimeout(ctx, replicaFetchWait+5*time.Second)
	defer cancel()
	var resp protocol.FetchResponse
	if err := b.conns.call(cctx, addr, req, &resp); err != nil {
		return err
	}
	if err := resp.Err.Err(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil // stopped while waiting: this broker's role changed
	}
	if resp.DivergingEnd >= 0 {
		_, ownEnd := p.log.EpochEnd(resp.DivergingEpoch)
		to := min(resp.DivergingEnd, ownEnd)
		b.cfg.Logger.Info("truncating diverged log", "topic", p.topic, "partition", p.id, "from", req.Offset, "to", to)
		if err := p.log.Truncate(to); err != nil {
			return fmt.Errorf("truncate to %d: %w", to, err)
		}
		return nil
	}
	recs, err := log.DecodeAll(resp.Records)
	if err != nil {
		return fmt.Errorf("decode fetched records: %w", err)
	}
	if err := p.log.AppendReplicated(recs); err != nil {
		return err
	}
	p.mu.Lock()
	if hw := min(resp.HighWatermark, p.log.EndOffset()); hw > p.hw {
		p.hw = hw
	}
	p.notifyLocked()
	p.mu.Unlock()
	return nil
}

// connPool keeps one multiplexed connection per broker address.
type connPool struct {
	mu    sync.Mutex
	conns map[string]*protocol.Conn
}

func newConnPool() *connPool { return &connPool{conns: map[string]*protocol.Conn{}} }

func (c *connPool) get(ctx context.Context, addr string) (*protocol.Conn, error) {
	if conn := c.live(addr); conn != nil {
		return conn, nil
	}
	// Dial without the lock: a dial to a dead broker can take the whole
	// timeout, and must not hold up heartbeats to the controller or
	// fetches from live leaders (it once got live brokers fenced).
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := protocol.Dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if other := c.conns[addr]; other != nil && other != conn {
		select {
		case <-other.Done():
		default:
			_ = conn.Close() // another caller dialed first: share its connection
			return other, nil
		}
	}
	c.conns[addr] = conn
	return conn, nil
}

// live is the pooled connection to addr, if it is still open.
func (c *connPool) live(addr string) *protocol.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn := c.conns[addr]; conn != nil {
		select {
		case <-conn.Done():
		default:
			return conn
		}
	}
	return nil
}

func (c *connPool) call(ctx context.Context, addr string, req protocol.Request, resp protocol.Message) error {
	conn, err := c.get(ctx, addr)
	if err != nil {
		return err
	}
	err = conn.Call(ctx, req, resp)
	if errors.Is(err, context.DeadlineExceeded) {
		// Its bytes may be stuck behind a cut link in TCP's retransmission
		// backoff: the next request gets a fresh connection.
		c.mu.Lock()
		if c.conns[addr] == conn {
			delete(c.conns, addr)
		}
		c.mu.Unlock()
		_ = conn.Close()
	}
	return err
}

func (c *connPool) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, conn := range c.conns {
		_ = conn.Close()
		delete(c.conns, addr)
	}
}
