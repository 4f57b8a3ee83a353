package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
	"github.com/faultline/faultline/topology"
)

// Sources of a scheduled fault.
const (
	SourceTimeline = "timeline"
	SourceNemesis  = "nemesis"
)

// Scheduled is one concrete fault: what to inject, into which nodes, when and
// for how long.
type Scheduled struct {
	At, For time.Duration
	Kind    string
	Targets []string // node names in plan order, or region names (see RegionTargets)
	Peers   []string
	OneWay  bool
	Link    LinkChange
	Source  string
}

// Separate random streams, so that editing the timeline does not reshuffle
// the nemesis and vice versa.
const (
	streamTimeline = 1
	streamNemesis  = 2
)

// Expand resolves the timeline's selectors and the nemesis into concrete
// faults, sorted by At (ties in file order, timeline first). The same seed and
// plan always give the same schedule. Faults never overlap on a node: a
// named node that is already faulted is an error, and random choices are
// made among the nodes free for the whole window.
func (s *Scenario) Expand(plan []topology.NodePlan) ([]Scheduled, error) {
	e := &expansion{d: yamlx.NewDecoder(s.File), plan: plan, busy: map[string][]window{}}

	timeline := make([]Scheduled, len(s.Faults))
	rng := rand.NewPCG(uint64(s.Seed), streamTimeline)
	// Named nodes are reserved first so that a random pick elsewhere in the
	// file never takes a node the user named explicitly.
	order := make([]int, 0, len(s.Faults))
	for pass := 0; pass < 2; pass++ {
		for i, f := range s.Faults {
			if (f.Target.Node != "") == (pass == 0) {
				order = append(order, i)
			}
		}
	}
	for _, i := range order {
		f := s.Faults[i]
		who := fmt.Sprintf("faults[%d] (line %d)", i, f.Line)
		path := yamlx.Index("faults", i)
		targets := e.pick(f.Target, f.At, f.At+f.For, rng, who, f.Line, yamlx.Field(path, "target"))
		targets = e.regional(f.Kind, f.Target, targets, f.At, f.At+f.For, who, f.Line, yamlx.Field(path, "target"))
		var peers []string
		if f.Peer != nil {
			peers = e.peers(*f.Peer, rng, f.Line, yamlx.Field(path, "peer"))
		}
		timeline[i] = Scheduled{At: f.At, For: f.For, Kind: f.Kind, Targets: targets, Peers: peers, OneWay: f.OneWay, Link: f.Link, Source: SourceTimeline}
	}
	out := timeline
	if n := s.Nemesis; n != nil {
		out = append(out, e.nemesis(n, s.Seed, s.Duration)...)
	}
	if err := e.d.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out, nil
}

type window struct {
	from, to time.Duration
	who      string
}

type expansion struct {
	d    *yamlx.Decoder
	plan []topology.NodePlan
	busy map[string][]window // node → faults already placed on it
}

func (e *expansion) nemesis(n *Nemesis, seed int64, duration time.Duration) []Scheduled {
	const path = "nemesis"
	at := &yaml.Node{Line: n.Line}
	if n.Every <= 0 || len(n.Kinds) == 0 {
		e.d.Errorf(at, path, "needs a positive every and at least one kind")
		return nil
	}
	rng := rand.NewPCG(uint64(seed), streamNemesis)
	var out []Scheduled
	for t := n.Start; t+n.For <= duration; t += n.Every {
		if len(out) == maxNemesisFaults {
			e.d.Errorf(at, path, "more than %d faults; use a longer every", maxNemesisFaults)
			return nil
		}
		kind := n.Kinds[intN(rng, len(n.Kinds))]
		who := fmt.Sprintf("the nemesis fault at %s (line %d)", t, n.Line)
		targets := e.pick(n.Targets, t, t+n.For, rng, who, n.Line, yamlx.Field(path, "targets"))
		targets = e.regional(kind, n.Targets, targets, t, t+n.For, who, n.Line, yamlx.Field(path, "targets"))
		if targets == nil {
			return nil
		}
		out = append(out, Scheduled{At: t, For: n.For, Kind: kind, Targets: targets, Source: SourceNemesis})
	}
	if len(out) == 0 {
		e.d.Errorf(at, path, "never fires: start %s + for %s is after the end of the run (%s)", n.Start, n.For, duration)
	}
	return out
}

// pick chooses the target's nodes for [from, to) and marks them busy; it
// reports and returns nil when that is impossible.
func (e *expansion) pick(t Target, from, to time.Duration, rng *rand.PCG, who string, line int, path string) []string {
	if t.Pick != "" {
		return e.deferred(t, line, path)
	}
	at := &yaml.Node{Line: line}
	matches := t.matches(e.plan)
	if len(matches) == 0 {
		e.d.Errorf(at, path, "%s matches no node", t)
		return nil
	}
	var free []topology.NodePlan
	var clashes []string
	for _, m := range matches {
		if w, ok := e.clash(m.Name, from, to); ok {
			clashes = append(clashes, fmt.Sprintf("%s by %s from %s to %s", m.Name, w.who, w.from, w.to))
			continue
		}
		free = append(free, m)
	}
	count := max(t.Count, 1)
	if t.Node != "" {
		count = 1
	}
	if t.Node != "" && len(free) == 0 {
		e.d.Errorf(at, path, "%s is already faulted %s; faults on one node must not overlap (healing one would end the other)", t.Node, strings.TrimPrefix(clashes[0], t.Node+" "))
		return nil
	}
	if len(free) < count {
		e.d.Errorf(at, path, "%s: %d of %d matching node(s) are free from %s to %s, %d needed; already faulted: %s (faults on one node must not overlap: healing one would end the other)",
			t, len(free), len(matches), from, to, count, strings.Join(clashes, "; "))
		return nil
	}
	chosen := free
	if t.Node == "" {
		idx := make([]int, len(free))
		for i := range idx {
			idx[i] = i
		}
		for i := range count { // the first count steps of a Fisher-Yates shuffle
			j := i + intN(rng, len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		idx = idx[:count]
		slices.Sort(idx) // report in plan order
		chosen = make([]topology.NodePlan, count)
		for i, p := range idx {
			chosen[i] = free[p]
		}
	}
	names := make([]string, len(chosen))
	for i, c := range chosen {
		names[i] = c.Name
		e.busy[c.Name] = append(e.busy[c.Name], window{from: from, to: to, who: who})
	}
	return names
}

// intN draws from [0, n). Unlike rand.Rand's methods, whose algorithms a Go
// release may change, PCG's output and this reduction are fixed here, so a
// seed replays the same schedule on any toolchain. The modulo bias (under
// n/2^64) is irrelevant for choosing among nodes.
func intN(src *rand.PCG, n int) int { return int(src.Uint64() % uint64(n)) }

func (e *expansion) clash(node string, from, to time.Duration) (window, bool) {
	for _, w := range e.busy[node] {
		if from < w.to && w.from < to {
			return w, true
		}
	}
	return window{}, false
}
