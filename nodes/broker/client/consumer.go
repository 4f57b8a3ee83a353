package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Consumer reads a topic by offset. It keeps its own position per partition:
// the broker holds no consumer state.
type Consumer struct {
	c        *Client
	topic    string
	maxBytes int32
	maxWait  time.Duration

	mu      sync.Mutex
	offsets map[int32]int64
}

// ConsumerOption configures a Consumer.
type ConsumerOption func(*Consumer)

// FetchMaxBytes bounds one fetch (default 1 MiB; one record is always
// returned even if larger).
func FetchMaxBytes(n int32) ConsumerOption { return func(c *Consumer) { c.maxBytes = n } }

// FetchMaxWait is how long the broker holds a fetch with nothing new
// (default 500 ms).
func FetchMaxWait(d time.Duration) ConsumerOption { return func(c *Consumer) { c.maxWait = d } }

// NewConsumer returns a consumer of topic starting at offset 0 everywhere.
func NewConsumer(c *Client, topic string, opts ...ConsumerOption) *Consumer {
	con := &Consumer{c: c, topic: topic, maxBytes: 1 << 20, maxWait: 500 * time.Millisecond, offsets: map[int32]int64{}}
	for _, o := range opts {
		o(con)
	}
	return con
}

// Seek sets the next offset to read from partition.
func (c *Consumer) Seek(partition int32, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offsets[partition] = offset
}

// Position is the next offset Poll reads from partition.
func (c *Consumer) Position(partition int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offsets[partition]
}

// Fetched is one fetch's records and the partition's high watermark.
type Fetched struct {
	Records       []log.Record
	HighWatermark int64
}

// Fetch reads committed records of partition from offset, without moving
// the consumer's position. Leader changes are retried until ctx ends.
func (c *Consumer) Fetch(ctx context.Context, partition int32, offset int64) (Fetched, error) {
	req := &protocol.FetchRequest{ReplicaID: -1, Topic: c.topic, Partition: partition, Offset: offset,
		LastFetchedEpoch: -1, MaxBytes: c.maxBytes, MaxWaitMs: int32(c.maxWait / time.Millisecond)}
	var resp protocol.FetchResponse
	err := retry(ctx, func() error {
		addr, err := c.c.leaderAddr(ctx, c.topic, partition)
		if err == nil {
			err = c.c.call(ctx, addr, req, &resp)
		}
		if err == nil {
			err = resp.Err.Err()
		}
		if err != nil && retriable(err) {
			_, _ = c.c.Refresh(ctx)
		}
		return err
	})
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch %s/%d@%d: %w", c.topic, partition, offset, err)
	}
	recs, err := log.DecodeAll(resp.Records)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch %s/%d@%d: %w", c.topic, partition, offset, err)
	}
	if len(recs) > 0 && recs[0].Offset != offset {
		return Fetched{}, fmt.Errorf("fetch %s/%d@%d: got offset %d: %w", c.topic, partition, offset, recs[0].Offset, protocol.CorruptMessage)
	}
	return Fetched{Records: recs, HighWatermark: resp.HighWatermark}, nil
}

// Poll fetches from the consumer's position in partition and advances it
// past what it returns.
func (c *Consumer) Poll(ctx context.Context, partition int32) (Fetched, error) {
	f, err := c.Fetch(ctx, partition, c.Position(partition))
	if err != nil {
		return f, err
	}
	if n := len(f.Records); n > 0 {
		c.Seek(partition, f.Records[n-1].Offset+1)
	}
	return f, nil
}

// ReadTo polls partition until its position reaches end (typically a high
// watermark seen earlier) and returns everything read.
func (c *Consumer) ReadTo(ctx context.Context, partition int32, end int64) ([]log.Record, error) {
	var out []log.Record
	for c.Position(partition) < end {
		f, err := c.Poll(ctx, partition)
		if err != nil {
			return out, err
		}
		out = append(out, f.Records...)
		if ctx.Err() != nil {
			return out, errors.Join(ctx.Err(), fmt.Errorf("read to %d: at %d", end, c.Position(partition)))
		}
	}
	return out, nil
}
