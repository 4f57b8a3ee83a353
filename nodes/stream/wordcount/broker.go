package wordcount

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/stream/topo"
)

// fetchTimeout bounds one fetch from the broker inside a spout's loop: a
// spout that cannot read reports "nothing now" and is asked again.
const fetchTimeout = 2 * time.Second

// BrokerSpout feeds word count from a broker topic, as the lecture's Storm
// reads Kafka: spout task i reads partition i, and message seq is the record
// at offset seq, so a replay re-reads the very same sentence and the
// watermark the engine checkpoints is the consumer's committed offset (the
// broker keeps no consumer state).
type BrokerSpout struct {
	cons      *client.Consumer
	partition int32
	limit     uint64
	buf       []log.Record // consecutive records from buf[0].Offset
}

// NewBrokerSpout reads partition of topic through c; limit bounds the
// messages read (0: without end).
func NewBrokerSpout(c *client.Client, topic string, partition int32, limit uint64) *BrokerSpout {
	return &BrokerSpout{cons: client.NewConsumer(c, topic, client.FetchMaxWait(100*time.Millisecond)), partition: partition, limit: limit}
}

// Next emits the sentence at offset seq, fetching it if it is not buffered;
// a record not yet committed (or a broker that cannot be reached) is
// "nothing now".
func (s *BrokerSpout) Next(seq uint64, out *topo.Emitter) (bool, error) {
	if s.limit > 0 && seq >= s.limit {
		return false, nil
	}
	off := int64(seq)
	if len(s.buf) == 0 || off < s.buf[0].Offset || off >= s.buf[0].Offset+int64(len(s.buf)) {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		f, err := s.cons.Fetch(ctx, s.partition, off)
		cancel()
		if err != nil || len(f.Records) == 0 {
			return false, nil
		}
		s.buf = f.Records
	}
	rec := s.buf[off-s.buf[0].Offset]
	out.Emit(topo.Str(string(rec.Value)))
	return true, nil
}

// SourceBroker builds word count's spouts on a broker topic.
func SourceBroker(c *client.Client, topic string) func(index int, limit uint64) topo.Spout {
	return func(index int, limit uint64) topo.Spout { return NewBrokerSpout(c, topic, int32(index), limit) }
}

// Feed writes sentence seq of partition p (Sentence(p, seq)) into topic for
// seq below perSpout, rate sentences a second per partition, acknowledged
// by every in-sync replica, until done or ctx ends. It is the source that
// a broker-fed word count reads. A publish that fails is retried, so a
// partition may hold a sentence twice: the counts to expect are computed
// from what the topic holds, not from this schedule.
func Feed(ctx context.Context, c *client.Client, topic string, partitions int, perSpout uint64, rate float64) error {
	p, err := client.NewProducer(ctx, c, topic, client.Acks(-1), client.Linger(5*time.Millisecond),
		client.WithPartitioner(func(key []byte, n int) int { return int(binary.BigEndian.Uint32(key)) % n }))
	if err != nil {
		return fmt.Errorf("feed %s: %w", topic, err)
	}
	defer p.Close()
	// A feeder started again (its master restarted) carries on where the
	// partitions end instead of writing the input twice.
	_, ends, err := CountTopic(ctx, c, topic, partitions, 0)
	if err != nil {
		return fmt.Errorf("feed %s: %w", topic, err)
	}
	first := uint64(ends[0])
	for _, e := range ends {
		first = min(first, uint64(e))
	}
	// The source's schedule started with the topic, not with this feeder:
	// a feeder started again after its master was down catches up on the
	// sentences that fell due meanwhile, as a real source's backlog would.
	start := time.Now()
	if first > 0 {
		if f, err := client.NewConsumer(c, topic).Fetch(ctx, 0, 0); err == nil && len(f.Records) > 0 {
			start = time.Unix(0, f.Records[0].Timestamp)
		}
	}
	// Publishes are pipelined: one outstanding batch per partition at a
	// time would hold the feed to one acks=all round trip per sentence. A
	// failed publish is sent again (so its sentence may land twice or out
	// of order, which word count does not mind).
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxFeedInFlight)
	var send func(msg client.Message)
	send = func(msg client.Message) {
		p.SendAsync(ctx, msg, func(r client.Result) {
			if r.Err != nil && ctx.Err() == nil && !errors.Is(r.Err, client.ErrProducerClosed) {
				// Not from the producer's own goroutine, which calls this
				// and would wait on itself with its queue full.
				go send(msg)
				return
			}
			<-sem
			wg.Done()
		})
	}
	defer wg.Wait()
	for seq := first; perSpout == 0 || seq < perSpout; seq++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Until(due)):
			}
		}
		for part := range partitions {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			send(client.Message{Key: binary.BigEndian.AppendUint32(nil, uint32(part)), Value: []byte(Sentence(part, seq))})
		}
	}
	return nil
}

// maxFeedInFlight bounds the sentences published but not yet acknowledged.
const maxFeedInFlight = 4096

// CountTopic counts the words of the committed records in topic's first
// partitions partitions below offset limit (0: all), what spouts reading
// at most limit messages each see, and returns where each partition's
// counted records end.
func CountTopic(ctx context.Context, c *client.Client, topic string, partitions int, limit uint64) (map[string]int64, []int64, error) {
	cons := client.NewConsumer(c, topic)
	want := map[string]int64{}
	var ends []int64
	for part := range partitions {
		f, err := cons.Fetch(ctx, int32(part), 0)
		if err != nil {
			return nil, nil, err
		}
		end := f.HighWatermark
		if limit > 0 {
			end = min(end, int64(limit))
		}
		recs, err := cons.ReadTo(ctx, int32(part), end)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range recs {
			if r.Offset < end {
				forEachWord(string(r.Value), func(w string) { want[w]++ })
			}
		}
		ends = append(ends, end)
	}
	return want, ends, nil
}
