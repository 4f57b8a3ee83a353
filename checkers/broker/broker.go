// Package broker judges the broker workloads' histories: every
// acknowledged message must be consumed (lost), none twice (duplicates),
// in order per key and partition (reordered), never above the high
// watermark the broker gave with it; and, per partition leader killed, how
// long until the partition acknowledged a publish again (failover).
package broker

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	work "github.com/faultline/faultline/workloads/broker"
)

// Stream is one consumer's history (a region's broker-consume).
type Stream struct {
	Name string
	Ops  []loadgen.Operation
}

// Kill is a broker taken away at At that led Partitions then.
type Kill struct {
	At         time.Time
	Node       string
	Partitions []int32
}

// AckGrace is how long after a kill an acknowledgement may still be the
// dead leader's: the kill itself (a Docker call, ~100 ms) and the answer's
// trip back. Acknowledgements sooner do not end a failover.
const AckGrace = 300 * time.Millisecond

// maxSample bounds the lost message ids kept for the report.
const maxSample = 10

// Summary is summary.json's broker section (the checker part of it).
type Summary struct {
	Acked     int `json:"acked"`
	Unacked   int `json:"unacked"` // failed or unknown publishes
	Lost      int `json:"lost"`
	Duplicate int `json:"duplicates"`
	Reordered int `json:"reordered"`
	// LateUnacked counts messages whose publish failed or timed out and
	// that landed after a later message of their key: legal (an outcome
	// never reported may take effect any time after the call, like a
	// request stuck in a cut link and delivered after the heal), but worth
	// seeing.
	LateUnacked int `json:"late_unacked"`
	// AboveHW counts consumed records at or above the high watermark the
	// same fetch reported: reads of uncommitted data.
	AboveHW int `json:"above_hw"`
	// Consumers is each consumer's view of the final drain.
	Consumers []ConsumerSummary `json:"consumers"`
	// LostSample names a few lost messages (key#seq @ partition/offset).
	LostSample []string `json:"lost_sample,omitempty"`

	Failovers   []Failover      `json:"failovers,omitempty"`
	Unrecovered int             `json:"unrecovered"`
	FailoverS   stats.Quantiles `json:"failover_s"`

	// CutOffs are the regions a partition cut off from the others.
	CutOffs []CutOff `json:"cut_offs,omitempty"`

	// MirrorLagMS is how far behind its source each mirror was, sampled
	// through the run (zero Samples: the run had no mirror).
	MirrorLagMS MirrorLag `json:"mirror_lag_ms"`
	// Acks is the producers' acks setting; Unsafe the unsafe switches on.
	Acks   string   `json:"acks,omitempty"`
	Unsafe []string `json:"unsafe,omitempty"`
}

// ConsumerSummary is one consumer's drain.
type ConsumerSummary struct {
	Name       string `json:"name"`
	Consumed   int    `json:"consumed"` // distinct messages in the drain
	Lost       int    `json:"lost"`
	Duplicates int    `json:"duplicates"`
	Reordered  int    `json:"reordered"`
	LateUnack  int    `json:"late_unacked"`
	// Drained is false when the drain never read anything: every
	// acknowledged message then counts as lost for this consumer.
	Drained bool `json:"drained"`
}

// Failover is one partition whose leader was killed.
type Failover struct {
	Node      string  `json:"node"`
	Partition int32   `json:"partition"`
	S         float64 `json:"s"` // -1: no publish acknowledged again
}

type msgID struct {
	key string
	seq int64
}

type ack struct {
	id        msgID
	partition int32
	offset    int64
	ret       time.Time
}

// Check judges the producers' publishes against every consumer's reads.
func Check(publishes []loadgen.Operation, consumers []Stream, kills []Kill) (Summary, error) {
	var s Summary
	var acks []ack
	for _, op := range publishes {
		if op.Kind != work.KindPublish || op.Input == nil {
			continue
		}
		if op.Error != "" {
			s.Unacked++
			continue
		}
		var in work.PublishInput
		var out work.PublishOutput
		if err := json.Unmarshal(op.Input, &in); err != nil {
			return s, fmt.Errorf("publish input: %w", err)
		}
		if err := json.Unmarshal(op.Output, &out); err != nil {
			return s, fmt.Errorf("publish output: %w", err)
		}
		acks = append(acks, ack{id: msgID{in.Key, in.Seq}, partition: out.Partition, offset: out.Offset, ret: op.Return})
	}
	s.Acked = len(acks)
	for _, c := range consumers {
		cs, above, lost, err := checkConsumer(c, acks)
		if err != nil {
			return s, err
		}
		s.Consumers = append(s.Consumers, cs)
		s.AboveHW += above
		// Every consumer reads the whole topic: the worst one is the figure.
		if cs.Lost > s.Lost || (cs.Lost == s.Lost && len(s.LostSample) == 0) {
			s.Lost, s.LostSample = cs.Lost, lost
		}
		s.Duplicate = max(s.Duplicate, cs.Duplicates)
		s.Reordered = max(s.Reordered, cs.Reordered)
		s.LateUnacked = max(s.LateUnacked, cs.LateUnack)
	}
	s.Failovers, s.Unrecovered, s.FailoverS = failovers(acks, kills)
	return s, nil
}

