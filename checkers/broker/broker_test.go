package broker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/loadgen"
	work "github.com/faultline/faultline/workloads/broker"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func pub(key string, seq int64, p int32, off int64, retMS int) loadgen.Operation {
	in, _ := json.Marshal(work.PublishInput{Key: key, Seq: seq})
	out, _ := json.Marshal(work.PublishOutput{Partition: p, Offset: off})
	return loadgen.Operation{Kind: work.KindPublish, Input: in, Output: out, Call: at(retMS - 5), Return: at(retMS)}
}

func failedPub(key string, seq int64) loadgen.Operation {
	in, _ := json.Marshal(work.PublishInput{Key: key, Seq: seq})
	return loadgen.Operation{Kind: work.KindPublish, Input: in, Error: "timeout", Call: at(0), Return: at(1)}
}

// read is one fetch (or drain) of partition p; recs are key#seq strings
// at consecutive offsets from first.
func read(kind string, p int32, hw, first int64, recs ...string) loadgen.Operation {
	out := work.FetchOutput{Partition: p, HighWatermark: hw}
	for i, r := range recs {
		k, s, ok := work.ParseValue([]byte(r))
		if !ok {
			k, s = "", -1
		}
		out.Records = append(out.Records, work.Seen{Offset: first + int64(i), Key: k, Seq: s})
	}
	o, _ := json.Marshal(out)
	return loadgen.Operation{Kind: kind, Output: o, Call: at(0), Return: at(1)}
}

func TestCheck(t *testing.T) {
	acked := []loadgen.Operation{pub("a", 0, 0, 0, 10), pub("a", 1, 0, 1, 20), pub("b", 0, 1, 0, 30)}
	tests := []struct {
		name      string
		publishes []loadgen.Operation
		consumers []Stream
		want      Summary
	}{
		{
			name:      "everything consumed once, in order",
			publishes: append(acked, failedPub("a", 2)),
			consumers: []Stream{{Name: "r1", Ops: []loadgen.Operation{
				read(work.KindFetch, 0, 2, 0, "a#0"),
				read(work.KindDrain, 0, 2, 0, "a#0", "a#1"),
				read(work.KindDrain, 1, 1, 0, "b#0"),
			}}},
			want: Summary{Acked: 3, Unacked: 1, Consumers: []ConsumerSummary{{Name: "r1", Consumed: 3, Drained: true}}},
		},
		{
			name:      "a message missing from one consumer's drain is lost",
			publishes: acked,
			consumers: []Stream{
				{Name: "r1", Ops: []loadgen.Operation{read(work.KindDrain, 0, 2, 0, "a#0", "a#1"), read(work.KindDrain, 1, 1, 0, "b#0")}},
				// Seen during the run but gone from the drain (truncated
				// after an unclean election): still lost.
				{Name: "r2", Ops: []loadgen.Operation{read(work.KindFetch, 1, 1, 0, "b#0"), read(work.KindDrain, 0, 2, 0, "a#0", "a#1")}},
			},
			want: Summary{Acked: 3, Lost: 1, LostSample: []string{"b#0 @ 1/0"}, Consumers: []ConsumerSummary{
				{Name: "r1", Consumed: 3, Drained: true}, {Name: "r2", Consumed: 2, Lost: 1, Drained: true}}},
		},
		{
			name:      "duplicates, reordering and reads above the high watermark",
			publishes: acked,
			consumers: []Stream{{Name: "r1", Ops: []loadgen.Operation{
				read(work.KindFetch, 0, 1, 0, "a#0", "a#1"), // offset 1 is at hw 1
				read(work.KindDrain, 0, 4, 0, "a#1", "a#0", "a#1", "x"),
				read(work.KindDrain, 0, 4, 1, "a#0"), // a re-read of offset 1 is not a duplicate
				read(work.KindDrain, 1, 1, 0, "b#0"),
			}}},
			want: Summary{Acked: 3, Duplicate: 1, Reordered: 1, AboveHW: 1, Consumers: []ConsumerSummary{
				{Name: "r1", Consumed: 3, Duplicates: 1, Reordered: 1, Drained: true}}},
		},
		{
			name:      "an unacknowledged message may land late",
			publishes: []loadgen.Operation{pub("a", 0, 0, 0, 10), failedPub("a", 1), pub("a", 2, 0, 1, 30)},
			consumers: []Stream{{Name: "r1", Ops: []loadgen.Operation{read(work.KindDrain, 0, 3, 0, "a#0", "a#2", "a#1")}}},
			want: Summary{Acked: 2, Unacked: 1, LateUnacked: 1, Consumers: []ConsumerSummary{
				{Name: "r1", Consumed: 3, LateUnack: 1, Drained: true}}},
		},
		{
			name:      "a consumer that never drained lost everything",
			publishes: acked,
			consumers: []Stream{{Name: "r1"}},
			want: Summary{Acked: 3, Lost: 3, LostSample: []string{"a#0 @ 0/0", "a#1 @ 0/1", "b#0 @ 1/0"},
				Consumers: []ConsumerSummary{{Name: "r1", Lost: 3}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Check(tt.publishes, tt.consumers, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFailovers(t *testing.T) {
	acks := []loadgen.Operation{
		pub("a", 0, 0, 0, 1000),
		pub("a", 1, 0, 1, 1100), // within the grace: still the old leader's
		pub("a", 2, 0, 2, 3000),
		pub("b", 0, 1, 0, 1500),
		pub("a", 3, 0, 3, 9500),
	}
	kills := []Kill{
		{At: at(1000), Node: "n1", Partitions: []int32{0, 1}},
		{At: at(8000), Node: "n2", Partitions: []int32{2}}, // never acknowledged again
	}
	s, err := Check(acks, nil, kills)
	require.NoError(t, err)
	assert.Equal(t, []Failover{{Node: "n1", Partition: 0, S: 2}, {Node: "n1", Partition: 1, S: 0.5}, {Node: "n2", Partition: 2, S: -1}}, s.Failovers)
	assert.Equal(t, 1, s.Unrecovered)
	assert.Equal(t, 2.0, s.FailoverS.Max)
	assert.Equal(t, 0.5, s.FailoverS.P50)
}

func TestLag(t *testing.T) {
	l := Lag([]LagPoint{{T: 1, MS: 10}, {T: 2, MS: 500}, {T: 3, MS: 20}})
	assert.Equal(t, MirrorLag{Samples: 3, P50: 20, P99: 500, Max: 500, MaxAtS: 2, Final: 20,
		Series: []LagPoint{{T: 1, MS: 10}, {T: 2, MS: 500}, {T: 3, MS: 20}}}, l)
	assert.Equal(t, MirrorLag{}, Lag(nil))
}
