package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// spoutBatchWindow bounds how long a spout collects a batch before sending
// it and reading its acks.
const spoutBatchWindow = 2 * time.Millisecond

type pending struct {
	root     uint64
	sent     time.Time
	deadline time.Time
}

// spoutState is a spout task's acking ledger: which messages are in flight,
// which must be replayed and how far everything is done.
type spoutState struct {
	next      uint64              // next new message
	watermark uint64              // every message below is complete
	mark      uint64              // watermark as of the last checkpoint
	done      map[uint64]struct{} // complete messages at or above watermark
	pending   map[uint64]pending
	replay    []uint64
}

func (s *spoutState) complete(seq uint64) {
	s.done[seq] = struct{}{}
	for {
		if _, ok := s.done[s.watermark]; !ok {
			return
		}
		delete(s.done, s.watermark)
		s.watermark++
	}
}

// Spout checkpoint: uvarint watermark | spout snapshot.
func encodeSpoutCheckpoint(watermark uint64, snapshot []byte) []byte {
	return append(binary.AppendUvarint(nil, watermark), snapshot...)
}

// SpoutWatermark reads a spout task's checkpoint: every message below the
// result is fully processed.
func SpoutWatermark(data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	w, n := binary.Uvarint(data)
	if n <= 0 {
		return 0, errCorrupt
	}
	return w, nil
}

// BoltSnapshot returns the bolt's own snapshot inside a stateful task's
// checkpoint (nil when there is none yet).
func BoltSnapshot(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	_, snap, err := decodeCheckpoint(data)
	return snap, err
}

