// Package scenarios reads scenario files: which topology to start, the load
// to drive, the faults to inject (an explicit timeline and a seeded random
// nemesis) and the checks that decide pass or fail. It validates everything
// before anything starts and expands the fault schedule deterministically
// from the seed, so a run can be replayed.
package scenarios

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
	"github.com/faultline/faultline/topology"
)

// Scenario is a validated scenario file.
type Scenario struct {
	Name        string
	Description string
	File        string
	Topology    *topology.Topology
	Seed        int64
	Duration    time.Duration
	Load        []LoadSpec
	// History are the history workloads (see HistoryLoad).
	History []HistoryLoad
	// SLO judges the step loads' capacity search; nil when the scenario
	// searches none.
	SLO     *SLO
	Faults  []FaultSpec
	Nemesis *Nemesis
	Checks  []Check
	// Autoscale are the regions' web-tier scaling policies (autoscale.go).
	Autoscale []Autoscale
}

// LoadSpec is the load each of its regions' loadgens drives. Exactly one
// model is set: Rate (constant), Ramp, Step, Phases or Users. (Not named
// Load: that is the function reading a file, as in package topology.)
type LoadSpec struct {
	Regions  []string // region names; "all" is expanded when parsed
	Rate     float64  // requests per second per region; 0 when another model is set
	Ramp     *Ramp
	Step     *Step
	Phases   []Phase
	Users    *Users
	Workload string
	Timeout  time.Duration
	Line     int // of the entry in the file, for messages
}

// Target names one node, or selects Count nodes at random (from the seed)
// among those matching Role and/or Region.
type Target struct {
	Node   string
	Role   string
	Region string
	Count  int
	// Pick chooses the node when the fault is injected (PickLeader: the
	// role's current leader) instead of from the seed.
	Pick string
}

// FaultSpec is one fault of the explicit timeline. For is always set: when
// the file omits it, the fault lasts until the end of the run.
type FaultSpec struct {
	At, For time.Duration
	Kind    string
	Target  Target
	// Peer is the other side of a partition or link; nil means everything
	// else in the run.
	Peer   *Target
	OneWay bool
	Link   LinkChange
	Line   int // of the fault in the file, for messages
}

// Nemesis injects a random fault (kind and target chosen from the seed)
// every Every from Start, each lasting For.
type Nemesis struct {
	Every, For, Start time.Duration
	Kinds             []string
	Targets           Target
	Line              int
}

// Check is a threshold on one measured figure.
type Check struct {
	Name     string
	Metric   string
	Region   string // empty: all regions combined
	Min, Max *float64
}

// Options are the names registered by the packages that implement them. The
// caller passes them so that this package depends on no registry.
type Options struct {
	FaultKinds, Workloads, Metrics []string
	HistoryWorkloads               []string
	UnsafeSwitches                 []string
}

