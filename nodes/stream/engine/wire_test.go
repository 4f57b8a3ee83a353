package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/topo"
)

type nopSpout struct{}

func (nopSpout) Next(uint64, *topo.Emitter) (bool, error) { return false, nil }

type nopBolt struct{}

func (nopBolt) Execute(*topo.Tuple, *topo.Emitter) error { return nil }

func testTopology(t testing.TB) *topo.Topology {
	b := topo.NewBuilder("wire")
	b.Spout("s", 2, []string{"word", "n"}, func(topo.Task) topo.Spout { return nopSpout{} })
	b.Sink("k", 2, func(topo.Task) topo.Bolt { return nopBolt{} }).Shuffle("s")
	tp, err := b.Build()
	require.NoError(t, err)
	return tp
}

func TestFrameRoundTrip(t *testing.T) {
	tp := testTopology(t)
	f := tp.Component("s").Out
	in := getBatch(3)
	for i, v := range []topo.Value{topo.Int(-7), topo.Float(2.5), topo.Int(1 << 40)} {
		var tu topo.Tuple
		require.NoError(t, tu.Set(f, topo.Str("héllo"), v))
		tu.Meta = topo.Meta{Src: 1, Spout: 2, Root: 0xfeed, Edge: uint64(i) + 9, Seq: 1 << 33, Key: 42, Mark: 7}
		in.tuples = append(in.tuples, tu)
	}
	msgs := []ctl{{kind: ctlInit, task: 1, root: 5, val: 6, seq: 7}, {kind: ctlDone, root: 1<<63 + 1, seq: 0}}

	buf := appendDataFrame(nil, in)
	buf = appendCtlFrame(buf, 4, msgs)
	dec := newDecoder(tp)

	r := reader{b: buf}
	n := r.u32()
	kind, dst, out, _, err := dec.decode(r.bytes(uint64(n)))
	require.NoError(t, err)
	assert.Equal(t, frameData, kind)
	assert.Equal(t, int32(3), dst)
	require.Len(t, out.tuples, 3)
	for i := range in.tuples {
		assert.Equal(t, in.tuples[i].Meta, out.tuples[i].Meta)
		assert.Equal(t, in.tuples[i].Values(), out.tuples[i].Values())
		assert.Equal(t, "héllo", out.tuples[i].Str("word"))
	}

	n = r.u32()
	kind, dst, _, gotMsgs, err := dec.decode(r.bytes(uint64(n)))
	require.NoError(t, err)
	assert.Equal(t, frameCtl, kind)
	assert.Equal(t, int32(4), dst)
	assert.Equal(t, msgs, gotMsgs)
	assert.Empty(t, r.b)
}

func TestDecodeRejects(t *testing.T) {
	tp := testTopology(t)
	good := getBatch(3)
	var tu topo.Tuple
	require.NoError(t, tu.Set(tp.Component("s").Out, topo.Str("a"), topo.Int(1)))
	tu.Src = 1
	good.tuples = append(good.tuples, tu)
	frame := appendDataFrame(nil, good)[frameHeader:]

	cases := map[string][]byte{
		"empty":          {},
		"unknown kind":   {9, 0, 0, 0, 0},
		"truncated":      frame[:len(frame)-1],
		"trailing bytes": append(append([]byte(nil), frame...), 0),
		"unknown source": func() []byte {
			b := append([]byte(nil), frame...)
			b[6] = 99 // Src of the first tuple: after kind, dst and a 1-byte count
			return b
		}(),
		"huge count": {frameCtl, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, _, err := newDecoder(tp).decode(body)
			require.ErrorIs(t, err, errCorrupt)
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	tp := testTopology(f)
	b := getBatch(3)
	var tu topo.Tuple
	tu.Set(tp.Component("s").Out, topo.Str("seed"), topo.Int(3))
	tu.Src = 2
	b.tuples = append(b.tuples, tu)
	f.Add(appendDataFrame(nil, b)[frameHeader:])
	f.Add(appendCtlFrame(nil, 1, []ctl{{kind: ctlAck, root: 1, val: 2}})[frameHeader:])
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, dst, out, msgs, err := newDecoder(tp).decode(body)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		var again []byte
		if kind == frameData {
			again = appendDataFrame(nil, out)
		} else {
			again = appendCtlFrame(nil, dst, msgs)
		}
		_, _, _, _, err = newDecoder(tp).decode(again[frameHeader:])
		require.NoError(t, err)
	})
}

func TestCheckpointRoundTrip(t *testing.T) {
	d := dedup{}
	for seq := uint64(0); seq < 10; seq++ {
		d.add(&topo.Meta{Spout: 1, Seq: seq, Key: 100 + seq, Mark: 4})
	}
	d.add(&topo.Meta{Spout: 2, Seq: 3, Key: 7})
	assert.True(t, d.seen(&topo.Meta{Spout: 1, Seq: 5, Key: 105}))
	assert.False(t, d.seen(&topo.Meta{Spout: 1, Seq: 5, Key: 999}), "same message, another tuple")
	assert.True(t, d.seen(&topo.Meta{Spout: 1, Seq: 2, Key: 999}), "below the mark: a stale duplicate")
	assert.False(t, d.seen(&topo.Meta{Spout: 3, Seq: 0, Key: 7}), "unknown spout")

	d.prune()
	assert.Len(t, d[1].keys, 6, "keys of messages 0-3 are dropped")

	data := encodeCheckpoint(d, []byte("bolt state"))
	got, snap, err := decodeCheckpoint(data)
	require.NoError(t, err)
	assert.Equal(t, d, got)
	assert.Equal(t, []byte("bolt state"), snap)

	_, _, err = decodeCheckpoint(data[:len(data)-len("bolt state")-1])
	require.Error(t, err)
}

func FuzzDecodeCheckpoint(f *testing.F) {
	d := dedup{}
	d.add(&topo.Meta{Spout: 1, Seq: 3, Key: 9, Mark: 1})
	f.Add(encodeCheckpoint(d, []byte("x")))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, snap, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		again, snap2, err := decodeCheckpoint(encodeCheckpoint(d, snap))
		require.NoError(t, err)
		assert.Equal(t, d, again)
		assert.Equal(t, snap, snap2)
	})
}
