package topo

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type nopSpout struct{}

func (nopSpout) Next(uint64, *Emitter) (bool, error) { return false, nil }

type nopBolt struct{}

func (nopBolt) Execute(*Tuple, *Emitter) error { return nil }

func spout(Task) Spout { return nopSpout{} }
func bolt(Task) Bolt   { return nopBolt{} }

// wordTopology is the lecture's word count shape, plus one consumer per
// grouping kind on the split bolt's stream.
func wordTopology(t *testing.T) *Topology {
	b := NewBuilder("wc")
	b.Spout("sentences", 5, []string{"sentence"}, spout)
	b.Bolt("split", 8, []string{"word"}, bolt).Shuffle("sentences")
	b.Bolt("count", 12, []string{"word", "count"}, bolt).Fields("split", "word")
	b.Sink("all", 3, bolt).All("split")
	b.Sink("global", 4, bolt).Global("split")
	b.Sink("direct", 3, bolt).Direct("count")
	b.Sink("local", 6, bolt).LocalOrShuffle("count")
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

func TestBuildNumbersTasks(t *testing.T) {
	topo := wordTopology(t)
	assert.Equal(t, 5+8+12+3+4+3+6, topo.NumTasks())
	assert.Equal(t, []int32{1, 2, 3, 4, 5}, topo.Component("sentences").Tasks)
	assert.Equal(t, int32(6), topo.Component("split").Tasks[0])
	info := topo.TaskInfo(7)
	assert.Equal(t, Task{ID: 7, Index: 1, Component: "split"}, info)
	assert.Nil(t, topo.TaskComponent(0))
	assert.Nil(t, topo.TaskComponent(int32(topo.NumTasks()+1)))
}

func TestBuildRejects(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *Builder)
		want  string
	}{
		{"unknown input", func(b *Builder) { b.Bolt("x", 1, []string{"a"}, bolt).Shuffle("nope") }, `unknown input "nope"`},
		{"unknown field", func(b *Builder) {
			b.Spout("s", 1, []string{"a"}, spout)
			b.Bolt("x", 1, []string{"a"}, bolt).Fields("s", "b")
		}, `has no field "b"`},
		{"zero parallelism", func(b *Builder) { b.Spout("s", 0, []string{"a"}, spout) }, "parallelism 0"},
		{"duplicate", func(b *Builder) {
			b.Spout("s", 1, []string{"a"}, spout)
			b.Spout("s", 1, []string{"a"}, spout)
		}, "declared twice"},
		{"too many fields", func(b *Builder) { b.Spout("s", 1, []string{"a", "b", "c", "d", "e"}, spout) }, "at most 4"},
		{"no inputs", func(b *Builder) { b.Sink("k", 1, bolt) }, "subscribes to nothing"},
		{"sink as input", func(b *Builder) {
			b.Spout("s", 1, []string{"a"}, spout)
			b.Sink("k", 1, bolt).Shuffle("s")
			b.Sink("k2", 1, bolt).Shuffle("k")
		}, "is a sink"},
		{"cycle", func(b *Builder) {
			b.Spout("s", 1, []string{"a"}, spout)
			b.Bolt("x", 1, []string{"a"}, bolt).Shuffle("s").Shuffle("y")
			b.Bolt("y", 1, []string{"a"}, bolt).Shuffle("x")
		}, "cycle"},
		{"fields grouping without fields", func(b *Builder) {
			b.Spout("s", 1, []string{"a"}, spout)
			b.Bolt("x", 1, []string{"a"}, bolt).Fields("s")
		}, "names no field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder("bad")
			tc.build(b)
			_, err := b.Build()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTupleFields(t *testing.T) {
	f := NewFields("word", "count")
	var tp Tuple
	require.NoError(t, tp.Set(f, Str("storm"), Int(3)))
	assert.Equal(t, "storm", tp.Str("word"))
	assert.Equal(t, int64(3), tp.Int("count"))
	assert.Equal(t, KindNone, tp.Get("missing").Kind())
	assert.Equal(t, 2.5, Float(2.5).Float())
	require.Error(t, tp.Set(f, Str("only one")))

	e := NewEmitter(2)
	e.Emit(Str("a"))
	_, err := e.Out()
	require.Error(t, err, "wrong arity is reported")
	e.Reset()
	e.Emit(Str("a"), Int(1))
	out, err := e.Out()
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, []Value{Str("a"), Int(1)}, out[0].Values())
}

func chooserFor(t *testing.T, topo *Topology, to string, src int32) *Chooser {
	t.Helper()
	for _, in := range topo.Component(to).Inputs {
		return NewChooser(in, src)
	}
	t.Fatalf("%s has no inputs", to)
	return nil
}

func emitted(vals ...Value) *Emitted {
	e := &Emitted{n: uint8(len(vals))}
	copy(e.vals[:], vals)
	return e
}

func TestFieldsGroupingSendsEachWordToOneTask(t *testing.T) {
	topo := wordTopology(t)
	owner := map[string]int32{}
	seen := map[int32]bool{}
	// Every split task routes independently; all must agree on the owner.
	for _, src := range topo.Component("split").Tasks {
		c := chooserFor(t, topo, "count", src)
		for i := range 2000 {
			w := fmt.Sprintf("word%d", i)
			got, err := c.Choose(emitted(Str(w)))
			require.NoError(t, err)
			require.Len(t, got, 1)
			if prev, ok := owner[w]; ok {
				require.Equal(t, prev, got[0], "word %q", w)
			}
			owner[w] = got[0]
			seen[got[0]] = true
		}
	}
	assert.Len(t, seen, 12, "2000 words reach every count task")
}

func TestAllGroupingSendsToEveryTask(t *testing.T) {
	topo := wordTopology(t)
	c := chooserFor(t, topo, "all", 6)
	for range 100 {
		got, err := c.Choose(emitted(Str("x")))
		require.NoError(t, err)
		assert.Equal(t, topo.Component("all").Tasks, got)
	}
}

func TestGlobalGroupingSendsToLowestTask(t *testing.T) {
	topo := wordTopology(t)
	lowest := topo.Component("global").Tasks[0]
	for _, src := range topo.Component("split").Tasks {
		c := chooserFor(t, topo, "global", src)
		for i := range 100 {
			got, err := c.Choose(emitted(Str(fmt.Sprint(i))))
			require.NoError(t, err)
			assert.Equal(t, []int32{lowest}, got)
		}
	}
}

func TestShuffleGroupingIsBalanced(t *testing.T) {
	topo := wordTopology(t)
	const n = 10000
	for _, srcs := range [][]int32{{1}, topo.Component("sentences").Tasks} {
		hits := map[int32]int{}
		choosers := map[int32]*Chooser{}
		for i := range n {
			src := srcs[i%len(srcs)]
			if choosers[src] == nil {
				choosers[src] = chooserFor(t, topo, "split", src)
			}
			got, err := choosers[src].Choose(emitted(Str("s")))
			require.NoError(t, err)
			hits[got[0]]++
		}
		mean := float64(n) / 8
		require.Len(t, hits, 8)
		for task, h := range hits {
			assert.InDelta(t, mean, float64(h), 0.15*mean, "task %d got %d of %d", task, h, n)
		}
	}
}

func TestDirectGrouping(t *testing.T) {
	topo := wordTopology(t)
	c := chooserFor(t, topo, "direct", topo.Component("count").Tasks[0])
	for _, task := range topo.Component("direct").Tasks {
		e := emitted(Str("w"), Int(1))
		e.Direct = task
		got, err := c.Choose(e)
		require.NoError(t, err)
		assert.Equal(t, []int32{task}, got)
	}
	e := emitted(Str("w"), Int(1))
	e.Direct = 1 // a spout task, not one of the consumer's
	_, err := c.Choose(e)
	require.Error(t, err)

	// Direct emits into a non-direct subscription are refused.
	shuffle := chooserFor(t, topo, "split", 1)
	e = emitted(Str("s"))
	e.Direct = topo.Component("split").Tasks[0]
	_, err = shuffle.Choose(e)
	require.Error(t, err)
}

func TestLocalOrShuffle(t *testing.T) {
	topo := wordTopology(t)
	tasks := topo.Component("local").Tasks
	c := chooserFor(t, topo, "local", topo.Component("count").Tasks[0])

	hits := map[int32]int{}
	for range 600 {
		got, err := c.Choose(emitted(Str("w"), Int(1)))
		require.NoError(t, err)
		hits[got[0]]++
	}
	assert.Len(t, hits, len(tasks), "no local tasks: shuffle over all")

	local := []int32{tasks[1], tasks[4], 9999}
	c.SetLocal(local)
	hits = map[int32]int{}
	for range 600 {
		got, err := c.Choose(emitted(Str("w"), Int(1)))
		require.NoError(t, err)
		hits[got[0]]++
	}
	assert.Equal(t, map[int32]int{tasks[1]: 300, tasks[4]: 300}, hits, "only local tasks, evenly; foreign ids ignored")
}

func BenchmarkEmitAndRoute(b *testing.B) {
	topo := func() *Topology {
		bd := NewBuilder("wc")
		bd.Spout("split", 8, []string{"word"}, spout)
		bd.Bolt("count", 12, []string{"word", "count"}, bolt).Fields("split", "word")
		tp, err := bd.Build()
		if err != nil {
			b.Fatal(err)
		}
		return tp
	}()
	c := NewChooser(topo.Component("count").Inputs[0], 1)
	e := NewEmitter(1)
	words := []string{"the", "cow", "jumped", "over", "moon", "an", "apple", "a", "day"}
	var sink int32
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Reset()
		e.Emit(Str(words[i%len(words)]))
		out, _ := e.Out()
		got, _ := c.Choose(&out[0])
		sink += got[0]
	}
	_ = sink
}