const (
	defaultTimeout = 2 * time.Second
	// maxNemesisFaults bounds expansion: a schedule this long is a typo in
	// `every`, not a plan.
	maxNemesisFaults = 10000
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Expr renders the check as a comparison, e.g. "error_rate{region=us-east} <= 0.05".
func (c Check) Expr() string {
	m := c.Metric
	if c.Region != "" {
		m += "{region=" + c.Region + "}"
	}
	switch {
	case c.Min != nil && c.Max != nil:
		return fmtFloat(*c.Min) + " <= " + m + " <= " + fmtFloat(*c.Max)
	case c.Min != nil:
		return m + " >= " + fmtFloat(*c.Min)
	case c.Max != nil:
		return m + " <= " + fmtFloat(*c.Max)
	}
	return m
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Load reads and parses a scenario file.
func Load(path string, opts Options) (*Scenario, error) {
	data, err := topology.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, opts)
}

// Parse decodes and validates a scenario; a relative topology path resolves
// against the directory of file. Errors are an *yamlx.Errors naming
// file:line:column and field for every problem found.
func Parse(file string, data []byte, opts Options) (*Scenario, error) {
	d := yamlx.NewDecoder(file)
	root := d.Parse(data)
	if root == nil {
		return nil, d.Err()
	}
	m, ok := d.Mapping(root, "", "name", "description", "topology", "seed", "duration", "load", "history", "slo", "faults", "nemesis", "checks", "autoscale", "unsafe")
	if !ok {
		return nil, d.Err()
	}
	base := filepath.Base(file)
	s := &Scenario{Name: strings.TrimSuffix(base, filepath.Ext(base)), File: file}
	if n := m["name"]; n != nil {
		if v, ok := d.String(n, "name"); ok {
			if !nameRE.MatchString(v) {
				d.Errorf(n, "name", "%q must be 1 to 63 letters, digits, '.', '_' or '-'", v)
			}
			s.Name = v
		}
	}
	if n := m["description"]; n != nil && !yamlx.IsNull(n) {
		s.Description, _ = d.String(n, "description")
	}
	s.Topology = decodeTopology(d, m["topology"], file)
	if n := m["seed"]; n != nil {
		s.Seed, _ = d.Int(n, "seed")
	}
	durationOK := false
	if n := m["duration"]; n == nil {
		d.Required(root, "duration", `a duration like "45s"`)
	} else if v, ok := d.Duration(n, "duration"); ok {
		if v == 0 {
			d.Errorf(n, "duration", "must be positive")
		} else {
			s.Duration, durationOK = v, true
		}
	}
	v := validator{d: d, opts: opts, top: s.Topology}
	if s.Topology != nil {
		v.plan = s.Topology.Plan("")
	}
	if durationOK {
		v.duration = s.Duration
	}
	s.Load = v.loads(m["load"])
	s.History = v.histories(m["history"])
	s.SLO = v.slo(m["slo"], s.Load)
	s.Faults = v.faults(m["faults"])
	s.Nemesis = v.nemesis(m["nemesis"])
	s.Checks = v.checks(m["checks"])
	v.unsafe(m["unsafe"], s.Topology)
	s.Autoscale = v.autoscale(m["autoscale"])
	if d.Len() > 0 {
		return nil, d.Err()
	}
	// Expanding against the topology's own plan finds conflicts (overlapping
	// faults on one node, selectors with too few free nodes) while line
	// numbers are still at hand.
	if _, err := s.Expand(v.plan); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeTopology(d *yamlx.Decoder, n *yaml.Node, file string) *topology.Topology {
	if yamlx.IsNull(n) {
		return topology.Default()
	}
	if n.Kind == yaml.MappingNode {
		t, ok := topology.Decode(d, n, "topology")
		if !ok {
			return nil
		}
		return t
	}
	p, ok := d.String(n, "topology")
	if !ok {
		return nil
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(file), p)
	}
	t, err := topology.Load(p)
	if err != nil {
		d.Merge(n, "topology", err)
		return nil
	}
	return t
}

// validator decodes the parts of a scenario that refer to its topology and
// duration; when either is invalid (already reported) the checks that need it
// are skipped, so one mistake gives one message.
type validator struct {
	d        *yamlx.Decoder
	opts     Options
	top      *topology.Topology // nil if invalid
	plan     []topology.NodePlan
	duration time.Duration // 0 if invalid
}

// regionList expands a list of region names or "all"; absent means all.
func (v *validator) regionList(n *yaml.Node, path string) []string {
	var all []string
	if v.top != nil {
		for _, r := range v.top.Regions {
			all = append(all, r.Name)
		}
	}
	if n == nil {
		return all
	}
	names, ok := v.d.Strings(n, path)
	if !ok {
		return nil
	}
	if len(names) == 0 {
		v.d.Errorf(n, path, `must name at least one region, or be [all]`)
		return nil
	}
	if slices.Contains(names, "all") {
		if len(names) > 1 {
			v.d.Errorf(n, path, `"all" already means every region; list it alone`)
		}
		return all
	}
	seen := map[string]bool{}
	for i, name := range names {
		if seen[name] {
			v.d.Errorf(n.Content[i], yamlx.Index(path, i), "region %q is listed twice", name)
		}
		seen[name] = true
		v.region(n.Content[i], yamlx.Index(path, i), name)
	}
	return names
}

// region reports name if the topology is valid and has no such region.
func (v *validator) region(n *yaml.Node, path, name string) {
	if v.top == nil {
		return
	}
	if _, ok := v.top.Region(name); !ok {
		var names []string
		for _, r := range v.top.Regions {
			names = append(names, r.Name)
		}
		v.d.Errorf(n, path, "unknown region %q%s", name, yamlx.Hint(name, names))
	}
}

func (v *validator) known(n *yaml.Node, path, what, name string, registered []string) {
	if !slices.Contains(registered, name) {
		v.d.Errorf(n, path, "unknown %s %q%s", what, name, yamlx.Hint(name, registered))
	}
}

func (v *validator) faults(n *yaml.Node) []FaultSpec {
	items, _ := v.d.Seq(n, "faults")
	var out []FaultSpec
	for i, it := range items {
		p := yamlx.Index("faults", i)
		m, ok := v.d.Mapping(it, p, append([]string{"at", "kind", "target", "for"}, networkFields...)...)
		if !ok {
			continue
		}
		f := FaultSpec{Line: it.Line}
		atOK := false
		if an := m["at"]; an == nil {
			v.d.Required(it, yamlx.Field(p, "at"), `a duration like "15s"`)
		} else if at, ok := v.d.Duration(an, yamlx.Field(p, "at")); ok {
			f.At, atOK = at, true
			if v.duration > 0 && at >= v.duration {
				v.d.Errorf(an, yamlx.Field(p, "at"), "%s is at or after the end of the run (duration %s)", at, v.duration)
				atOK = false
			}
		}
		if kn := m["kind"]; kn == nil {
			v.d.Required(it, yamlx.Field(p, "kind"), "")
		} else if k, ok := v.d.String(kn, yamlx.Field(p, "kind")); ok {
			v.known(kn, yamlx.Field(p, "kind"), "fault kind", k, v.opts.FaultKinds)
			f.Kind = k
		}
		if tn := m["target"]; tn == nil {
			v.d.Required(it, yamlx.Field(p, "target"), "{node: NAME} or {role: ROLE, region: REGION, count: N}")
		} else {
			f.Target = v.target(tn, yamlx.Field(p, "target"))
		}
		v.networkParams(it, m, p, &f)
		if fn := m["for"]; fn != nil {
			if d, ok := v.d.Duration(fn, yamlx.Field(p, "for")); ok {
				f.For = d
				switch {
				case d == 0:
					v.d.Errorf(fn, yamlx.Field(p, "for"), "must be positive; omit it to heal at the end of the run")
				case atOK && v.duration > 0 && f.At+d > v.duration:
					v.d.Errorf(fn, yamlx.Field(p, "for"), "heals at %s, after the end of the run (duration %s)", f.At+d, v.duration)
				}
			}
		} else if atOK && v.duration > 0 {
			f.For = v.duration - f.At
		}
		out = append(out, f)
	}
	return out
}

// target decodes a node name or a selector and checks it against the plan.
func (v *validator) target(n *yaml.Node, path string) Target {
	m, ok := v.d.Mapping(n, path, "node", "role", "region", "count", "pick")
	if !ok {
		return Target{}
	}
	t := Target{Count: 1}
	bad := v.d.Len()
	if nn := m["node"]; nn != nil {
		t.Node, _ = v.d.String(nn, yamlx.Field(path, "node"))
		for _, other := range []string{"role", "region", "count", "pick"} {
			if on := m[other]; on != nil {
				v.d.Errorf(on, yamlx.Field(path, other), "a target is either a node or a selector, not both")
			}
		}
		if t.Node != "" && v.top != nil && !slices.ContainsFunc(v.plan, func(p topology.NodePlan) bool { return p.Name == t.Node }) {
			names := make([]string, len(v.plan))
			for i, p := range v.plan {
				names[i] = p.Name
			}
			v.d.Errorf(nn, yamlx.Field(path, "node"), "no node %q in topology %s%s", t.Node, v.top.Name, suggestOnly(t.Node, names))
		}
		return t
	}
	if rn := m["role"]; rn != nil {
		if r, ok := v.d.String(rn, yamlx.Field(path, "role")); ok {
			v.known(rn, yamlx.Field(path, "role"), "role", r, topology.Roles)
			t.Role = r
		}
	}
	if rn := m["region"]; rn != nil {
		if r, ok := v.d.String(rn, yamlx.Field(path, "region")); ok {
			v.region(rn, yamlx.Field(path, "region"), r)
			t.Region = r
		}
	}
	if cn := m["count"]; cn != nil {
		if c, ok := v.d.Int(cn, yamlx.Field(path, "count")); ok {
			if c < 1 {
				v.d.Errorf(cn, yamlx.Field(path, "count"), "must be at least 1, got %d", c)
				c = 1
			}
			t.Count = int(min(c, 1<<20))
		}
	}
	if t.Role == "" && t.Region == "" {
		v.d.Errorf(n, path, "needs a node, or a role and/or region to choose from")
		return t
	}
	v.decodePick(m, path, &t)
	if v.d.Len() == bad && v.top != nil {
		if got := len(t.matches(v.plan)); got < t.Count {
			v.d.Errorf(n, path, "selects %d node(s) but only %d match in topology %s", t.Count, got, v.top.Name)
		}
	}
	return t
}

func suggestOnly(s string, known []string) string {
	if m := yamlx.Suggest(s, known); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

// String renders a target the way a file would write it.
func (t Target) String() string {
	if t.Node != "" {
		return "{node: " + t.Node + "}"
	}
	var parts []string
	if t.Role != "" {
		parts = append(parts, "role: "+t.Role)
	}
	if t.Region != "" {
		parts = append(parts, "region: "+t.Region)
	}
	if t.Pick != "" {
		return "{" + strings.Join(append(parts, "pick: "+t.Pick), ", ") + "}"
	}
	parts = append(parts, "count: "+strconv.Itoa(t.Count))
	return "{" + strings.Join(parts, ", ") + "}"
}

func (t Target) matches(plan []topology.NodePlan) []topology.NodePlan {
	var out []topology.NodePlan
	for _, p := range plan {
		if (t.Node == "" || p.Name == t.Node) && (t.Role == "" || p.Role == t.Role) && (t.Region == "" || p.Region == t.Region) {
			out = append(out, p)
		}
	}
	return out
}

func (v *validator) nemesis(n *yaml.Node) *Nemesis {
	if yamlx.IsNull(n) {
		return nil
	}
	const p = "nemesis"
	m, ok := v.d.Mapping(n, p, "every", "for", "start", "kinds", "targets")
	if !ok {
		return nil
	}
	nm := &Nemesis{Line: n.Line}
	durs := map[string]*time.Duration{"every": &nm.Every, "for": &nm.For, "start": &nm.Start}
	valid := true
	for _, key := range []string{"every", "for", "start"} {
		dn := m[key]
		if dn == nil {
			if key != "start" {
				v.d.Required(n, yamlx.Field(p, key), "")
				valid = false
			}
			continue
		}
		d, ok := v.d.Duration(dn, yamlx.Field(p, key))
		if ok && d == 0 && key != "start" {
			v.d.Errorf(dn, yamlx.Field(p, key), "must be positive")
			ok = false
		}
		valid = valid && ok
		*durs[key] = d
	}
	if m["start"] == nil {
		nm.Start = nm.Every
	}
	if kn := m["kinds"]; kn == nil {
		v.d.Required(n, yamlx.Field(p, "kinds"), "the fault kinds to choose from")
	} else if kinds, ok := v.d.Strings(kn, yamlx.Field(p, "kinds")); ok {
		if len(kinds) == 0 {
			v.d.Errorf(kn, yamlx.Field(p, "kinds"), "must list at least one fault kind")
		}
		for i, k := range kinds {
			v.known(kn.Content[i], yamlx.Index(yamlx.Field(p, "kinds"), i), "fault kind", k, v.opts.FaultKinds)
			if slices.Contains(paramKinds, k) {
				v.d.Errorf(kn.Content[i], yamlx.Index(yamlx.Field(p, "kinds"), i), "%s needs parameters a nemesis cannot give; put it in faults", k)
			}
		}
		nm.Kinds = kinds
	}
	if tn := m["targets"]; tn == nil {
		v.d.Required(n, yamlx.Field(p, "targets"), "a selector like {role: web}")
	} else {
		nm.Targets = v.target(tn, yamlx.Field(p, "targets"))
	}
	if valid && v.duration > 0 {
		at := m["start"]
		if at == nil {
			at = m["every"]
		}
		switch {
		case nm.Start+nm.For > v.duration:
			v.d.Errorf(at, yamlx.Field(p, "start"), "the first fault (%s to %s) does not fit in the run (duration %s)", nm.Start, nm.Start+nm.For, v.duration)
		case (v.duration-nm.Start-nm.For)/nm.Every >= maxNemesisFaults:
			v.d.Errorf(m["every"], yamlx.Field(p, "every"), "%s would inject more than %d faults in %s", nm.Every, maxNemesisFaults, v.duration)
		}
	}
	return nm
}

func (v *validator) checks(n *yaml.Node) []Check {
	items, _ := v.d.Seq(n, "checks")
	var out []Check
	names := map[string]int{}
	for i, it := range items {
		p := yamlx.Index("checks", i)
		m, ok := v.d.Mapping(it, p, "name", "metric", "region", "min", "max")
		if !ok {
			continue
		}
		var c Check
		if mn := m["metric"]; mn == nil {
			v.d.Required(it, yamlx.Field(p, "metric"), "")
		} else if s, ok := v.d.String(mn, yamlx.Field(p, "metric")); ok {
			v.known(mn, yamlx.Field(p, "metric"), "metric", s, v.opts.Metrics)
			c.Metric = s
		}
		if rn := m["region"]; rn != nil {
			if s, ok := v.d.String(rn, yamlx.Field(p, "region")); ok {
				v.region(rn, yamlx.Field(p, "region"), s)
				c.Region = s
			}
		}
		for _, key := range []string{"min", "max"} {
			bn := m[key]
			if bn == nil {
				continue
			}
			if f, ok := v.d.Float(bn, yamlx.Field(p, key)); ok {
				if key == "min" {
					c.Min = &f
				} else {
					c.Max = &f
				}
			}
		}
		switch {
		case m["min"] == nil && m["max"] == nil:
			v.d.Errorf(it, p, "needs max and/or min")
		case c.Min != nil && c.Max != nil && *c.Min > *c.Max:
			v.d.Errorf(m["min"], yamlx.Field(p, "min"), "%v is above max %v: the check could never pass", *c.Min, *c.Max)
		}
		nameNode := m["name"]
		if nameNode != nil {
			c.Name, _ = v.d.String(nameNode, yamlx.Field(p, "name"))
		} else {
			nameNode = it
			c.Name = c.defaultName()
		}
		if c.Name != "" {
			if l, dup := names[c.Name]; dup {
				v.d.Errorf(nameNode, yamlx.Field(p, "name"), "check %q is already defined on line %d; give one a name", c.Name, l)
			}
			names[c.Name] = it.Line
		}
		out = append(out, c)
	}
	return out
}

func (c Check) defaultName() string {
	parts := []string{c.Metric}
	if c.Region != "" {
		parts = append(parts, c.Region)
	}
	if c.Min != nil {
		parts = append(parts, "min", fmtFloat(*c.Min))
	}
	if c.Max != nil {
		parts = append(parts, "max", fmtFloat(*c.Max))
	}
	return strings.Join(parts, "-")
}
