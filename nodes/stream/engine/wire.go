package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// Frames between workers: u32 length of the rest | u8 kind | u32 dst | payload.
// A data payload is a batch of tuples for task dst; a control payload is a
// batch of acking messages. Several frames go out in one write.
const (
	frameData uint8 = 1
	frameCtl  uint8 = 2

	frameHeader  = 4
	maxFrameSize = 16 << 20
)

func appendFrameStart(buf []byte, kind uint8, dst int32) ([]byte, int) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, kind)
	return binary.LittleEndian.AppendUint32(buf, uint32(dst)), start
}

func finishFrame(buf []byte, start int) []byte {
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeader))
	return buf
}

func appendDataFrame(buf []byte, b *batch) []byte {
	buf, start := appendFrameStart(buf, frameData, b.dst)
	buf = binary.AppendUvarint(buf, uint64(len(b.tuples)))
	for i := range b.tuples {
		t := &b.tuples[i]
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t.Src))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t.Spout))
		buf = binary.LittleEndian.AppendUint64(buf, t.Root)
		buf = binary.LittleEndian.AppendUint64(buf, t.Edge)
		buf = binary.LittleEndian.AppendUint64(buf, t.Key)
		buf = binary.AppendUvarint(buf, t.Seq)
		buf = binary.AppendUvarint(buf, t.Mark)
		buf = append(buf, uint8(t.Len()))
		for _, v := range t.Values() {
			k, s, n := v.Raw()
			buf = append(buf, uint8(k))
			if k == topo.KindString {
				buf = binary.AppendUvarint(buf, uint64(len(s)))
				buf = append(buf, s...)
			} else {
				buf = binary.AppendVarint(buf, n)
			}
		}
	}
	return finishFrame(buf, start)
}

func appendCtlFrame(buf []byte, dst int32, msgs []ctl) []byte {
	buf, start := appendFrameStart(buf, frameCtl, dst)
	buf = binary.AppendUvarint(buf, uint64(len(msgs)))
	for _, m := range msgs {
		buf = append(buf, m.kind)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(m.task))
		buf = binary.LittleEndian.AppendUint64(buf, m.root)
		buf = binary.LittleEndian.AppendUint64(buf, m.val)
		buf = binary.AppendUvarint(buf, m.seq)
	}
	return finishFrame(buf, start)
}

// decoder turns frame bodies (after the length) back into batches. It
// interns strings: word streams repeat a small vocabulary, and a map lookup
// keyed by string(bytes) does not allocate.
type decoder struct {
	topo   *topo.Topology
	intern map[string]string
	ctls   []ctl
}

const maxInterned = 1 << 14

func newDecoder(t *topo.Topology) *decoder {
	return &decoder{topo: t, intern: map[string]string{}}
}

func (d *decoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxInterned {
		d.intern[s] = s
	}
	return s
}

// decode parses one frame body. Exactly one of the batch and the control
// messages is set; the control slice is reused by the next call.
func (d *decoder) decode(body []byte) (kind uint8, dst int32, b *batch, ctls []ctl, err error) {
	r := reader{b: body}
	kind = r.u8()
	dst = int32(r.u32())
	switch kind {
	case frameData:
		b = getBatch(dst)
		n := r.count(31)
		for range n {
			var m topo.Meta
			m.Src = int32(r.u32())
			m.Spout = int32(r.u32())
			m.Root = r.u64()
			m.Edge = r.u64()
			m.Key = r.u64()
			m.Seq = r.uvarint()
			m.Mark = r.uvarint()
			nv := int(r.u8())
			comp := d.topo.TaskComponent(m.Src)
			if r.err != nil || comp == nil || nv != comp.Out.Len() {
				putBatch(b)
				return 0, 0, nil, nil, fmt.Errorf("tuple from task %d with %d values: %w", m.Src, nv, errCorrupt)
			}
			var vals [topo.MaxFields]topo.Value
			for i := range nv {
				k := topo.Kind(r.u8())
				switch k {
				case topo.KindString:
					vals[i] = topo.Str(d.str(r.bytes(r.uvarint())))
				case topo.KindInt, topo.KindFloat:
					vals[i] = topo.FromRaw(k, "", r.varint())
				default:
					r.fail()
				}
			}
			if r.err != nil {
				break
			}
			b.tuples = append(b.tuples, topo.Tuple{})
			t := &b.tuples[len(b.tuples)-1]
			if err := t.Set(comp.Out, vals[:nv]...); err != nil {
				r.fail()
				break
			}
			t.Meta = m
		}
		if r.err != nil || len(r.b) != 0 {
			putBatch(b)
			return 0, 0, nil, nil, fmt.Errorf("data frame: %w", errCorrupt)
		}
		return kind, dst, b, nil, nil
	case frameCtl:
		d.ctls = d.ctls[:0]
		for range r.count(22) {
			d.ctls = append(d.ctls, ctl{kind: r.u8(), task: int32(r.u32()), root: r.u64(), val: r.u64(), seq: r.uvarint()})
		}
		if r.err != nil || len(r.b) != 0 {
			return 0, 0, nil, nil, fmt.Errorf("control frame: %w", errCorrupt)
		}
		return kind, dst, nil, d.ctls, nil
	}
	return 0, 0, nil, nil, fmt.Errorf("frame kind %d: %w", kind, errCorrupt)
}
