package engine

import (
	"sync/atomic"
	"time"
)

// ComponentStats are one component's counters over its tasks running on
// this worker, Storm UI's per-component figures: what it emitted and
// executed, how long its messages took to complete (spouts), and how busy
// its tasks were (bolts).
type ComponentStats struct {
	Emitted  atomic.Int64 // tuples emitted (a spout's messages, first time and replays)
	Executed atomic.Int64 // tuples executed (bolts and sinks)
	Acked    atomic.Int64 // spout messages whose tree completed
	Failed   atomic.Int64 // a spout's messages failed or timed out; tuples a bolt failed
	Replayed atomic.Int64 // spout messages emitted again
	// CompleteNanos sums, over acked messages, the time from their (last)
	// emit to their ack: with Acked, the mean complete latency.
	CompleteNanos atomic.Int64
	// BusyNanos is the time bolt tasks spent executing tuples: over a
	// window and the component's tasks, Storm's capacity (near 1: the
	// component is the bottleneck and needs more parallelism).
	BusyNanos atomic.Int64
}

func (s *ComponentStats) complete(sent, now time.Time) {
	s.Acked.Add(1)
	s.CompleteNanos.Add(int64(now.Sub(sent)))
}

// Components returns every component's counters by name. The map is fixed
// at Start; the counters move.
func (w *Worker) Components() map[string]*ComponentStats { return w.comps }
