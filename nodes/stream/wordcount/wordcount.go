// Package wordcount is the lecture's Storm example: a sentence spout (5
// tasks), a split bolt (8, shuffle grouping), a count bolt (12, fields
// grouping on "word") and a sink holding the latest count of every word.
package wordcount

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// Sentences is the spouts' input, cycled.
var Sentences = []string{
	"the cow jumped over the moon",
	"an apple a day keeps the doctor away",
	"four score and seven years ago",
	"snow white and the seven dwarfs",
	"i am at two with nature",
}

// Config shapes the topology.
type Config struct {
	PerSpout uint64  // messages per spout task; 0 means endless
	FailRate float64 // chance that split or count fails a tuple, to exercise replay
	// Rate bounds each spout task to this many new sentences a second, as
	// a real source produces them (0: as fast as the topology takes them).
	Rate float64
	// Source builds spout task index's spout, reading at most limit
	// messages (0: without end); nil: the built-in sentence generator.
	Source func(index int, limit uint64) topo.Spout
	// Sink is where the sink also writes the counts (a console, the db);
	// nil: it only keeps them in its checkpointed state.
	Sink      CountWriter
	Spouts    int
	Splitters int
	Counters  int
}

// Lecture is the parallelism of the lecture's word count.
func Lecture(perSpout uint64) Config {
	return Config{PerSpout: perSpout, Spouts: 5, Splitters: 8, Counters: 12}
}

// Build returns the topology.
func Build(c Config) (*topo.Topology, error) {
	b := topo.NewBuilder("wordcount")
	b.Spout("sentences", c.Spouts, []string{"sentence"}, func(t topo.Task) topo.Spout {
		if c.Source != nil {
			return c.Source(t.Index, c.PerSpout)
		}
		return &SentenceSpout{index: t.Index, limit: c.PerSpout, rate: c.Rate, now: time.Now}
	})
	b.Bolt("split", c.Splitters, []string{"word"}, func(t topo.Task) topo.Bolt {
		return &SplitBolt{fail: failer(c.FailRate, t.ID)}
	}).Shuffle("sentences")
	b.Bolt("count", c.Counters, []string{"word", "count"}, func(t topo.Task) topo.Bolt {
		return &CountBolt{Counts: map[string]int64{}, fail: failer(c.FailRate, t.ID)}
	}).Fields("split", "word")
	b.Sink("sink", 1, func(topo.Task) topo.Bolt { return NewSink(c.Sink) }).Global("count")
	return b.Build()
}

// failer returns a func reporting whether to fail the next tuple, seeded
// per task so runs are repeatable.
func failer(rate float64, task int32) func() bool {
	if rate <= 0 {
		return func() bool { return false }
	}
	r := rand.New(rand.NewPCG(uint64(task), 42))
	return func() bool { return r.Float64() < rate }
}

var errInjected = errors.New("injected failure")

// Sentence is what spout task index emits as message seq.
func Sentence(index int, seq uint64) string {
	return Sentences[(uint64(index)*3+seq)%uint64(len(Sentences))]
}

// Expected counts the words spouts tasks emit with perSpout messages each.
func Expected(spouts int, perSpout uint64) map[string]int64 {
	want := map[string]int64{}
	for i := range spouts {
		for seq := range perSpout {
			forEachWord(Sentence(i, seq), func(w string) { want[w]++ })
		}
	}
	return want
}

// SentenceSpout emits Sentences; replaying seq emits the same sentence.
// With a rate, sentence seq becomes available rate per second after the
// task first started: the epoch is part of the spout's checkpoint, so a
// task moved to another worker finds the backlog its source built up while
// it was down, as a real source's consumer would.
type SentenceSpout struct {
	index int
	limit uint64
	rate  float64
	now   func() time.Time
	epoch time.Time
}

// Next emits sentence seq, or reports that it is not due yet.
func (s *SentenceSpout) Next(seq uint64, out *topo.Emitter) (bool, error) {
	if s.limit > 0 && seq >= s.limit {
		return false, nil
	}
	if s.rate > 0 {
		now := s.now()
		if s.epoch.IsZero() {
			s.epoch = now
		}
		if float64(seq) >= s.rate*now.Sub(s.epoch).Seconds() {
			return false, nil
		}
	}
	out.Emit(topo.Str(Sentence(s.index, seq)))
	return true, nil
}

// Snapshot and Restore carry the epoch of a rate-limited spout.
func (s *SentenceSpout) Snapshot() ([]byte, error) {
	if s.epoch.IsZero() {
		return nil, nil
	}
	return binary.AppendVarint(nil, s.epoch.UnixNano()), nil
}

