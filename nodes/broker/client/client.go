// Package client is the Go client of the broker: metadata, topic creation,
// a batching Producer and an offset-keeping Consumer.
package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Client holds connections and cached metadata. It is safe for concurrent
// use.
type Client struct {
	bootstrap []string
	timeout   time.Duration

	mu    sync.Mutex
	conns map[string]*protocol.Conn
	meta  *protocol.MetadataResponse
}

// Option configures a Client.
type Option func(*Client)

// RequestTimeout bounds each request (default 10 s).
func RequestTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client that learns the cluster from the bootstrap brokers.
func New(bootstrap []string, opts ...Option) *Client {
	c := &Client{bootstrap: bootstrap, timeout: 10 * time.Second, conns: map[string]*protocol.Conn{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for addr, conn := range c.conns {
		errs = append(errs, conn.Close())
		delete(c.conns, addr)
	}
	return errors.Join(errs...)
}

func (c *Client) conn(ctx context.Context, addr string) (*protocol.Conn, error) {
	c.mu.Lock()
	if conn := c.conns[addr]; conn != nil {
		select {
		case <-conn.Done():
		default:
			c.mu.Unlock()
			return conn, nil
		}
	}
	c.mu.Unlock()
	// Dial without the lock: a dead broker's address may never answer a
	// connect, and calls to live brokers must not wait behind it. Give up
	// on it long before a request would time out, so the next broker is
	// tried.
	dctx, cancel := context.WithTimeout(ctx, min(c.timeout, dialTimeout))
	defer cancel()
	conn, err := protocol.Dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if other := c.conns[addr]; other != nil {
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

// call sends req to addr and waits for resp, bounded by the request timeout.
func (c *Client) call(ctx context.Context, addr string, req protocol.Request, resp protocol.Message) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	err = conn.Call(ctx, req, resp)
	if errors.Is(err, context.DeadlineExceeded) {
		c.drop(addr, conn)
	}
	return err
}

// drop closes a connection whose request timed out (as Kafka's client
// does): its bytes may be stuck behind a cut link in TCP's retransmission
// backoff long after the link is back, and the next request should not
// queue behind them on the same connection.
func (c *Client) drop(addr string, conn *protocol.Conn) {
	c.mu.Lock()
	if c.conns[addr] == conn {
		delete(c.conns, addr)
	}
	c.mu.Unlock()
	_ = conn.Close()
}

// addrs are the brokers to ask for metadata: known ones first.
func (c *Client) addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	if c.meta != nil {
		for _, b := range c.meta.Brokers {
			out = append(out, b.Addr)
		}
	}
	return append(out, c.bootstrap...)
}

// dialTimeout bounds connecting to one broker.
const dialTimeout = 500 * time.Millisecond

// refreshGrace is how long Refresh waits for more answers after the first:
// the brokers apply the controller's changes at slightly different times,
// and the freshest answer is the one to follow.
const refreshGrace = 100 * time.Millisecond

// Refresh reloads metadata, asking every known broker at once and keeping
// the freshest answer (the highest leader epochs) among those that came
// within refreshGrace of the first. A dead or cut-off broker costs nothing
// while another answers.
func (c *Client) Refresh(ctx context.Context) (*protocol.MetadataResponse, error) {
	addrs := c.addrs()
	type answer struct {
		i    int
		resp *protocol.MetadataResponse
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := map[string]bool{}
	answers := make(chan answer, len(addrs))
	n := 0
	for i, addr := range addrs {
		if seen[addr] {
			continue
		}
		seen[addr] = true
		n++
		go func() {
			var resp protocol.MetadataResponse
			err := c.call(ctx, addr, &protocol.MetadataRequest{}, &resp)
			answers <- answer{i: i, resp: &resp, err: err}
		}()
	}
	var best *answer
	var errs []error
	var grace <-chan time.Time
	for range n {
		var a answer
		select {
		case a = <-answers:
		case <-grace:
		}
		if a.resp == nil {
			break // the grace ran out
		}
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		if best == nil || fresher(a.resp, best.resp) || (epochSum(a.resp) == epochSum(best.resp) && a.i < best.i) {
			best = &a
		}
		if grace == nil {
			grace = time.After(refreshGrace)
		}
	}
	if best == nil {
		return nil, fmt.Errorf("metadata: no broker answered: %w", errors.Join(errs...))
	}
	c.mu.Lock()
	c.meta = best.resp
	c.mu.Unlock()
	return best.resp, nil
}

// fresher says whether a reflects more controller changes than b.
func fresher(a, b *protocol.MetadataResponse) bool { return epochSum(a) > epochSum(b) }

// epochSum grows with every leader change the broker has applied.
func epochSum(m *protocol.MetadataResponse) int64 {
	var n int64
	for _, t := range m.Topics {
		for _, p := range t.Partitions {
			n += int64(p.Epoch)
		}
		n += int64(len(t.Partitions)) // a topic known beats one not yet created
	}
	return n
}

// Metadata returns the cached metadata, loading it if needed.
func (c *Client) Metadata(ctx context.Context) (*protocol.MetadataResponse, error) {
	c.mu.Lock()
	m := c.meta
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	return c.Refresh(ctx)
}

// Partition is a partition's metadata.
func (c *Client) Partition(ctx context.Context, topic string, partition int32) (protocol.PartitionMeta, error) {
	m, err := c.Metadata(ctx)
	if err != nil {
		return protocol.PartitionMeta{}, err
	}
	for _, t := range m.Topics {
		if t.Name == topic && t.Err == protocol.None && int(partition) < len(t.Partitions) && partition >= 0 {
			return t.Partitions[partition], nil
		}
	}
	return protocol.PartitionMeta{}, fmt.Errorf("%s/%d: %w", topic, partition, protocol.UnknownTopicOrPartition)
}

// Partitions is the number of partitions of topic. An unknown topic is
// retried until ctx ends: a broker may not have applied a new topic yet.
func (c *Client) Partitions(ctx context.Context, topic string) (int, error) {
	n := 0
	err := retry(ctx, func() error {
		m, err := c.Refresh(ctx)
		if err != nil {
			return err
		}
		for _, t := range m.Topics {
			if t.Name == topic {
				n = len(t.Partitions)
				return t.Err.Err()
			}
		}
		return protocol.UnknownTopicOrPartition
	})
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", topic, err)
	}
	return n, nil
}

// leaderAddr is the address of the partition's leader.
func (c *Client) leaderAddr(ctx context.Context, topic string, partition int32) (string, error) {
	pm, err := c.Partition(ctx, topic, partition)
	if err != nil {
		return "", err
	}
	if pm.Leader < 0 {
		return "", fmt.Errorf("%s/%d: %w", topic, partition, protocol.LeaderNotAvailable)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.meta.Brokers {
		if b.ID == pm.Leader {
			return b.Addr, nil
		}
	}
	return "", fmt.Errorf("%s/%d: leader %d: %w", topic, partition, pm.Leader, protocol.LeaderNotAvailable)
}

// TopicConfig describes a topic to create.
type TopicConfig struct {
	Partitions        int32
	ReplicationFactor int32 // 0: the broker's default (3)
	MinISR            int32 // min.insync.replicas; 0: the broker's default (1)
	// Unclean allows electing a leader outside the in-sync set: UNSAFE,
	// acknowledged records can be lost. A broker started with
	// --unclean-leader-election turns it on for every topic.
	Unclean bool
}

// CreateTopic creates a topic, retrying while the controller is being
// elected.
func (c *Client) CreateTopic(ctx context.Context, name string, cfg TopicConfig) error {
	req := &protocol.CreateTopicRequest{Name: name, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor, MinISR: cfg.MinISR, Unclean: cfg.Unclean}
	return retry(ctx, func() error {
		var errs []error
		for _, addr := range c.addrs() {
			var resp protocol.ErrResponse
			if err := c.call(ctx, addr, req, &resp); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := resp.Err.Err(); err != nil {
				return fmt.Errorf("create topic %s: %w", name, err)
			}
			_, err := c.Refresh(ctx)
			return err
		}
		return fmt.Errorf("create topic %s: %w", name, errors.Join(errs...))
	})
}

// retry runs f until it succeeds, fails with a non-retriable error, or ctx
// ends.
// The broker's last answer is kept in the error: when time runs out in the
// middle of an attempt, "not enough replicas" says more than "timeout".
func retry(ctx context.Context, f func() error) error {
	backoff := 20 * time.Millisecond
	var answer error
	for {
		err := f()
		if err == nil || !retriable(err) {
			return err
		}
		var code protocol.ErrorCode
		if errors.As(err, &code) {
			answer = err
		} else if answer != nil {
			err = errors.Join(answer, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		// Capped low: a leader change is retried within a quarter second.
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

func retriable(err error) bool {
	var code protocol.ErrorCode
	if errors.As(err, &code) {
		return code.Retriable()
	}
	// Transport errors: a broker died or is restarting.
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