func (w *Worker) runSpout(ctx context.Context, id int32, c *topo.Component, in *inbox) error {
	sp := w.topo.NewSpout(id)
	cs := w.comps[c.Name]
	st := &spoutState{done: map[uint64]struct{}{}, pending: map[uint64]pending{}}
	data, err := w.loadCheckpoint(ctx, id)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		wm, n := binary.Uvarint(data)
		if n <= 0 {
			return fmt.Errorf("spout checkpoint: %w", errCorrupt)
		}
		st.next, st.watermark, st.mark = wm, wm, wm
		if s, ok := sp.(topo.Stateful); ok {
			if err := s.Restore(data[n:]); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
	}
	out := newOutput(w, id, c)
	em := topo.NewEmitter(c.Out.Len())
	var ctlBuf []ctl
	idle := time.NewTimer(time.Millisecond)
	defer idle.Stop()
	lastCheck, lastCkpt := time.Now(), time.Now()
	var saving <-chan error // the checkpoint being saved, nil when none
	var savingMark uint64   // its watermark
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		ctlBuf = in.ctl.drain(ctlBuf)
		for _, m := range ctlBuf {
			p, ok := st.pending[m.seq]
			if !ok || p.root != m.root {
				continue // a tree from before a replay or a restart
			}
			delete(st.pending, m.seq)
			if m.kind == ctlDone {
				st.complete(m.seq)
				w.Stats.Acked.Add(1)
				cs.complete(p.sent, now)
			} else {
				st.replay = append(st.replay, m.seq)
				w.Stats.Failed.Add(1)
				cs.Failed.Add(1)
			}
		}
		if w.opts.Acking && now.Sub(lastCheck) >= w.opts.MessageTimeout/10 {
			lastCheck = now
			for seq, p := range st.pending {
				if now.After(p.deadline) {
					delete(st.pending, seq)
					st.replay = append(st.replay, seq)
					w.Stats.Failed.Add(1)
					cs.Failed.Add(1)
				}
			}
		}
		if saving != nil {
			select {
			case err := <-saving:
				saving = nil
				// A failed save is not fatal: the mark stamped on tuples
				// just stays behind until a save works.
				if err == nil {
					st.mark = savingMark
					if cm, ok := sp.(topo.Committer); ok {
						cm.Commit(savingMark)
					}
				}
			default:
			}
		}
		if w.opts.Acking && saving == nil && st.watermark > st.mark && now.Sub(lastCkpt) >= w.opts.Checkpoint {
			lastCkpt = now
			data, err := spoutCheckpoint(sp, st.watermark)
			if err != nil {
				return err
			}
			saving, savingMark = w.ckpt.submit(ctx, id, data), st.watermark
		}

		out.refresh()
		emitted, blocked := 0, false
		// A source that hands out messages as they arrive (a broker at
		// 200/s) would hold a whole batch for its last message: the first
		// would wait unsent, and the acks unread, for the batch's duration.
		// The batch closes once it has been open spoutBatchWindow.
		batchStart := time.Now()
		for emitted < w.opts.BatchSize && (emitted == 0 || time.Since(batchStart) < spoutBatchWindow) {
			if w.opts.Acking && len(st.pending) >= w.opts.MaxPending {
				blocked = true
				break
			}
			seq, replay := st.next, len(st.replay) > 0
			if replay {
				seq = st.replay[0]
			}
			em.Reset()
			ok, err := sp.Next(seq, em)
			if err != nil {
				return fmt.Errorf("next %d: %w", seq, err)
			}
			if !ok {
				blocked = true
				break
			}
			if replay {
				st.replay = st.replay[1:]
				w.Stats.Replayed.Add(1)
				cs.Replayed.Add(1)
			} else {
				st.next++
				w.Stats.Emitted.Add(1)
			}
			emitted++
			outs, err := em.Out()
			if err != nil {
				return err
			}
			cs.Emitted.Add(int64(len(outs)))
			m := topo.Meta{Spout: id, Seq: seq, Mark: st.mark, Key: mix64(uint64(id)<<48 ^ seq)}
			if w.opts.Acking {
				m.Root = out.rng.next()
			}
			edges, err := out.emit(ctx, m, outs)
			if err != nil {
				return err
			}
			if !w.opts.Acking {
				continue
			}
			if edges == 0 { // nothing emitted: complete at once
				st.complete(seq)
				w.Stats.Acked.Add(1)
				cs.complete(now, now)
				continue
			}
			st.pending[seq] = pending{root: m.Root, sent: now, deadline: now.Add(w.opts.MessageTimeout)}
			out.ctl(out.w.routes.Load().acker(m.Root), ctl{kind: ctlInit, task: id, root: m.Root, val: edges, seq: seq})
		}
		out.flush(ctx)
		if blocked {
			// Wait for acks or for the source to have more; the timer bounds
			// the wait so timeouts and checkpoints still run.
			idle.Reset(5 * time.Millisecond)
			select {
			case <-in.ctl.signal:
			case <-idle.C:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// spoutCheckpoint is a spout task's checkpoint at watermark.
func spoutCheckpoint(sp topo.Spout, watermark uint64) ([]byte, error) {
	var snap []byte
	if s, ok := sp.(topo.Stateful); ok {
		var err error
		if snap, err = s.Snapshot(); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	return encodeSpoutCheckpoint(watermark, snap), nil
}

func (w *Worker) runBolt(ctx context.Context, id int32, c *topo.Component, in *inbox) error {
	bolt := w.topo.NewBolt(id)
	cs := w.comps[c.Name]
	stateful, _ := bolt.(topo.Stateful)
	flusher, _ := bolt.(topo.Flusher)
	seen := dedup{}
	if stateful != nil {
		data, err := w.loadCheckpoint(ctx, id)
		if err != nil {
			return err
		}
		if len(data) > 0 {
			d, snap, err := decodeCheckpoint(data)
			if err != nil {
				return err
			}
			if err := stateful.Restore(snap); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			seen = d
		}
	}
	out := newOutput(w, id, c)
	em := topo.NewEmitter(c.Out.Len())
	// Acks wait for the checkpoint that covers their tuples: held ones for
	// the next, in-flight ones for the one being saved.
	var held, inflight []ctl
	var saving <-chan error
	var tick <-chan time.Time
	if stateful != nil {
		t := time.NewTicker(w.opts.Checkpoint)
		defer t.Stop()
		tick = t.C
	}
	_, idempotent := bolt.(topo.Idempotent)
	dedupOn := stateful != nil && !idempotent && w.opts.Acking
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if saving != nil {
				continue
			}
			if flusher != nil && flusher.Flush(ctx) != nil {
				continue
			}
			seen.prune()
			snap, err := stateful.Snapshot()
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			saving = w.ckpt.submit(ctx, id, encodeCheckpoint(seen, snap))
			held, inflight = inflight[:0], held
		case err := <-saving:
			saving = nil
			if err != nil {
				// The next checkpoint covers these tuples too; meanwhile
				// their trees may time out and replay.
				held = append(held, inflight...)
				inflight = inflight[:0]
				continue
			}
			for _, m := range inflight {
				out.ack(m.root, m.val)
			}
			inflight = inflight[:0]
			out.flush(ctx)
		case b := <-in.data:
			began := time.Now()
			out.refresh()
			emitted := 0
			for i := range b.tuples {
				t := &b.tuples[i]
				if dedupOn && t.Spout != 0 {
					t.Dup = seen.seen(&t.Meta)
				}
				em.Reset()
				if err := bolt.Execute(t, em); err != nil {
					cs.Failed.Add(1)
					if t.Root != 0 {
						if r := w.routes.Load(); len(r.ackers) > 0 {
							out.ctl(r.acker(t.Root), ctl{kind: ctlFail, root: t.Root})
						}
					}
					continue
				}
				outs, err := em.Out()
				if err != nil {
					return err
				}
				emitted += len(outs)
				m := t.Meta
				edges, err := out.emit(ctx, m, outs)
				if err != nil {
					return err
				}
				if dedupOn && t.Spout != 0 && !t.Dup {
					seen.add(&t.Meta)
				}
				if t.Root == 0 {
					continue
				}
				if stateful != nil {
					held = append(held, ctl{root: t.Root, val: t.Edge ^ edges})
				} else {
					out.ack(t.Root, t.Edge^edges)
				}
			}
			w.Stats.Executed.Add(int64(len(b.tuples)))
			cs.Executed.Add(int64(len(b.tuples)))
			cs.Emitted.Add(int64(emitted))
			putBatch(b)
			out.flush(ctx)
			// Busy includes the flush: a task waiting on a full downstream
			// queue is as unavailable as one computing.
			cs.BusyNanos.Add(int64(time.Since(began)))
		}
	}
}

type ackEntry struct {
	val    uint64
	seq    uint64
	spout  int32
	inited bool
	failed bool
}

// runAcker keeps the XOR ledger of the trees whose root hashes to it. Trees
// that never complete are forgotten after two timeouts (the spout has
// replayed them by then), as in Storm's rotating map.
func (w *Worker) runAcker(ctx context.Context, id int32, in *inbox) error {
	cur, old := map[uint64]*ackEntry{}, map[uint64]*ackEntry{}
	out := newOutput(w, id, nil)
	rotate := time.NewTicker(w.opts.MessageTimeout)
	defer rotate.Stop()
	var buf []ctl
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rotate.C:
			old, cur = cur, map[uint64]*ackEntry{}
			continue
		case <-in.ctl.signal:
		}
		buf = in.ctl.drain(buf)
		for _, m := range buf {
			e := cur[m.root]
			if e == nil {
				if e = old[m.root]; e != nil {
					delete(old, m.root)
				} else {
					e = &ackEntry{}
				}
				cur[m.root] = e
			}
			switch m.kind {
			case ctlInit:
				e.val ^= m.val
				e.inited, e.spout, e.seq = true, m.task, m.seq
			case ctlAck:
				e.val ^= m.val
			case ctlFail:
				e.failed = true
			}
			if !e.inited {
				continue
			}
			if e.failed {
				out.ctl(e.spout, ctl{kind: ctlFailed, root: m.root, seq: e.seq})
				delete(cur, m.root)
			} else if e.val == 0 {
				out.ctl(e.spout, ctl{kind: ctlDone, root: m.root, seq: e.seq})
				delete(cur, m.root)
			}
		}
		out.flush(ctx)
	}
}

// loadCheckpoint retries until the store answers: starting from nothing
// when a checkpoint exists would count everything before it twice.
func (w *Worker) loadCheckpoint(ctx context.Context, id int32) ([]byte, error) {
	for {
		data, err := w.opts.Store.Load(ctx, id)
		if err == nil {
			return data, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("load checkpoint: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
