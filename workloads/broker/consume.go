package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/log"
)

// FetchOutput is what one fetch (or drain read) returned: the partition,
// the high watermark the broker gave with it, and the records.
type FetchOutput struct {
	Partition     int32  `json:"p"`
	HighWatermark int64  `json:"hw"`
	Records       []Seen `json:"recs,omitempty"`
}

// Seen is one consumed record. Key is empty and Seq -1 for a record that
// is not a Value (nothing else writes the run's topic).
type Seen struct {
	Offset int64  `json:"o"`
	Key    string `json:"k"`
	Seq    int64  `json:"s"`
}

// Drain timing: the drain starts once in-flight publishes had time to be
// acknowledged, and ends once every partition was read up to a high
// watermark that stayed put for drainQuiet (a mirror still catching up
// moves it).
const (
	drainSettle = 2 * time.Second
	drainQuiet  = 3 * time.Second
)

// Consumer is the broker-consume workload: one reader per partition
// follows it from offset 0 while the load runs; after the load a drain
// reads every partition again from offset 0 to its final high watermark.
// Nothing is committed anywhere: positions are the readers' own.
type Consumer struct {
	spec loadgen.HistorySpec
	cl   *client.Client
}

// NewConsumer prepares the workload.
func NewConsumer(spec loadgen.HistorySpec) (*Consumer, error) {
	opts, err := ParseOptions(spec.Options)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WorkloadConsume, err)
	}
	addrs, err := specAddrs(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WorkloadConsume, err)
	}
	return &Consumer{spec: spec, cl: client.New(addrs, client.RequestTimeout(spec.OpTimeout()))}, nil
}

// partitions waits for the topic's partition count.
func (c *Consumer) partitions(ctx context.Context, h loadgen.History) (int, bool) {
	for {
		pctx, cancel := context.WithTimeout(ctx, c.spec.OpTimeout())
		n, err := c.cl.Partitions(pctx, Topic)
		cancel()
		if err == nil {
			return n, true
		}
		h.Record(loadgen.Operation{Kind: KindFetch, Error: "metadata: " + err.Error(), Call: time.Now(), Return: time.Now()})
		if !sleep(ctx, time.Second) {
			return 0, false
		}
	}
}

// Run follows every partition until ctx ends.
func (c *Consumer) Run(ctx context.Context, h loadgen.History) {
	n, ok := c.partitions(ctx, h)
	if !ok {
		return
	}
	con := client.NewConsumer(c.cl, Topic)
	var wg sync.WaitGroup
	for p := range int32(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c.read(ctx, con, p, KindFetch, h)
			}
		}()
	}
	wg.Wait()
}

// read does one poll of partition p and records it; empty reads are not
// recorded (they say nothing the next read would not).
func (c *Consumer) read(ctx context.Context, con *client.Consumer, p int32, kind string, h loadgen.History) (hw int64, ok bool) {
	op := loadgen.Operation{Client: int(p), Kind: kind, Call: time.Now()}
	fctx, cancel := context.WithTimeout(ctx, c.spec.OpTimeout())
	f, err := con.Poll(fctx, p)
	cancel()
	op.Return = time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return 0, false
		}
		op.Error = describe(err)
		h.Record(op)
		sleep(ctx, 100*time.Millisecond)
		return 0, false
	}
	if len(f.Records) > 0 {
		op.Output, _ = json.Marshal(FetchOutput{Partition: p, HighWatermark: f.HighWatermark, Records: seen(f.Records)})
		h.Record(op)
	}
	return f.HighWatermark, true
}

func seen(recs []log.Record) []Seen {
	out := make([]Seen, len(recs))
	for i, r := range recs {
		k, s, ok := ParseValue(r.Value)
		if !ok {
			k, s = "", -1
		}
		out[i] = Seen{Offset: r.Offset, Key: k, Seq: s}
	}
	return out
}

// Finish drains: every partition read again from offset 0 up to a high
// watermark that no longer moves.
func (c *Consumer) Finish(ctx context.Context, h loadgen.History) {
	defer c.cl.Close()
	if !sleep(ctx, drainSettle) {
		return
	}
	n, ok := c.partitions(ctx, h)
	if !ok {
		return
	}
	con := client.NewConsumer(c.cl, Topic)
	var wg sync.WaitGroup
	for p := range int32(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.drain(ctx, con, p, h)
		}()
	}
	wg.Wait()
}

func (c *Consumer) drain(ctx context.Context, con *client.Consumer, p int32, h loadgen.History) {
	lastHW, quietSince := int64(-1), time.Now()
	for ctx.Err() == nil {
		hw, ok := c.read(ctx, con, p, KindDrain, h)
		if !ok {
			continue
		}
		if hw != lastHW {
			lastHW, quietSince = hw, time.Now()
		}
		if con.Position(p) >= hw && time.Since(quietSince) >= drainQuiet {
			return
		}
	}
}
