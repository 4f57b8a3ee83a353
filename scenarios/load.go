package scenarios

import (
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

// Ramp is an open load whose rate goes linearly from From to To requests
// per second over the run.
type Ramp struct{ From, To float64 }

// Step is an open load that starts at From requests per second and adds By
// every Every, up to Max, which it then holds: the shape of a capacity
// search.
type Step struct {
	From, By, Max float64
	Every         time.Duration
}

// Phase is one stretch of a phased load: a constant rate (From == To) or a
// ramp from From to To over For. A load's phases run one after another from
// the start, so a run can hold a quiet baseline, step up mid-run and
// decline; past the last phase the load sends nothing.
type Phase struct {
	For      time.Duration
	From, To float64
}

// Users is the closed model: N users, each waiting for its response and
// then thinking for Think (exponentially distributed around it when
// Exponential) before the next request.
type Users struct {
	N           int
	Think       time.Duration
	Exponential bool
}

// SLO is what every second of a sustainable load meets: a step load's
// capacity is its highest step that met it throughout.
type SLO struct {
	P99       time.Duration
	ErrorRate float64 // fraction of requests
}

// Bounds of the load models: past them a value is a typo, not a plan (and
// the loadgen would refuse it after the topology had started).
const (
	maxRate  = 1e6
	maxUsers = 100_000
	// minStepEvery is one second because results are per second: a capacity
	// search judges each step by its full seconds.
	minStepEvery     = time.Second
	defaultErrorRate = 0.01
)

// loadModels are the keys of which a load entry sets exactly one.
var loadModels = []string{"rate", "ramp", "step", "phases", "users"}

func (v *validator) loads(n *yaml.Node) []LoadSpec {
	items, _ := v.d.Seq(n, "load")
	var out []LoadSpec
	// A region runs at most one step and one users load: the capacity and
	// the response-time law are figures per region.
	perRegion := map[string]int{} // "model/region" → line
	for i, it := range items {
		p := yamlx.Index("load", i)
		m, ok := v.d.Mapping(it, p, append([]string{"regions", "workload", "timeout"}, loadModels...)...)
		if !ok {
			continue
		}
		l := LoadSpec{Timeout: defaultTimeout, Line: it.Line}
		l.Regions = v.regionList(m["regions"], yamlx.Field(p, "regions"))
		model := v.loadModel(it, m, p, &l)
		if model == "step" || model == "users" {
			for _, r := range l.Regions {
				key := model + "/" + r
				if line, dup := perRegion[key]; dup {
					v.d.Errorf(orNode(m["regions"], it), yamlx.Field(p, "regions"), "region %s already has a %s load (line %d); a region runs at most one", r, model, line)
				}
				perRegion[key] = it.Line
			}
		}
		if wn := m["workload"]; wn == nil {
			v.d.Required(it, yamlx.Field(p, "workload"), "")
		} else if w, ok := v.d.String(wn, yamlx.Field(p, "workload")); ok {
			v.known(wn, yamlx.Field(p, "workload"), "workload", w, v.opts.Workloads)
			l.Workload = w
		}
		if tn := m["timeout"]; tn != nil {
			if t, ok := v.d.Duration(tn, yamlx.Field(p, "timeout")); ok {
				if t == 0 {
					v.d.Errorf(tn, yamlx.Field(p, "timeout"), "must be positive")
				}
				l.Timeout = t
			}
		}
		out = append(out, l)
	}
	return out
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

// loadModel decodes the one model an entry sets and returns its key, or ""
// when none or several are set (reported).
func (v *validator) loadModel(it *yaml.Node, m map[string]*yaml.Node, p string, l *LoadSpec) string {
	var set []string
	for _, k := range loadModels {
		if m[k] != nil {
			set = append(set, k)
		}
	}
	switch len(set) {
	case 0:
		v.d.Errorf(it, p, "needs a load model: one of rate (req/s), ramp {from, to}, step {from, by, every, max}, phases [{for, rate or ramp}, ...] or users {n, think}")
		return ""
	case 1:
	default:
		v.d.Errorf(m[set[1]], yamlx.Field(p, set[1]), "%s and %s both set: a load has exactly one model", set[0], set[1])
		return ""
	}
	k := set[0]
	n, path := m[k], yamlx.Field(p, k)
	switch k {
	case "rate":
		l.Rate, _ = v.rate(n, path, true)
	case "ramp":
		l.Ramp = v.ramp(n, path)
	case "step":
		l.Step = v.step(n, path)
	case "phases":
		l.Phases = v.phases(n, path)
	case "users":
		l.Users = v.users(n, path)
	}
	return k
}

// rate reads a request rate in (0, maxRate], or [0, maxRate] when zero is
// allowed (a ramp's end).
func (v *validator) rate(n *yaml.Node, path string, positive bool) (float64, bool) {
	r, ok := v.d.Float(n, path)
	switch {
	case !ok:
	case positive && (r <= 0 || r > maxRate):
		v.d.Errorf(n, path, "must be in (0, %.0f] req/s, got %v", float64(maxRate), r)
		ok = false
	case !positive && (r < 0 || r > maxRate):
		v.d.Errorf(n, path, "must be in [0, %.0f] req/s, got %v", float64(maxRate), r)
		ok = false
	}
	return r, ok
}

// fields checks n is a mapping with exactly the known keys, the required
// ones present.
func (v *validator) fields(n *yaml.Node, path string, required []string, optional ...string) (map[string]*yaml.Node, bool) {
	m, ok := v.d.Mapping(n, path, append(slices.Clone(required), optional...)...)
	if !ok {
		return nil, false
	}
	for _, k := range required {
		if m[k] == nil {
			v.d.Required(n, yamlx.Field(path, k), "")
			ok = false
		}
	}
	return m, ok
}

func (v *validator) ramp(n *yaml.Node, path string) *Ramp {
	m, ok := v.fields(n, path, []string{"from", "to"})
	if !ok {
		return &Ramp{}
	}
	r := &Ramp{}
	var fromOK, toOK bool
	r.From, fromOK = v.rate(m["from"], yamlx.Field(path, "from"), false)
	r.To, toOK = v.rate(m["to"], yamlx.Field(path, "to"), false)
	if fromOK && toOK && r.From == 0 && r.To == 0 {
		v.d.Errorf(n, path, "from 0 to 0 sends nothing")
	}
	return r
}

func (v *validator) step(n *yaml.Node, path string) *Step {
	m, ok := v.fields(n, path, []string{"from", "by", "every", "max"})
	if !ok {
		return &Step{}
	}
	s := &Step{}
	var fromOK, maxOK bool
	s.From, fromOK = v.rate(m["from"], yamlx.Field(path, "from"), true)
	s.By, _ = v.rate(m["by"], yamlx.Field(path, "by"), true)
	s.Max, maxOK = v.rate(m["max"], yamlx.Field(path, "max"), true)
	if fromOK && maxOK && s.Max < s.From {
		v.d.Errorf(m["max"], yamlx.Field(path, "max"), "%v is below from %v", s.Max, s.From)
	}
	if e, ok := v.d.Duration(m["every"], yamlx.Field(path, "every")); ok {
		switch {
		case e < minStepEvery:
			v.d.Errorf(m["every"], yamlx.Field(path, "every"), "must be at least %s: results are per second, and a step is judged by its full seconds", minStepEvery)
		case v.duration > 0 && e > v.duration:
			v.d.Errorf(m["every"], yamlx.Field(path, "every"), "%s is longer than the run (duration %s): the load would never step", e, v.duration)
		}
		s.Every = e
	}
	return s
}

// phases reads a list of {for, rate} and {for, ramp: {from, to}} stretches;
// together they must fit in the run.
func (v *validator) phases(n *yaml.Node, path string) []Phase {
	items, ok := v.d.Seq(n, path)
	if !ok {
		return []Phase{}
	}
	if len(items) == 0 {
		v.d.Errorf(n, path, "needs at least one phase {for, rate} or {for, ramp: {from, to}}")
	}
	out := []Phase{}
	var total time.Duration
	for i, it := range items {
		p := yamlx.Index(path, i)
		m, ok := v.fields(it, p, []string{"for"}, "rate", "ramp")
		if !ok {
			continue
		}
		var ph Phase
		if d, ok := v.d.Duration(m["for"], yamlx.Field(p, "for")); ok {
			if d <= 0 {
				v.d.Errorf(m["for"], yamlx.Field(p, "for"), "must be positive")
			}
			ph.For = d
			total += d
		}
		switch rn, rampN := m["rate"], m["ramp"]; {
		case rn != nil && rampN != nil:
			v.d.Errorf(rampN, yamlx.Field(p, "ramp"), "rate and ramp both set: a phase has one")
		case rn != nil:
			ph.From, _ = v.rate(rn, yamlx.Field(p, "rate"), true)
			ph.To = ph.From
		case rampN != nil:
			r := v.ramp(rampN, yamlx.Field(p, "ramp"))
			ph.From, ph.To = r.From, r.To
		default:
			v.d.Errorf(it, p, "needs a rate (req/s) or a ramp {from, to}")
		}
		out = append(out, ph)
	}
	if v.duration > 0 && total > v.duration {
		v.d.Errorf(n, path, "the phases last %s, longer than the run (duration %s)", total, v.duration)
	}
	return out
}

func (v *validator) users(n *yaml.Node, path string) *Users {
	m, ok := v.fields(n, path, []string{"n", "think"}, "exponential")
	if !ok {
		return &Users{}
	}
	u := &Users{}
	if c, ok := v.d.Int(m["n"], yamlx.Field(path, "n")); ok {
		if c < 1 || c > maxUsers {
			v.d.Errorf(m["n"], yamlx.Field(path, "n"), "must be between 1 and %d, got %d", maxUsers, c)
		} else {
			u.N = int(c)
		}
	}
	u.Think, _ = v.d.Duration(m["think"], yamlx.Field(path, "think"))
	if en := m["exponential"]; en != nil {
		u.Exponential = v.boolean(en, yamlx.Field(path, "exponential"))
	}
	return u
}

func (v *validator) boolean(n *yaml.Node, path string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		v.d.Errorf(n, path, "must be true or false, not %q", n.Value)
	}
	return b
}

// slo decodes the scenario's SLO, which only a step load's capacity search
// uses: one set without a step load would silently judge nothing.
func (v *validator) slo(n *yaml.Node, loads []LoadSpec) *SLO {
	if yamlx.IsNull(n) {
		return nil
	}
	const p = "slo"
	m, ok := v.fields(n, p, []string{"p99"}, "error_rate")
	if !ok {
		return nil
	}
	s := &SLO{ErrorRate: defaultErrorRate}
	if d, ok := v.d.Duration(m["p99"], yamlx.Field(p, "p99")); ok {
		if d == 0 {
			v.d.Errorf(m["p99"], yamlx.Field(p, "p99"), "must be positive")
		}
		s.P99 = d
	}
	if en := m["error_rate"]; en != nil {
		if e, ok := v.d.Float(en, yamlx.Field(p, "error_rate")); ok {
			// Zero would ask that no request ever fail, which no second
			// of a real network meets; the search would judge noise.
			if e <= 0 || e > 1 {
				v.d.Errorf(en, yamlx.Field(p, "error_rate"), "must be in (0, 1], got %v", e)
			}
			s.ErrorRate = e
		}
	}
	if !slices.ContainsFunc(loads, func(l LoadSpec) bool { return l.Step != nil }) {
		v.d.Errorf(n, p, "no step load to search capacity with; the slo judges only step loads")
	}
	return s
}