func (s *SentenceSpout) Restore(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	ns, n := binary.Varint(data)
	if n <= 0 || n != len(data) {
		return fmt.Errorf("sentence spout: bad checkpoint")
	}
	s.epoch = time.Unix(0, ns)
	return nil
}

// SplitBolt emits each word of a sentence.
type SplitBolt struct{ fail func() bool }

// Execute splits on spaces without allocating.
func (b *SplitBolt) Execute(in *topo.Tuple, out *topo.Emitter) error {
	if b.fail() {
		return errInjected
	}
	forEachWord(in.Value(0).Str(), func(w string) { out.Emit(topo.Str(w)) })
	return nil
}

func forEachWord(s string, f func(string)) {
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				f(s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
}

// CountBolt counts words and emits (word, count). It is stateful: the
// engine checkpoints Counts and marks replayed tuples, which change nothing
// but still re-emit the current count so the sink cannot miss the last one.
type CountBolt struct {
	Counts map[string]int64
	fail   func() bool
}

// Execute counts one word.
func (b *CountBolt) Execute(in *topo.Tuple, out *topo.Emitter) error {
	if b.fail() {
		return errInjected
	}
	w := in.Value(0).Str()
	if !in.Dup {
		b.Counts[w]++
	}
	out.Emit(topo.Str(w), topo.Int(b.Counts[w]))
	return nil
}

// Snapshot and Restore make the counts a checkpoint.
func (b *CountBolt) Snapshot() ([]byte, error) { return EncodeCounts(b.Counts), nil }
func (b *CountBolt) Restore(data []byte) error { return decodeInto(data, b.Counts) }

// Sink keeps the highest count seen per word: counts only grow, and a
// replay never reports more than the true count, so the maximum is exact
// once every message is acked. With a CountWriter it also writes the
// counts that changed to the outside before each checkpoint.
type Sink struct {
	Counts map[string]int64
	out    CountWriter
	dirty  map[string]int64 // changed since the last write out
}

// NewSink returns a sink writing to out (nil: nowhere).
func NewSink(out CountWriter) *Sink {
	return &Sink{Counts: map[string]int64{}, out: out, dirty: map[string]int64{}}
}

// Execute records one (word, count).
func (s *Sink) Execute(in *topo.Tuple, _ *topo.Emitter) error {
	w, n := in.Value(0).Str(), in.Value(1).Int()
	if n > s.Counts[w] {
		s.Counts[w] = n
		if s.out != nil {
			s.dirty[w] = n
		}
	}
	return nil
}

// Flush writes the counts that changed; the engine calls it before the
// checkpoint that acks them.
func (s *Sink) Flush(ctx context.Context) error {
	if s.out == nil || len(s.dirty) == 0 {
		return nil
	}
	if err := s.out.WriteCounts(ctx, s.dirty); err != nil {
		return err
	}
	clear(s.dirty)
	return nil
}

// Idempotent: applying a count twice leaves the maximum unchanged.
func (s *Sink) Idempotent() {}

func (s *Sink) Snapshot() ([]byte, error) { return EncodeCounts(s.Counts), nil }

// Restore needs not write anything out: the sink flushes before every
// checkpoint, so the outside already holds at least the restored counts.
func (s *Sink) Restore(data []byte) error { return decodeInto(data, s.Counts) }

// EncodeCounts serialises counts, words sorted so equal maps encode equally.
func EncodeCounts(m map[string]int64) []byte {
	out := binary.AppendUvarint(nil, uint64(len(m)))
	for _, w := range slices.Sorted(maps.Keys(m)) {
		out = binary.AppendUvarint(out, uint64(len(w)))
		out = append(out, w...)
		out = binary.AppendVarint(out, m[w])
	}
	return out
}

// DecodeCounts reverses EncodeCounts.
func DecodeCounts(data []byte) (map[string]int64, error) {
	m := map[string]int64{}
	return m, decodeInto(data, m)
}

func decodeInto(data []byte, m map[string]int64) error {
	clear(m)
	if len(data) == 0 {
		return nil
	}
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return fmt.Errorf("counts: bad header")
	}
	data = data[k:]
	for range n {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return fmt.Errorf("counts: bad word length")
		}
		w := string(data[k : k+int(l)])
		data = data[k+int(l):]
		c, k2 := binary.Varint(data)
		if k2 <= 0 {
			return fmt.Errorf("counts: bad count")
		}
		data = data[k2:]
		m[w] = c
	}
	if len(data) != 0 {
		return fmt.Errorf("counts: %d trailing bytes", len(data))
	}
	return nil
}
