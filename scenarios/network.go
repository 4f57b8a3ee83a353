package scenarios

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
	"github.com/faultline/faultline/topology"
)

// LinkChange is what a link fault sets (nil: unchanged) and the bandwidth
// cap of a slow fault. RTT is a round trip, as in topology files.
type LinkChange struct {
	RTT, Jitter  *time.Duration
	Loss         *float64
	BandwidthBps *int64
}

// The fields a fault may carry besides at, kind, target and for.
var networkFields = []string{"peer", "oneway", "rtt", "jitter", "loss", "bandwidth"}

// paramKinds cannot be drawn by a nemesis: they need values it has no
// place for.
var paramKinds = []string{"link", "slow"}

// allowed lists, per kind, the network fields it accepts.
var allowed = map[string][]string{
	"partition": {"peer", "oneway"},
	"link":      {"peer", "oneway", "rtt", "jitter", "loss", "bandwidth"},
	"slow":      {"bandwidth"},
}

// regionOnly reports whether a target names a whole region: {region: X}
// with neither role nor node. For partition and link it then means the
// region itself rather than a node in it.
func (t Target) regionOnly() bool { return t.Node == "" && t.Role == "" && t.Region != "" }

func (v *validator) networkParams(it *yaml.Node, m map[string]*yaml.Node, p string, f *FaultSpec) {
	for _, k := range networkFields {
		if n := m[k]; n != nil && f.Kind != "" && !slices.Contains(allowed[f.Kind], k) {
			v.d.Errorf(n, yamlx.Field(p, k), "a %s fault takes no %s%s", f.Kind, k, takes(f.Kind))
		}
	}
	if n := m["peer"]; n != nil {
		t := v.target(n, yamlx.Field(p, "peer"))
		f.Peer = &t
	}
	if n := m["oneway"]; n != nil {
		if s, ok := v.d.String(n, yamlx.Field(p, "oneway")); ok {
			b, err := strconv.ParseBool(s)
			if err != nil || (s != "true" && s != "false") {
				v.d.Errorf(n, yamlx.Field(p, "oneway"), "must be true or false, not %q", s)
			}
			f.OneWay = b
		}
	}
	for _, k := range []string{"rtt", "jitter"} {
		if n := m[k]; n != nil {
			if d, ok := v.d.Duration(n, yamlx.Field(p, k)); ok {
				if k == "rtt" {
					f.Link.RTT = &d
				} else {
					f.Link.Jitter = &d
				}
			}
		}
	}
	if n := m["loss"]; n != nil {
		if l, ok := v.loss(n, yamlx.Field(p, "loss")); ok {
			f.Link.Loss = &l
		}
	}
	if n := m["bandwidth"]; n != nil {
		if s, ok := v.d.String(n, yamlx.Field(p, "bandwidth")); ok {
			bw, err := topology.ParseBandwidth(s)
			switch {
			case err != nil:
				v.d.Errorf(n, yamlx.Field(p, "bandwidth"), "%v", err)
			case bw == 0 && f.Kind == "slow":
				v.d.Errorf(n, yamlx.Field(p, "bandwidth"), "a slow fault needs a positive cap")
			default:
				f.Link.BandwidthBps = &bw
			}
		}
	}
	switch f.Kind {
	case "slow":
		if m["bandwidth"] == nil {
			v.d.Required(it, yamlx.Field(p, "bandwidth"), `the cap on what the node sends, like "1mbit"`)
		}
	case "link":
		c := f.Link
		if c.RTT == nil && c.Jitter == nil && c.Loss == nil && c.BandwidthBps == nil && m["rtt"] == nil && m["jitter"] == nil && m["loss"] == nil && m["bandwidth"] == nil {
			v.d.Errorf(it, p, "a link fault needs at least one of rtt, jitter, loss, bandwidth")
		}
		if m["target"] != nil && !f.Target.regionOnly() {
			v.d.Errorf(m["target"], yamlx.Field(p, "target"), "a link fault's target is a region: {region: NAME}")
		}
		if m["peer"] == nil {
			v.d.Required(it, yamlx.Field(p, "peer"), "the region at the other end: {region: NAME}")
		} else if f.Peer != nil && (!f.Peer.regionOnly() || f.Peer.Region == f.Target.Region) {
			v.d.Errorf(m["peer"], yamlx.Field(p, "peer"), "a link fault's peer is a region other than the target's: {region: NAME}")
		}
	case "partition":
		if f.Peer != nil && f.Target.regionOnly() && !f.Peer.regionOnly() {
			v.d.Errorf(m["peer"], yamlx.Field(p, "peer"), "the target is a whole region, so the peer must be one too: {region: NAME}")
		}
		if f.Peer != nil && f.Target.regionOnly() && f.Peer.Region == f.Target.Region {
			v.d.Errorf(m["peer"], yamlx.Field(p, "peer"), "a region cannot be partitioned from itself")
		}
	}
}

