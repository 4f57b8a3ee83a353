package client

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Acks levels.
const (
	AcksNone   int8 = 0  // fire and forget: the outcome is not reported
	AcksLeader int8 = 1  // the leader wrote it
	AcksAll    int8 = -1 // every in-sync replica has it (and at least min.insync)
)

// Message is what a producer sends.
type Message struct {
	Key, Value []byte
}

// Result is the outcome of one message.
type Result struct {
	Partition int32
	Offset    int64 // -1 when not known (acks=0 or error)
	Err       error
}

// Partitioner picks a partition for a message.
type Partitioner func(key []byte, partitions int) int

// HashPartitioner sends equal keys to the same partition (FNV-1a), and
// keyless messages round robin.
func HashPartitioner() Partitioner {
	rr := RoundRobin()
	return func(key []byte, n int) int {
		if len(key) == 0 {
			return rr(key, n)
		}
		h := fnv.New32a()
		h.Write(key)
		return int(h.Sum32() % uint32(n))
	}
}

// RoundRobin spreads messages over partitions in turn, ignoring keys.
func RoundRobin() Partitioner {
	var next atomic.Uint64
	return func(_ []byte, n int) int { return int((next.Add(1) - 1) % uint64(n)) }
}

// Producer batches messages per partition and sends one batch at a time per
// partition, so order within a partition is the order of Send calls.
type Producer struct {
	c           *Client
	topic       string
	acks        int8
	linger      time.Duration
	batchSize   int
	partitioner Partitioner
	delivery    time.Duration

	parts  []*batcher
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu is held for reading while queueing, so Close cannot close a
	// queue under a sender.
	mu     sync.RWMutex
	closed bool
}

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// Acks sets the acknowledgement level (default AcksAll).
func Acks(a int8) ProducerOption { return func(p *Producer) { p.acks = a } }

// Linger is how long a partial batch waits for more messages (default 5 ms).
func Linger(d time.Duration) ProducerOption { return func(p *Producer) { p.linger = d } }

// BatchSize is the most messages in one request (default 1000).
func BatchSize(n int) ProducerOption { return func(p *Producer) { p.batchSize = n } }

// WithPartitioner sets how partitions are chosen (default HashPartitioner).
func WithPartitioner(f Partitioner) ProducerOption { return func(p *Producer) { p.partitioner = f } }

// DeliveryTimeout bounds retries of one batch (default 30 s).
func DeliveryTimeout(d time.Duration) ProducerOption { return func(p *Producer) { p.delivery = d } }

type pending struct {
	msg  Message
	done func(Result)
}

type batcher struct {
	partition int32
	in        chan pending
}

// NewProducer starts a producer for topic; it looks up the partition count.
func NewProducer(ctx context.Context, c *Client, topic string, opts ...ProducerOption) (*Producer, error) {
	p := &Producer{
		c: c, topic: topic, acks: AcksAll, linger: 5 * time.Millisecond, batchSize: 1000,
		partitioner: HashPartitioner(), delivery: 30 * time.Second,
	}
	for _, o := range opts {
		o(p)
	}
	n, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("producer %s: %w", topic, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for i := range n {
		b := &batcher{partition: int32(i), in: make(chan pending, p.batchSize)}
		p.parts = append(p.parts, b)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.run(runCtx, b)
		}()
	}
	return p, nil
}

// ErrProducerClosed is returned for messages sent after Close.
var ErrProducerClosed = errors.New("producer closed")

// SendAsync queues msg; done is called once with its outcome, from the
// producer's goroutine. It blocks while the partition's queue is full or
// ctx ends.
func (p *Producer) SendAsync(ctx context.Context, msg Message, done func(Result)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		done(Result{Offset: -1, Err: ErrProducerClosed})
		return
	}
	b := p.parts[p.partitioner(msg.Key, len(p.parts))]
	select {
	case b.in <- pending{msg: msg, done: done}:
	case <-ctx.Done():
		done(Result{Partition: b.partition, Offset: -1, Err: ctx.Err()})
	}
}

// Send sends msg and waits for its outcome.
func (p *Producer) Send(ctx context.Context, msg Message) Result {
	ch := make(chan Result, 1)
	p.SendAsync(ctx, msg, func(r Result) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return Result{Offset: -1, Err: ctx.Err()}
	}
}

// Close flushes queued messages, waiting for their outcome, then stops.
// Messages sent concurrently with Close may fail with ErrProducerClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for _, b := range p.parts {
		close(b.in)
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.cancel()
	return nil
}

func (p *Producer) run(ctx context.Context, b *batcher) {
	var batch []pending
	var timer <-chan time.Time
	for {
		select {
		case m, ok := <-b.in:
			if !ok {
				if len(batch) > 0 {
					p.flush(ctx, b.partition, batch)
				}
				return
			}
			batch = append(batch, m)
			if len(batch) == 1 && p.linger > 0 {
				timer = time.After(p.linger)
			}
			if len(batch) < p.batchSize && p.linger > 0 {
				continue
			}
			// Take whatever else is already queued before sending.
			for len(batch) < p.batchSize && len(b.in) > 0 {
				m, ok := <-b.in
				if !ok {
					break
				}
				batch = append(batch, m)
			}
		case <-timer:
		}
		p.flush(ctx, b.partition, batch)
		batch, timer = nil, nil
	}
}

// flush sends a batch to the partition leader, retrying retriable errors
// (leader moved, too few in-sync replicas) within the delivery timeout.
// A retried batch may have been written before: delivery is at least once.
func (p *Producer) flush(ctx context.Context, partition int32, batch []pending) {
	req := &protocol.ProduceRequest{Topic: p.topic, Partition: partition, Acks: p.acks,
		TimeoutMs: int32(p.c.timeout / time.Millisecond), Records: make([]protocol.Record, len(batch))}
	for i, m := range batch {
		req.Records[i] = protocol.Record{Key: m.msg.Key, Value: m.msg.Value}
	}
	dctx, cancel := context.WithTimeout(ctx, p.delivery)
	defer cancel()
	var resp protocol.ProduceResponse
	err := retry(dctx, func() error {
		addr, err := p.c.leaderAddr(dctx, p.topic, partition)
		if err == nil {
			err = p.c.call(dctx, addr, req, &resp)
		}
		if err == nil {
			err = resp.Err.Err()
		}
		if err != nil && retriable(err) {
			// The leader may have moved: look again before retrying.
			_, _ = p.c.Refresh(dctx)
		}
		return err
	})
	for i, m := range batch {
		r := Result{Partition: partition, Offset: -1, Err: err}
		if err == nil && p.acks != AcksNone {
			r.Offset = resp.BaseOffset + int64(i)
		}
		m.done(r)
	}
}
