package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/broker/client"
)

// Operation kinds and their payloads, as the checkers read them.
const (
	KindPublish = "publish"
	KindFetch   = "fetch" // a consumer's read during the run
	KindDrain   = "drain" // the final read of everything, after the load
)

// PublishInput is what a publish sent: Seq numbers the messages of one
// key (one client), so order can be checked per key and partition.
type PublishInput struct {
	Key string `json:"key"`
	Seq int64  `json:"seq"`
}

// PublishOutput is where an acknowledged message was written.
type PublishOutput struct {
	Partition int32 `json:"p"`
	Offset    int64 `json:"o"` // -1 with acks=0
}

// Value is a message's body: its key and sequence number, which make it
// unique in the run.
func Value(key string, seq int64) []byte { return []byte(key + "#" + strconv.FormatInt(seq, 10)) }

// ParseValue reads a Value back.
func ParseValue(v []byte) (key string, seq int64, ok bool) {
	k, s, ok := strings.Cut(string(v), "#")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return k, n, err == nil
}

// Producer is the broker-produce workload: each client publishes its own
// key's numbered messages one after another (waiting for each outcome, so
// acknowledged messages of a key are acknowledged in order), all through
// one batching producer.
type Producer struct {
	spec loadgen.HistorySpec
	opts Options
	cl   *client.Client
}

// NewProducer prepares the workload; the topic must exist when it runs.
func NewProducer(spec loadgen.HistorySpec) (*Producer, error) {
	opts, err := ParseOptions(spec.Options)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WorkloadProduce, err)
	}
	addrs, err := specAddrs(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WorkloadProduce, err)
	}
	return &Producer{spec: spec, opts: opts, cl: client.New(addrs, client.RequestTimeout(spec.OpTimeout()))}, nil
}

// Run publishes until ctx ends.
func (p *Producer) Run(ctx context.Context, h loadgen.History) {
	var prod *client.Producer
	for prod == nil {
		var err error
		pctx, cancel := context.WithTimeout(ctx, p.spec.OpTimeout())
		prod, err = client.NewProducer(pctx, p.cl, Topic, client.Acks(p.opts.Acks), client.Linger(2*time.Millisecond),
			client.DeliveryTimeout(p.spec.OpTimeout()))
		cancel()
		if err != nil {
			h.Record(loadgen.Operation{Client: 0, Kind: KindPublish, Error: "start producer: " + err.Error(), Call: time.Now(), Return: time.Now()})
			if !sleep(ctx, time.Second) {
				return
			}
		}
	}
	done := make(chan struct{})
	for c := range p.spec.Clients {
		go func() {
			defer func() { done <- struct{}{} }()
			p.client(ctx, prod, c, h)
		}()
	}
	for range p.spec.Clients {
		<-done
	}
	// Close waits for in-flight batches; their messages' outcomes were
	// already recorded as unknown when their clients gave up.
	_ = prod.Close()
}

func (p *Producer) client(ctx context.Context, prod *client.Producer, c int, h loadgen.History) {
	key := fmt.Sprintf("%s/%d", p.spec.Region, c)
	for seq := int64(0); ctx.Err() == nil; seq++ {
		in, _ := json.Marshal(PublishInput{Key: key, Seq: seq})
		op := loadgen.Operation{Client: c, Kind: KindPublish, Input: in, Call: time.Now()}
		sctx, cancel := context.WithTimeout(ctx, p.spec.OpTimeout())
		r := prod.Send(sctx, client.Message{Key: []byte(key), Value: Value(key, seq)})
		cancel()
		op.Return = time.Now()
		if r.Err != nil {
			op.Error = describe(r.Err)
		} else {
			op.Output, _ = json.Marshal(PublishOutput{Partition: r.Partition, Offset: r.Offset})
		}
		if ctx.Err() != nil && r.Err != nil {
			return // cut off by the end of the run, not by the system
		}
		h.Record(op)
		if p.spec.Think > 0 && !sleep(ctx, p.spec.Think) {
			return
		}
	}
}

// Finish does nothing: the consumers' drain reads everything back.
func (p *Producer) Finish(context.Context, loadgen.History) { _ = p.cl.Close() }

// describe keeps an error's cause short: it lands in every failed op.
func describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func init() {
	loadgen.RegisterHistory(WorkloadProduce, func(s loadgen.HistorySpec) (loadgen.HistoryWorkload, error) {
		return NewProducer(s)
	})
	loadgen.RegisterHistory(WorkloadConsume, func(s loadgen.HistorySpec) (loadgen.HistoryWorkload, error) {
		return NewConsumer(s)
	})
}