// checkConsumer reads one consumer's history: reads above the high
// watermark in any fetch, and, over its drain, which acknowledged messages
// it never saw, duplicates and order per key within each partition. Order
// is judged between acknowledged messages: one whose outcome was never
// reported may land after later ones.
func checkConsumer(c Stream, acks []ack) (cs ConsumerSummary, above int, lostSample []string, err error) {
	cs.Name = c.Name
	acked := make(map[msgID]bool, len(acks))
	for _, a := range acks {
		acked[a.id] = true
	}
	// The drain's records per partition, in offset order (a partition's
	// drain is one reader, so its ops are already in order; sort anyway
	// in case ops were merged out of order).
	byPart := map[int32][]work.Seen{}
	for _, op := range c.Ops {
		if op.Error != "" || op.Output == nil || (op.Kind != work.KindFetch && op.Kind != work.KindDrain) {
			continue
		}
		var out work.FetchOutput
		if err := json.Unmarshal(op.Output, &out); err != nil {
			return cs, 0, nil, fmt.Errorf("%s: fetch output: %w", c.Name, err)
		}
		for _, r := range out.Records {
			if r.Offset >= out.HighWatermark {
				above++
			}
		}
		if op.Kind == work.KindDrain {
			byPart[out.Partition] = append(byPart[out.Partition], out.Records...)
		}
	}
	seen := map[msgID]bool{}
	for _, recs := range byPart {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
		maxSeq := map[string]int64{}
		lastOffset := int64(-1)
		for _, r := range recs {
			if r.Offset == lastOffset {
				continue // the same record read twice (a retried read), not a duplicate message
			}
			lastOffset = r.Offset
			if r.Seq < 0 {
				continue
			}
			id := msgID{r.Key, r.Seq}
			if seen[id] {
				cs.Duplicates++
				continue
			}
			seen[id] = true
			cs.Consumed++
			m, ok := maxSeq[r.Key]
			switch {
			case ok && r.Seq < m && acked[id]:
				cs.Reordered++
			case ok && r.Seq < m:
				cs.LateUnack++
			}
			if acked[id] {
				maxSeq[r.Key] = max(m, r.Seq)
			}
		}
	}
	cs.Drained = len(byPart) > 0
	for _, a := range acks {
		if seen[a.id] {
			continue
		}
		cs.Lost++
		if len(lostSample) < maxSample {
			lostSample = append(lostSample, fmt.Sprintf("%s#%d @ %d/%d", a.id.key, a.id.seq, a.partition, a.offset))
		}
	}
	return cs, above, lostSample, nil
}

// failovers measures, per partition a killed broker led, the time from the
// kill to the first publish to that partition acknowledged at least
// AckGrace later and before the next kill.
func failovers(acks []ack, kills []Kill) ([]Failover, int, stats.Quantiles) {
	kills = slices.Clone(kills)
	slices.SortFunc(kills, func(a, b Kill) int { return a.At.Compare(b.At) })
	byPart := map[int32][]time.Time{}
	for _, a := range acks {
		byPart[a.partition] = append(byPart[a.partition], a.ret)
	}
	for _, ts := range byPart {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	}
	var out []Failover
	var secs []float64
	unrecovered := 0
	for i, k := range kills {
		for _, p := range k.Partitions {
			f := Failover{Node: k.Node, Partition: p, S: -1}
			from := k.At.Add(AckGrace)
			ts := byPart[p]
			j, _ := slices.BinarySearchFunc(ts, from, func(a, b time.Time) int { return a.Compare(b) })
			if j < len(ts) && (i+1 == len(kills) || ts[j].Before(kills[i+1].At)) {
				f.S = ts[j].Sub(k.At).Seconds()
				secs = append(secs, f.S)
			} else {
				unrecovered++
			}
			out = append(out, f)
		}
	}
	return out, unrecovered, stats.Of(secs)
}

// CutOff is what one region's producers got while it was cut off from the
// others: with acks=all and min in-sync above the replicas a region holds,
// Acked must be 0 (its brokers cannot commit alone), while the other
// regions' producers go on (OthersAcked).
type CutOff struct {
	Region      string  `json:"region"`
	FromS       float64 `json:"from_s"`
	ToS         float64 `json:"to_s"`
	Acked       int     `json:"acked"`
	Failed      int     `json:"failed"`
	OthersAcked int     `json:"others_acked"`
}

// CheckCutOff counts the publishes called after from and answered before
// to, in the cut-off region and elsewhere; start is the run's start.
func CheckCutOff(region string, byRegion map[string][]loadgen.Operation, start, from, to time.Time) CutOff {
	c := CutOff{Region: region, FromS: from.Sub(start).Seconds(), ToS: to.Sub(start).Seconds()}
	for r, ops := range byRegion {
		for _, op := range ops {
			if op.Kind != work.KindPublish || op.Input == nil || op.Call.Before(from) || op.Return.After(to) {
				continue
			}
			switch {
			case r != region && op.Error == "":
				c.OthersAcked++
			case r != region:
			case op.Error == "":
				c.Acked++
			default:
				c.Failed++
			}
		}
	}
	return c
}
