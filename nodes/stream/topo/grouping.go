package topo

import "fmt"

// Chooser makes one emitting task's routing decisions for one subscription.
// It is not safe for concurrent use: each task owns its choosers.
type Chooser struct {
	in    *Input
	rng   uint64
	perm  []int32 // shuffle order, reshuffled after each pass
	pos   int
	lperm []int32 // local tasks, for LocalOrShuffle
	lpos  int
	one   [1]int32
}

// NewChooser returns the routing state for task src emitting into in.
func NewChooser(in *Input, src int32) *Chooser {
	c := &Chooser{in: in, rng: uint64(src)*0x9E3779B97F4A7C15 + 1}
	c.perm = append(c.perm, in.To.Tasks...)
	c.shuffle(c.perm)
	// Start each emitter at a different place so several small emitters do
	// not all hit the same task first.
	c.pos = int(src) % len(c.perm)
	return c
}

// Input returns the subscription the chooser routes for.
func (c *Chooser) Input() *Input { return c.in }

// SetLocal tells a LocalOrShuffle chooser which of the consumer's tasks run
// in the emitter's worker.
func (c *Chooser) SetLocal(tasks []int32) {
	c.lperm = c.lperm[:0]
	for _, id := range tasks {
		if c.TaskOwned(id) {
			c.lperm = append(c.lperm, id)
		}
	}
	c.shuffle(c.lperm)
	c.lpos = 0
}

// TaskOwned reports whether id is one of the consumer's tasks.
func (c *Chooser) TaskOwned(id int32) bool {
	ts := c.in.To.Tasks
	return len(ts) > 0 && id >= ts[0] && id <= ts[len(ts)-1]
}

// Choose returns the tasks that get e. The slice is only valid until the
// next call.
func (c *Chooser) Choose(e *Emitted) ([]int32, error) {
	switch c.in.Grouping {
	case Shuffle:
		c.one[0] = c.next(&c.perm, &c.pos)
	case LocalOrShuffle:
		if len(c.lperm) == 0 {
			c.one[0] = c.next(&c.perm, &c.pos)
		} else {
			c.one[0] = c.next(&c.lperm, &c.lpos)
		}
	case FieldsGrouping:
		h := uint64(fnvOffset)
		for _, i := range c.in.fieldIdx {
			h = hashValue(h, e.vals[i])
		}
		c.one[0] = c.in.To.Tasks[h%uint64(len(c.in.To.Tasks))]
	case All:
		return c.in.To.Tasks, nil
	case Global:
		c.one[0] = c.in.To.Tasks[0]
	case Direct:
		if !c.TaskOwned(e.Direct) {
			return nil, fmt.Errorf("direct emit to task %d, %q has tasks %v", e.Direct, c.in.To.Name, c.in.To.Tasks)
		}
		c.one[0] = e.Direct
	}
	if c.in.Grouping != Direct && e.Direct != 0 {
		return nil, fmt.Errorf("direct emit to %q, which subscribes with %s grouping", c.in.To.Name, c.in.Grouping)
	}
	return c.one[:], nil
}

// next walks a shuffled order and reshuffles after each full pass, as
// Storm's shuffle grouping does: every task gets the same share per pass.
func (c *Chooser) next(perm *[]int32, pos *int) int32 {
	p := *perm
	if *pos >= len(p) {
		c.shuffle(p)
		*pos = 0
	}
	id := p[*pos]
	*pos++
	return id
}

func (c *Chooser) shuffle(p []int32) {
	for i := len(p) - 1; i > 0; i-- {
		j := int(c.rand() % uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
}

// rand is splitmix64: cheap, and deterministic per emitter for tests.
func (c *Chooser) rand() uint64 {
	c.rng += 0x9E3779B97F4A7C15
	z := c.rng
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashValue folds v into an FNV-1a hash; equal values hash equally whatever
// task computes them, which fields grouping needs across workers.
func hashValue(h uint64, v Value) uint64 {
	h = (h ^ uint64(v.k)) * fnvPrime
	switch v.k {
	case KindString:
		for i := 0; i < len(v.s); i++ {
			h = (h ^ uint64(v.s[i])) * fnvPrime
		}
	case KindInt, KindFloat:
		for i := 0; i < 8; i++ {
			h = (h ^ uint64(byte(v.n>>(8*i)))) * fnvPrime
		}
	}
	return h
}
