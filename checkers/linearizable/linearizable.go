// Package linearizable checks a register workload's history with porcupine:
// a key/value register model with compare-and-set, partitioned per key.
package linearizable

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// Result is porcupine's verdict.
type Result string

const (
	Ok      Result = "linearizable"
	Illegal Result = "not-linearizable"
	Unknown Result = "unknown" // the check timed out
)

// Summary is what the run's summary.json records.
type Summary struct {
	Result Result `json:"result"`
	// Linearizable is true, false, or nil (JSON null) when unknown.
	Linearizable *bool `json:"linearizable"`
	Operations   int   `json:"operations"`
	// Indefinite writes are checked as possibly taking effect at any time
	// after their call. Unobserved ones (no read returned their value, no
	// CAS expected or reported it) are left out: one may always take effect
	// last, where it changes nothing, so the verdict is the same, and each
	// left in multiplies porcupine's search.
	Indefinite int `json:"indefinite"`
	Unobserved int `json:"unobserved"`
	// Skipped: failed reads and definitely failed writes (no effect), and
	// reads below the linearizable level (not linearizable by contract).
	Skipped       int    `json:"skipped"`
	Keys          int    `json:"keys"`
	Visualization string `json:"visualization,omitempty"`
}

type config struct {
	timeout time.Duration
	html    string
}

// Option configures Check.
type Option func(*config)

// Timeout bounds porcupine's search (default 60 s); past it the result is
// Unknown.
func Timeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Visualize writes porcupine's HTML visualization to path.
func Visualize(path string) Option { return func(c *config) { c.html = path } }

// state is one register: absent, or holding Value.
type state struct {
	Exists bool
	Value  string
}

type input struct {
	Kind string
	dbwork.Input
}

// Model is the register model; a history is partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() any { return state{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(state), in.(input), out.(dbwork.Output)
		switch i.Kind {
		case dbwork.KindRead:
			return o.Found == s.Exists && (!s.Exists || o.Value == s.Value), s
		case dbwork.KindWrite:
			return true, state{Exists: true, Value: i.Value}
		case dbwork.KindCAS:
			matches := s.Exists == (i.Expect != nil) && (i.Expect == nil || *i.Expect == s.Value)
			switch {
			case o.Indefinite:
				if matches {
					return true, state{Exists: true, Value: i.Value}
				}
				return true, s
			case o.OK:
				return matches, state{Exists: true, Value: i.Value}
			default:
				// The conflict also reports the state it saw.
				return !matches && o.Found == s.Exists && (!s.Exists || o.Value == s.Value), s
			}
		}
		return false, s
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(dbwork.Output)
		switch i.Kind {
		case dbwork.KindRead:
			if !o.Found {
				return fmt.Sprintf("get(%s) → absent", i.Key)
			}
			return fmt.Sprintf("get(%s) → %s", i.Key, o.Value)
		case dbwork.KindWrite:
			return fmt.Sprintf("put(%s, %s)%s", i.Key, i.Value, outcome(o))
		default:
			exp := "absent"
			if i.Expect != nil {
				exp = *i.Expect
			}
			return fmt.Sprintf("cas(%s, %s→%s)%s", i.Key, exp, i.Value, outcome(o))
		}
	},
	DescribeState: func(st any) string {
		s := st.(state)
		if !s.Exists {
			return "absent"
		}
		return s.Value
	},
}

func outcome(o dbwork.Output) string {
	switch {
	case o.Indefinite:
		return " → ?"
	case o.OK:
		return " → ok"
	default:
		return " → conflict"
	}
}

// Check decides whether the register operations in ops are linearizable.
// Every key is assumed absent before the history starts.
func Check(ops []loadgen.Operation, opts ...Option) (Summary, error) {
	cfg := config{timeout: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	hist, sum, err := convert(ops)
	if err != nil {
		return Summary{}, err
	}
	res, info := porcupine.CheckOperationsVerbose(Model, hist, cfg.timeout)
	switch res {
	case porcupine.Ok:
		sum.Result, sum.Linearizable = Ok, ptr(true)
	case porcupine.Illegal:
		sum.Result, sum.Linearizable = Illegal, ptr(false)
	default:
		sum.Result = Unknown
	}
	if cfg.html != "" {
		if err := porcupine.VisualizePath(Model, info, cfg.html); err != nil {
			return sum, fmt.Errorf("linearizability visualization %s: %w", cfg.html, err)
		}
		sum.Visualization = cfg.html
	}
	return sum, nil
}

func ptr[T any](v T) *T { return &v }

// convert keeps the operations porcupine must see: successful linearizable
// reads and every write that did or may have taken effect. Process ids are
// renumbered densely because porcupine's visualization draws one row per
// client id.
func convert(ops []loadgen.Operation) ([]porcupine.Operation, Summary, error) {
	var sum Summary
	if len(ops) == 0 {
		return nil, sum, nil
	}
	origin := ops[0].Call
	for _, op := range ops {
		if op.Call.Before(origin) {
			origin = op.Call
		}
	}
	type decoded struct {
		op  loadgen.Operation
		in  dbwork.Input
		out dbwork.Output
	}
	var regOps []decoded
	observed := map[[2]string]bool{} // key, value
	for i, op := range ops {
		if op.Kind != dbwork.KindRead && op.Kind != dbwork.KindWrite && op.Kind != dbwork.KindCAS {
			continue
		}
		in, out, err := dbwork.Decode(op)
		if err != nil {
			return nil, sum, fmt.Errorf("linearizability: operation %d: %w", i, err)
		}
		regOps = append(regOps, decoded{op, in, out})
		if op.Error == "" && out.Found && (op.Kind != dbwork.KindCAS || !out.OK) {
			observed[[2]string{in.Key, out.Value}] = true
		}
		if in.Expect != nil {
			observed[[2]string{in.Key, *in.Expect}] = true
		}
	}
	clients := map[int]int{}
	keys := map[string]bool{}
	var hist []porcupine.Operation
	for _, d := range regOps {
		op, in, out := d.op, d.in, d.out
		ret := op.Return.Sub(origin).Nanoseconds()
		switch {
		case op.Kind == dbwork.KindRead && (op.Error != "" || in.Consistency != dbclient.Linearizable):
			sum.Skipped++
			continue
		case op.Kind != dbwork.KindRead && out.Indefinite && !observed[[2]string{in.Key, in.Value}]:
			sum.Indefinite++
			sum.Unobserved++
			continue
		case op.Kind != dbwork.KindRead && out.Indefinite:
			ret = math.MaxInt64
			sum.Indefinite++
		case op.Error != "":
			sum.Skipped++
			continue
		}
		id, ok := clients[op.Client]
		if !ok {
			id = len(clients)
			clients[op.Client] = id
		}
		keys[in.Key] = true
		hist = append(hist, porcupine.Operation{
			ClientId: id,
			Input:    input{Kind: op.Kind, Input: in},
			Call:     op.Call.Sub(origin).Nanoseconds(),
			Output:   out,
			Return:   ret,
		})
	}
	sum.Operations, sum.Keys = len(hist), len(keys)
	return hist, sum, nil
}
