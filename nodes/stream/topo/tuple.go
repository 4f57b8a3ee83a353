// Package topo is the programming model of the stream engine: tuples with
// named fields, spouts, bolts and sinks, a builder that wires them with
// stream groupings, and the groupings' routing decisions. It knows nothing
// about goroutines or the network; the engine package runs what it builds.
package topo

import (
	"fmt"
	"math"
)

// MaxFields is how many fields a tuple carries. They are stored inline so
// emitting and routing a tuple does not allocate.
const MaxFields = 4

// Kind is the type of a Value.
type Kind uint8

// Value kinds. KindNone is the zero Value.
const (
	KindNone Kind = iota
	KindString
	KindInt
	KindFloat
)

// Value is one field of a tuple: a string, an int64 or a float64, held
// without boxing.
type Value struct {
	s string
	n int64
	k Kind
}

// Str, Int and Float make Values.
func Str(s string) Value       { return Value{s: s, k: KindString} }
func Int(n int64) Value        { return Value{n: n, k: KindInt} }
func Float(f float64) Value    { return Value{n: int64(math.Float64bits(f)), k: KindFloat} }
func (v Value) Kind() Kind     { return v.k }
func (v Value) Str() string    { return v.s }
func (v Value) Int() int64     { return v.n }
func (v Value) Float() float64 { return math.Float64frombits(uint64(v.n)) }

// Raw and FromRaw expose a Value's representation to codecs.
func (v Value) Raw() (Kind, string, int64) { return v.k, v.s, v.n }

// FromRaw rebuilds a Value from Raw's results.
func FromRaw(k Kind, s string, n int64) Value { return Value{s: s, n: n, k: k} }

func (v Value) String() string {
	switch v.k {
	case KindString:
		return v.s
	case KindInt:
		return fmt.Sprint(v.n)
	case KindFloat:
		return fmt.Sprint(v.Float())
	}
	return "<none>"
}

// Fields names the values of a component's output tuples, in order.
type Fields struct{ names []string }

// NewFields declares output field names.
func NewFields(names ...string) *Fields { return &Fields{names: append([]string(nil), names...)} }

// Len is the number of fields.
func (f *Fields) Len() int {
	if f == nil {
		return 0
	}
	return len(f.names)
}

// Names returns the field names.
func (f *Fields) Names() []string { return append([]string(nil), f.names...) }

// Index returns the position of name, or -1. A linear scan beats a map for
// at most MaxFields names.
func (f *Fields) Index(name string) int {
	if f == nil {
		return -1
	}
	for i, n := range f.names {
		if n == name {
			return i
		}
	}
	return -1
}

// Meta is what the engine attaches to a tuple for routing, acking and
// duplicate detection.
type Meta struct {
	Src   int32  // task that emitted the tuple
	Spout int32  // spout task whose message this tuple descends from (0: none)
	Root  uint64 // acker id of the message's tuple tree (0: not acked)
	Edge  uint64 // this tuple's id in the XOR ledger
	Seq   uint64 // the spout message's sequence number
	Key   uint64 // deterministic id of this tuple within the message, equal across replays
	Mark  uint64 // every seq below Mark was fully processed and checkpointed at the spout
	Dup   bool   // set on delivery to a stateful bolt that already applied Key
}

// Tuple is a list of values with the field names of the component that
// emitted it.
type Tuple struct {
	Meta
	fields *Fields
	vals   [MaxFields]Value
	n      uint8
}

// Set replaces the tuple's values. It returns an error when vals does not
// match f.
func (t *Tuple) Set(f *Fields, vals ...Value) error {
	if len(vals) != f.Len() || len(vals) > MaxFields {
		return fmt.Errorf("tuple has %d values, fields %v", len(vals), f.Names())
	}
	t.fields = f
	t.n = uint8(copy(t.vals[:], vals))
	return nil
}

// Fields returns the tuple's field names.
func (t *Tuple) Fields() *Fields { return t.fields }

// Len is the number of values.
func (t *Tuple) Len() int { return int(t.n) }

// Value returns the i-th value.
func (t *Tuple) Value(i int) Value { return t.vals[i] }

// Values returns the values, sharing the tuple's storage.
func (t *Tuple) Values() []Value { return t.vals[:t.n] }

// Get returns the value of the named field, or the zero Value.
func (t *Tuple) Get(name string) Value {
	if i := t.fields.Index(name); i >= 0 && i < int(t.n) {
		return t.vals[i]
	}
	return Value{}
}

// Str and Int return the named field.
func (t *Tuple) Str(name string) string { return t.Get(name).s }
func (t *Tuple) Int(name string) int64  { return t.Get(name).n }

// Emitted is one tuple a spout or bolt emitted, before routing.
type Emitted struct {
	Direct int32 // destination task for direct groupings, else 0
	n      uint8
	vals   [MaxFields]Value
}

// Values returns the emitted values.
func (e *Emitted) Values() []Value { return e.vals[:e.n] }

// Emitter collects what one Execute or Next call emits. It is a concrete
// type so the variadic calls stay on the stack.
type Emitter struct {
	width int
	out   []Emitted
	err   error
}

// NewEmitter makes an emitter for tuples of width fields.
func NewEmitter(width int) *Emitter { return &Emitter{width: width} }

// Emit emits a tuple on the component's output stream.
func (e *Emitter) Emit(vals ...Value) { e.add(0, vals) }

// EmitDirect emits a tuple to one task of a component subscribed with a
// direct grouping.
func (e *Emitter) EmitDirect(task int32, vals ...Value) { e.add(task, vals) }

func (e *Emitter) add(direct int32, vals []Value) {
	if len(vals) != e.width {
		if e.err == nil {
			e.err = fmt.Errorf("emitted %d values, component declares %d fields", len(vals), e.width)
		}
		return
	}
	e.out = append(e.out, Emitted{Direct: direct, n: uint8(len(vals))})
	copy(e.out[len(e.out)-1].vals[:], vals)
}

// Out returns what was emitted since the last Reset, and the first misuse.
func (e *Emitter) Out() ([]Emitted, error) { return e.out, e.err }

// Reset empties the emitter, keeping its storage.
func (e *Emitter) Reset() { e.out, e.err = e.out[:0], nil }
