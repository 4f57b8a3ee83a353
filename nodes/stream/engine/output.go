package engine

import (
	"context"
	"math/rand/v2"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// output routes one task's emitted tuples into per-destination batches and
// collects its acking messages, flushing both at the end of each step.
type output struct {
	w        *Worker
	src      int32
	comp     *topo.Component // nil for ackers
	choosers []*topo.Chooser
	localVer uint64
	bufs     []*batch // by destination task
	dirty    []int32
	ctls     [][]ctl // by destination task
	ctlDirty []int32
	rng      rng
}

func newOutput(w *Worker, src int32, comp *topo.Component) *output {
	o := &output{w: w, src: src, comp: comp, rng: rng{s: rand.Uint64()}}
	if comp != nil {
		for _, in := range comp.Consumers {
			o.choosers = append(o.choosers, topo.NewChooser(in, src))
		}
	}
	return o
}

// refresh points LocalOrShuffle choosers at the tasks now on this worker.
func (o *output) refresh() {
	r := o.w.routes.Load()
	if r.version == o.localVer {
		return
	}
	o.localVer = r.version
	for _, c := range o.choosers {
		if c.Input().Grouping == topo.LocalOrShuffle {
			c.SetLocal(r.here)
		}
	}
}

// emit routes what one step emitted. Each tuple gets m's tree fields, a key
// derived from m.Key and its position (equal on replay), and, when acked, a
// fresh edge id; the XOR of those edges is returned for the ack ledger.
func (o *output) emit(ctx context.Context, m topo.Meta, outs []topo.Emitted) (uint64, error) {
	var edges uint64
	parent := m.Key
	m.Src = o.src
	m.Dup = false
	for i := range outs {
		e := &outs[i]
		m.Key = mix64(parent ^ uint64(i+1)*0xD6E8FEB86659FD93)
		for _, c := range o.choosers {
			dsts, err := c.Choose(e)
			if err != nil {
				return edges, err
			}
			for _, d := range dsts {
				b := o.buf(d)
				b.tuples = append(b.tuples, topo.Tuple{})
				t := &b.tuples[len(b.tuples)-1]
				if err := t.Set(o.comp.Out, e.Values()...); err != nil {
					return edges, err
				}
				t.Meta = m
				if m.Root != 0 {
					t.Edge = o.rng.next()
					edges ^= t.Edge
				}
				if len(b.tuples) >= o.w.opts.BatchSize {
					o.bufs[d] = nil
					o.w.deliver(ctx, b)
				}
			}
		}
	}
	return edges, nil
}

func (o *output) buf(d int32) *batch {
	if int(d) >= len(o.bufs) {
		o.bufs = append(o.bufs, make([]*batch, int(d)+1-len(o.bufs))...)
	}
	b := o.bufs[d]
	if b == nil {
		b = getBatch(d)
		o.bufs[d] = b
		o.dirty = append(o.dirty, d)
	}
	return b
}

// ctl queues an acking message. Acks for the same tree in a row are folded
// into one, which is common: a sentence's words arrive together.
func (o *output) ctl(dst int32, m ctl) {
	if int(dst) >= len(o.ctls) {
		o.ctls = append(o.ctls, make([][]ctl, int(dst)+1-len(o.ctls))...)
	}
	q := o.ctls[dst]
	if len(q) == 0 {
		o.ctlDirty = append(o.ctlDirty, dst)
	} else if last := &q[len(q)-1]; m.kind == ctlAck && last.kind == ctlAck && last.root == m.root {
		last.val ^= m.val
		return
	}
	o.ctls[dst] = append(q, m)
}

// ack records that a tuple of tree root was processed.
func (o *output) ack(root, val uint64) {
	r := o.w.routes.Load()
	if len(r.ackers) > 0 {
		o.ctl(r.acker(root), ctl{kind: ctlAck, root: root, val: val})
	}
}

// flush sends every partial batch and queued acking message.
func (o *output) flush(ctx context.Context) {
	for _, d := range o.dirty {
		if b := o.bufs[d]; b != nil {
			o.bufs[d] = nil
			o.w.deliver(ctx, b)
		}
	}
	o.dirty = o.dirty[:0]
	for _, d := range o.ctlDirty {
		o.w.deliverCtl(ctx, d, o.ctls[d])
		o.ctls[d] = o.ctls[d][:0]
	}
	o.ctlDirty = o.ctlDirty[:0]
}
