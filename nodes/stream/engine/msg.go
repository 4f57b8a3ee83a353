// Package engine runs topologies: tasks as goroutines with bounded queues,
// Storm's XOR acking with timeouts and replay, checkpoints of stateful bolts
// with duplicate suppression, and tuples crossing workers over TCP. One
// Worker running every task is the in-process executor; several Workers
// with an Assignment are a cluster.
package engine

import (
	"sync"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// batch is a run of tuples for one task; batches move between tasks by
// pointer and are recycled, so the steady state does not allocate.
type batch struct {
	dst    int32
	tuples []topo.Tuple
}

var batchPool = sync.Pool{New: func() any { return &batch{} }}

func getBatch(dst int32) *batch {
	b := batchPool.Get().(*batch)
	b.dst = dst
	b.tuples = b.tuples[:0]
	return b
}

func putBatch(b *batch) { batchPool.Put(b) }

// Control message kinds between spouts, bolts and ackers.
const (
	ctlInit   uint8 = iota + 1 // spout → acker: new tree, val = XOR of the first edges
	ctlAck                     // bolt → acker: val = input edge XOR child edges
	ctlFail                    // bolt → acker: the tree failed
	ctlDone                    // acker → spout: tree complete
	ctlFailed                  // acker → spout: tree failed
)

// ctl is one acking message. Task is the spout task for ctlInit.
type ctl struct {
	kind uint8
	task int32
	root uint64
	val  uint64
	seq  uint64
}

// mailbox is an unbounded queue for control messages. Ackers and spouts
// read it; nobody blocks writing to it, which is what keeps the ack path
// from deadlocking with the data path's backpressure.
type mailbox struct {
	mu     sync.Mutex
	msgs   []ctl
	signal chan struct{}
}

func newMailbox() *mailbox { return &mailbox{signal: make(chan struct{}, 1)} }

func (m *mailbox) push(msgs []ctl) {
	m.mu.Lock()
	m.msgs = append(m.msgs, msgs...)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// drain swaps the queued messages for buf's storage.
func (m *mailbox) drain(buf []ctl) []ctl {
	m.mu.Lock()
	out := m.msgs
	m.msgs = buf[:0]
	m.mu.Unlock()
	return out
}

// inbox is a running task's input.
type inbox struct {
	data chan *batch
	ctl  *mailbox
	done chan struct{} // closed when the task stops, so senders stop waiting
}

func newInbox(queue int) *inbox {
	return &inbox{data: make(chan *batch, queue), ctl: newMailbox(), done: make(chan struct{})}
}

func mix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// rng is a per-task splitmix64 generator for tuple tree ids.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	for {
		r.s += 0x9E3779B97F4A7C15
		if v := mix64(r.s); v != 0 {
			return v
		}
	}
}
