package topo

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Task identifies one instance of a component. Task ids start at 1 and are
// numbered in component declaration order, as in Storm.
type Task struct {
	ID        int32
	Index     int // 0-based among the component's tasks
	Component string
}

// Spout is a replayable source. Messages are numbered 0, 1, 2, …; Next emits
// the tuples of message seq and is called again with the same seq when the
// message failed or timed out, so it must emit the same tuples each time
// (a file line, a broker offset). ok=false means seq is not available yet.
type Spout interface {
	Next(seq uint64, out *Emitter) (ok bool, err error)
}

// Committer is implemented by spouts that need to know how far processing
// got, e.g. to commit a broker offset after the ack.
type Committer interface {
	// Commit reports that every message below watermark was fully processed.
	Commit(watermark uint64)
}

// Bolt processes one tuple. Returning an error fails the tuple's message,
// which the spout then replays.
type Bolt interface {
	Execute(in *Tuple, out *Emitter) error
}

// Stateful is implemented by bolts and sinks whose state must survive a
// failure. The engine checkpoints Snapshot, acks inputs only once they are
// in a checkpoint, and marks inputs already applied as in.Dup: Execute must
// then leave its state alone (it may re-emit).
type Stateful interface {
	Snapshot() ([]byte, error)
	Restore(data []byte) error
}

// Flusher is implemented by stateful sinks that write to the outside world
// (a console, a database). The engine calls Flush before each checkpoint,
// so the inputs a checkpoint acks have reached the outside first
// (at-least-once there; exact when the writes are idempotent). An error
// skips that checkpoint: the acks wait for the next one.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Idempotent is implemented by Stateful bolts that may apply a tuple twice
// without harm (a maximum, a set). The engine still checkpoints them and
// holds their acks, but skips duplicate tracking, which is most of the
// cost of exactly-once state.
type Idempotent interface {
	Idempotent()
}

// Role is what kind of component a declaration made.
type Role uint8

// Component roles.
const (
	RoleSpout Role = iota
	RoleBolt
	RoleSink
)

var roleNames = [...]string{"spout", "bolt", "sink"}

func (r Role) String() string { return roleNames[r] }

// GroupingKind is how a component's tuples are spread over a consumer's tasks.
type GroupingKind uint8

// Groupings, as in Storm.
const (
	Shuffle GroupingKind = iota
	FieldsGrouping
	All
	Global
	Direct
	LocalOrShuffle
)

var groupingNames = [...]string{"shuffle", "fields", "all", "global", "direct", "local-or-shuffle"}

func (g GroupingKind) String() string { return groupingNames[g] }

// Input is one subscription of a bolt to another component's stream.
type Input struct {
	From     *Component
	To       *Component
	Grouping GroupingKind
	Fields   []string // for FieldsGrouping
	fieldIdx []int
}

// Component is a spout, bolt or sink with its tasks.
type Component struct {
	Name        string
	Role        Role
	Parallelism int
	Out         *Fields
	Tasks       []int32 // ascending
	Inputs      []*Input
	Consumers   []*Input // inputs of other components that read this one
	newSpout    func(Task) Spout
	newBolt     func(Task) Bolt
}

// Topology is a validated graph of components.
type Topology struct {
	Name       string
	Components []*Component
	byName     map[string]*Component
	byTask     []*Component // index: task id
}

// Component returns the named component or nil.
func (t *Topology) Component(name string) *Component { return t.byName[name] }

// NumTasks is the number of tasks; ids run from 1 to NumTasks.
func (t *Topology) NumTasks() int { return len(t.byTask) - 1 }

// TaskComponent returns the component running task id, or nil.
func (t *Topology) TaskComponent(id int32) *Component {
	if id <= 0 || int(id) >= len(t.byTask) {
		return nil
	}
	return t.byTask[id]
}

// TaskInfo describes task id.
func (t *Topology) TaskInfo(id int32) Task {
	c := t.TaskComponent(id)
	return Task{ID: id, Index: int(id - c.Tasks[0]), Component: c.Name}
}

// NewSpout and NewBolt build a fresh instance for a task.
func (t *Topology) NewSpout(id int32) Spout { return t.byTask[id].newSpout(t.TaskInfo(id)) }
func (t *Topology) NewBolt(id int32) Bolt   { return t.byTask[id].newBolt(t.TaskInfo(id)) }

// Builder declares a topology.
type Builder struct {
	name  string
	comps []*Component
	decls []*BoltDecl
	errs  []error
}

// NewBuilder starts a topology called name.
func NewBuilder(name string) *Builder { return &Builder{name: name} }

// Spout declares a spout with parallelism tasks emitting tuples of fields.
func (b *Builder) Spout(name string, parallelism int, fields []string, newSpout func(Task) Spout) {
	b.comps = append(b.comps, &Component{Name: name, Role: RoleSpout, Parallelism: parallelism, Out: NewFields(fields...), newSpout: newSpout})
}

// Bolt declares a bolt; subscribe it to streams on the returned declaration.
func (b *Builder) Bolt(name string, parallelism int, fields []string, newBolt func(Task) Bolt) *BoltDecl {
	return b.bolt(name, RoleBolt, parallelism, fields, newBolt)
}

// Sink declares a bolt that emits nothing.
func (b *Builder) Sink(name string, parallelism int, newBolt func(Task) Bolt) *BoltDecl {
	return b.bolt(name, RoleSink, parallelism, nil, newBolt)
}