func takes(kind string) string {
	if a := allowed[kind]; len(a) > 0 {
		return " (it takes " + strings.Join(a, ", ") + ")"
	}
	return ""
}

// loss accepts a fraction (0.1) or a percentage ("10%").
func (v *validator) loss(n *yaml.Node, path string) (float64, bool) {
	if pct, ok := strings.CutSuffix(n.Value, "%"); ok && n.Kind == yaml.ScalarNode {
		x, err := strconv.ParseFloat(pct, 64)
		if err != nil || x < 0 || x > 100 {
			v.d.Errorf(n, path, "must be a percentage between 0%% and 100%%, not %q", n.Value)
			return 0, false
		}
		return x / 100, true
	}
	x, ok := v.d.Float(n, path)
	if ok && (x < 0 || x > 1) {
		v.d.Errorf(n, path, "must be between 0 and 1 (or a percentage like \"10%%\"), got %v", x)
		return 0, false
	}
	return x, ok
}

// regional turns the nodes picked for a region-level fault into region
// names: region-down, region-isolate and link always act on regions,
// partition when its target is a whole region. region-down and
// region-isolate also reserve every server of the region (every node but
// its loadgens, the region's users), since all of them go down or away.
func (e *expansion) regional(kind string, t Target, picked []string, from, to time.Duration, who string, line int, path string) []string {
	wholeRegion := kind == "region-down" || kind == "region-isolate"
	if picked == nil || !(wholeRegion || kind == "link" || (kind == "partition" && t.regionOnly())) {
		return picked
	}
	var regions []string
	for _, p := range e.plan {
		if slices.Contains(picked, p.Name) && !slices.Contains(regions, p.Region) {
			regions = append(regions, p.Region)
		}
	}
	if !wholeRegion {
		return regions
	}
	for _, p := range e.plan {
		if !slices.Contains(regions, p.Region) || slices.Contains(picked, p.Name) || p.Role == "loadgen" {
			continue
		}
		if w, ok := e.clash(p.Name, from, to); ok {
			e.d.Errorf(&yaml.Node{Line: line}, path, "region %s goes down from %s to %s, but %s is already faulted by %s from %s to %s (faults on one node must not overlap)",
				p.Region, from, to, p.Name, w.who, w.from, w.to)
			return nil
		}
		e.busy[p.Name] = append(e.busy[p.Name], window{from: from, to: to, who: who})
	}
	return regions
}

// peers resolves a partition's or link's other side: a whole region by
// name, or nodes chosen like targets but not reserved (the fault's rules
// live in the targets' namespaces, never the peers').
func (e *expansion) peers(t Target, rng *rand.PCG, line int, path string) []string {
	if t.regionOnly() {
		return []string{t.Region}
	}
	matches := t.matches(e.plan)
	count := max(t.Count, 1)
	if len(matches) < count {
		e.d.Errorf(&yaml.Node{Line: line}, path, "%s matches %d node(s), %d needed", t, len(matches), count)
		return nil
	}
	for i := range count {
		j := i + intN(rng, len(matches)-i)
		matches[i], matches[j] = matches[j], matches[i]
	}
	chosen := matches[:count]
	slices.SortFunc(chosen, func(a, b topology.NodePlan) int { return strings.Compare(a.Name, b.Name) })
	out := make([]string, count)
	for i, c := range chosen {
		out[i] = c.Name
	}
	return out
}
