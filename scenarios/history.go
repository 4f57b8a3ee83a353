package scenarios

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
	"github.com/faultline/faultline/topology"
)

// HistoryLoad is one history workload (a name from
// Options.HistoryWorkloads, e.g. db-register) run by the loadgen of each of
// its regions for the whole run: Clients concurrent clients, each waiting
// for its answer and then Think before the next operation. Unlike a load
// entry it is judged by what its recorded operations prove (lost writes,
// linearizability, staleness, failover), not by requests per second.
//
//	history:
//	  - {workload: db-register, clients: 4, think: 20ms, regions: [all]}
//	  - {workload: db-set, clients: 2}
type HistoryLoad struct {
	Workload string
	Regions  []string
	Clients  int
	Think    time.Duration
	Timeout  time.Duration // per operation
	// Options are the workload's own settings (e.g. broker-produce's
	// acks), passed to it as text; the workload judges them.
	Options map[string]string
	Line    int
}

// maxHistoryClients matches the loadgen's bound.
const maxHistoryClients = 1000

func (v *validator) histories(n *yaml.Node) []HistoryLoad {
	items, _ := v.d.Seq(n, "history")
	var out []HistoryLoad
	seen := map[string]int{} // workload/region → line
	for i, it := range items {
		p := yamlx.Index("history", i)
		m, ok := v.fields(it, p, []string{"workload", "clients"}, "regions", "think", "timeout", "options")
		if !ok {
			continue
		}
		h := HistoryLoad{Timeout: defaultTimeout, Line: it.Line}
		if w, ok := v.d.String(m["workload"], yamlx.Field(p, "workload")); ok {
			v.known(m["workload"], yamlx.Field(p, "workload"), "history workload", w, v.opts.HistoryWorkloads)
			h.Workload = w
		}
		h.Regions = v.regionList(m["regions"], yamlx.Field(p, "regions"))
		for _, r := range h.Regions {
			key := h.Workload + "/" + r
			if line, dup := seen[key]; dup {
				v.d.Errorf(orNode(m["regions"], it), yamlx.Field(p, "regions"), "region %s already runs %s (line %d); raise its clients instead", r, h.Workload, line)
			}
			seen[key] = it.Line
		}
		if c, ok := v.d.Int(m["clients"], yamlx.Field(p, "clients")); ok {
			if c < 1 || c > maxHistoryClients {
				v.d.Errorf(m["clients"], yamlx.Field(p, "clients"), "must be between 1 and %d, got %d", maxHistoryClients, c)
			}
			h.Clients = int(c)
		}
		if tn := m["think"]; tn != nil {
			h.Think, _ = v.d.Duration(tn, yamlx.Field(p, "think"))
		}
		if tn := m["timeout"]; tn != nil {
			if t, ok := v.d.Duration(tn, yamlx.Field(p, "timeout")); ok {
				if t == 0 {
					v.d.Errorf(tn, yamlx.Field(p, "timeout"), "must be positive")
				}
				h.Timeout = t
			}
		}
		h.Options = v.historyOptions(m["options"], yamlx.Field(p, "options"))
		out = append(out, h)
	}
	return out
}

// historyOptions reads a history entry's `options`: a mapping of scalars.
func (v *validator) historyOptions(n *yaml.Node, path string) map[string]string {
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			v.d.Errorf(n, path, "must be a mapping of settings")
		}
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if s, ok := v.d.String(n.Content[i+1], yamlx.Field(path, k.Value)); ok {
			out[k.Value] = s
		}
	}
	return out
}

// Picks a target may make at inject time rather than from the seed: the
// node that holds a role at that moment, which only the running system
// knows.
const PickLeader = "leader"

var picks = []string{PickLeader}

// pickRoles are the roles that have a leader to pick.
var pickRoles = []string{"db", "broker"}

// decodePick reads a target's `pick` ({role: db, pick: leader}).
func (v *validator) decodePick(m map[string]*yaml.Node, path string, t *Target) {
	pn := m["pick"]
	if pn == nil {
		return
	}
	s, ok := v.d.String(pn, yamlx.Field(path, "pick"))
	if !ok {
		return
	}
	v.known(pn, yamlx.Field(path, "pick"), "pick", s, picks)
	switch {
	case !slices.Contains(pickRoles, t.Role):
		v.d.Errorf(pn, yamlx.Field(path, "pick"), "only a role with a leader can be picked from (%s), got role %q", strings.Join(pickRoles, ", "), t.Role)
	case m["count"] != nil || m["region"] != nil:
		v.d.Errorf(pn, yamlx.Field(path, "pick"), "a pick is one node the system chooses: no count or region")
	}
	t.Pick = s
}

// deferredPrefix marks a schedule target resolved at inject time (see
// Target.Deferred); node names never start with it.
const deferredPrefix = "@"

// Deferred is the schedule's name for a pick target: "@leader:db". The
// engine resolves it to a node when the fault is injected.
func (t Target) Deferred() string { return deferredPrefix + t.Pick + ":" + t.Role }

// ParseDeferred splits a schedule target made by Target.Deferred; ok is
// false for a plain node or region name.
func ParseDeferred(target string) (pick, role string, ok bool) {
	rest, ok := strings.CutPrefix(target, deferredPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ":")
}

// deferred schedules a pick target. Its node is unknown until inject time,
// so it reserves no node: faults on the same pick are serialised when they
// are played instead (chaos holds one lock per target name).
func (e *expansion) deferred(t Target, line int, path string) []string {
	if !slices.ContainsFunc(e.plan, func(p topology.NodePlan) bool { return p.Role == t.Role }) {
		e.d.Errorf(&yaml.Node{Line: line}, path, "%s matches no node", t)
		return nil
	}
	return []string{t.Deferred()}
}

type fileHistory struct {
	Workload string            `yaml:"workload"`
	Regions  []string          `yaml:"regions,flow"`
	Clients  int               `yaml:"clients"`
	Think    string            `yaml:"think"`
	Timeout  string            `yaml:"timeout"`
	Options  map[string]string `yaml:"options,omitempty"`
}

func historyToFile(hs []HistoryLoad) []fileHistory {
	var out []fileHistory
	for _, h := range hs {
		out = append(out, fileHistory{Workload: h.Workload, Regions: h.Regions, Clients: h.Clients, Think: dur(h.Think), Timeout: dur(h.Timeout), Options: h.Options})
	}
	return out
}

// unsafe reads the scenario's `unsafe: [db-early-ack]`: switches that make
// the system under test wrong on purpose, so that a run proves its checks
// catch the damage (`faultline run --unsafe` adds to them). They live on
// the topology, where deploy reads them, and the scenario written into a
// run folder keeps them, so an unsafe run replays as one.
func (v *validator) unsafe(n *yaml.Node, top *topology.Topology) {
	if n == nil {
		return
	}
	names, ok := v.d.Strings(n, "unsafe")
	if !ok {
		return
	}
	for i, s := range names {
		v.known(n.Content[i], yamlx.Index("unsafe", i), "unsafe switch", s, v.opts.UnsafeSwitches)
		if top != nil && !slices.Contains(top.Unsafe, s) {
			top.Unsafe = append(top.Unsafe, s)
		}
	}
}