func (b *Builder) bolt(name string, role Role, parallelism int, fields []string, newBolt func(Task) Bolt) *BoltDecl {
	c := &Component{Name: name, Role: role, Parallelism: parallelism, Out: NewFields(fields...), newBolt: newBolt}
	b.comps = append(b.comps, c)
	d := &BoltDecl{c: c}
	b.decls = append(b.decls, d)
	return d
}

// BoltDecl subscribes a bolt to other components' streams.
type BoltDecl struct {
	c   *Component
	ins []pendingInput
}

type pendingInput struct {
	from   string
	kind   GroupingKind
	fields []string
}

func (d *BoltDecl) add(from string, k GroupingKind, fields []string) *BoltDecl {
	d.ins = append(d.ins, pendingInput{from: from, kind: k, fields: fields})
	return d
}

// Shuffle spreads tuples evenly over the bolt's tasks.
func (d *BoltDecl) Shuffle(from string) *BoltDecl { return d.add(from, Shuffle, nil) }

// Fields sends tuples with equal values of fields to the same task.
func (d *BoltDecl) Fields(from string, fields ...string) *BoltDecl {
	return d.add(from, FieldsGrouping, fields)
}

// All sends every tuple to every task.
func (d *BoltDecl) All(from string) *BoltDecl { return d.add(from, All, nil) }

// Global sends every tuple to the task with the lowest id.
func (d *BoltDecl) Global(from string) *BoltDecl { return d.add(from, Global, nil) }

// Direct lets the emitter pick the task (Emitter.EmitDirect).
func (d *BoltDecl) Direct(from string) *BoltDecl { return d.add(from, Direct, nil) }

// LocalOrShuffle prefers tasks in the emitter's worker, shuffling among them.
func (d *BoltDecl) LocalOrShuffle(from string) *BoltDecl { return d.add(from, LocalOrShuffle, nil) }

// Build validates the declarations and numbers the tasks.
func (b *Builder) Build() (*Topology, error) {
	t := &Topology{Name: b.name, Components: b.comps, byName: map[string]*Component{}, byTask: []*Component{nil}}
	errs := append([]error(nil), b.errs...)
	for _, c := range b.comps {
		if _, dup := t.byName[c.Name]; dup || c.Name == "" {
			errs = append(errs, fmt.Errorf("component %q: name empty or declared twice", c.Name))
			continue
		}
		t.byName[c.Name] = c
		if c.Parallelism < 1 {
			errs = append(errs, fmt.Errorf("component %q: parallelism %d < 1", c.Name, c.Parallelism))
		}
		if c.Out.Len() > MaxFields {
			errs = append(errs, fmt.Errorf("component %q: %d fields, at most %d", c.Name, c.Out.Len(), MaxFields))
		}
		if c.Role != RoleSink && c.Out.Len() == 0 {
			errs = append(errs, fmt.Errorf("component %q: declares no output fields", c.Name))
		}
		if (c.Role == RoleSpout && c.newSpout == nil) || (c.Role != RoleSpout && c.newBolt == nil) {
			errs = append(errs, fmt.Errorf("component %q: no constructor", c.Name))
		}
		for i := 0; i < c.Parallelism; i++ {
			c.Tasks = append(c.Tasks, int32(len(t.byTask)))
			t.byTask = append(t.byTask, c)
		}
	}
	for _, d := range b.decls {
		if len(d.ins) == 0 {
			errs = append(errs, fmt.Errorf("bolt %q: subscribes to nothing", d.c.Name))
		}
		for _, p := range d.ins {
			from := t.byName[p.from]
			switch {
			case from == nil:
				errs = append(errs, fmt.Errorf("bolt %q: unknown input %q", d.c.Name, p.from))
				continue
			case from.Role == RoleSink:
				errs = append(errs, fmt.Errorf("bolt %q: input %q is a sink", d.c.Name, p.from))
				continue
			}
			in := &Input{From: from, To: d.c, Grouping: p.kind, Fields: p.fields}
			if p.kind == FieldsGrouping && len(p.fields) == 0 {
				errs = append(errs, fmt.Errorf("bolt %q: fields grouping on %q names no field", d.c.Name, p.from))
			}
			for _, f := range p.fields {
				i := from.Out.Index(f)
				if i < 0 {
					errs = append(errs, fmt.Errorf("bolt %q: %q has no field %q (has %v)", d.c.Name, p.from, f, from.Out.Names()))
				}
				in.fieldIdx = append(in.fieldIdx, i)
			}
			d.c.Inputs = append(d.c.Inputs, in)
			from.Consumers = append(from.Consumers, in)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("topology %s: %w", b.name, err)
	}
	if err := checkAcyclic(t); err != nil {
		return nil, fmt.Errorf("topology %s: %w", b.name, err)
	}
	return t, nil
}

// checkAcyclic rejects cycles: the engine's backpressure relies on tuples
// flowing one way, or two full queues could wait on each other forever.
func checkAcyclic(t *Topology) error {
	state := map[*Component]int{} // 1 visiting, 2 done
	var visit func(c *Component) error
	visit = func(c *Component) error {
		switch state[c] {
		case 1:
			return fmt.Errorf("cycle through %q", c.Name)
		case 2:
			return nil
		}
		state[c] = 1
		for _, in := range c.Consumers {
			if err := visit(in.To); err != nil {
				return err
			}
		}
		state[c] = 2
		return nil
	}
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(t.byName[n]); err != nil {
			return err
		}
	}
	return nil
}
