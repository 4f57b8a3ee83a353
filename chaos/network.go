package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/faultline/faultline/chaos/netem"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/nodes/wan"
	"github.com/faultline/faultline/runtime"
)

// Network faults act in nodes' namespaces (nftables, qdiscs) and on the
// wan's control API; they find both from the run's labels when injected.
func init() {
	Register("region-down", newRegionDown)
	Register("region-isolate", func(env Env, spec Spec) (Fault, error) { return &regionIsolate{env: env, regions: spec.Targets}, nil })
	Register("partition", func(env Env, spec Spec) (Fault, error) { return &partition{env: env, spec: spec}, nil })
	Register("isolate", func(env Env, spec Spec) (Fault, error) { return &isolate{env: env, nodes: spec.Targets}, nil })
	Register("link", newLink)
	Register("slow", newSlow)
}

// regionDown kills the servers of its regions; heal starts them again (with
// their routes). A region's loadgens are its users, who live outside the
// datacenter: they stay up and go elsewhere, as real clients would. The wan,
// which belongs to no region, is never touched.
type regionDown struct {
	env     Env
	regions []string
	kill    *processFault
}

func newRegionDown(env Env, spec Spec) (Fault, error) {
	kill, _ := newProcessFault("region-down",
		func(ctx context.Context, e Env, n string) error { return e.Runtime.Kill(ctx, e.container(n)) },
		startNode)(env, spec)
	return &regionDown{env: env, regions: spec.Targets, kill: kill.(*processFault)}, nil
}

func (f *regionDown) Inject(ctx context.Context) error {
	servers, err := regionServers(ctx, f.env, "region-down", f.regions)
	if err != nil {
		return err
	}
	f.kill.targets = servers
	return f.kill.Inject(ctx)
}

// regionServers lists the nodes of regions that belong to the datacenter:
// every node but the loadgens.
func regionServers(ctx context.Context, env Env, kind string, regions []string) ([]string, error) {
	var out []string
	for _, r := range regions {
		cs, err := env.Runtime.List(ctx, runtime.Labels{runtime.LabelRun: env.RunID, runtime.LabelRegion: r})
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, r, err)
		}
		n := len(out)
		for _, c := range cs {
			if c.Labels[runtime.LabelRole] != "loadgen" {
				out = append(out, c.Labels[runtime.LabelNode])
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: run %s has no servers in region %q", kind, env.RunID, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *regionDown) Heal(ctx context.Context) error { return f.kill.Heal(ctx) }

// regionIsolate cuts a region's servers off from every other node, its own
// region's loadgens included: the datacenter drops off the network while its
// users, who are outside it, can still reach the other regions. (A region
// partition on the wan, by contrast, takes the region's users with it.)
type regionIsolate struct {
	env     Env
	regions []string
	cut     *partition
}

func (f *regionIsolate) Inject(ctx context.Context) error {
	servers, err := regionServers(ctx, f.env, "region-isolate", f.regions)
	if err != nil {
		return err
	}
	f.cut = &partition{env: f.env, spec: Spec{Kind: "partition", Targets: servers}}
	return f.cut.Inject(ctx)
}

func (f *regionIsolate) Heal(ctx context.Context) error {
	if f.cut == nil {
		return nil
	}
	return f.cut.Heal(ctx)
}

// partition cuts Targets off from Peers: between whole regions on the wan
// (one rule per direction), or between nodes with drop rules in the
// targets' namespaces only, so that the peers' own faults never collide
// with it. Dropped packets vanish: peers see timeouts, not resets.
type partition struct {
	env  Env
	spec Spec
	net  *netsetup.Net
	ids  []string // wan partitions
	cut  map[string][]netip.Prefix
}

func (f *partition) Inject(ctx context.Context) error {
	net, err := netsetup.Discover(ctx, f.env.Runtime, f.env.RunID)
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	f.net = net
	if allRegions(net, f.spec.Targets) {
		return f.injectWAN(ctx)
	}
	return f.injectNodes(ctx)
}

func (f *partition) injectWAN(ctx context.Context) error {
	w := f.net.WAN()
	if w == nil {
		return errors.New("partition between regions: the run has no wan")
	}
	peers := f.spec.Peers
	if len(peers) == 0 {
		for _, r := range f.net.Regions() {
			if !slices.Contains(f.spec.Targets, r.Name) {
				peers = append(peers, r.Name)
			}
		}
	}
	if !allRegions(f.net, peers) {
		return fmt.Errorf("partition: targets are regions, so peers %v must be regions too", peers)
	}
	dirs := [][2][]string{{f.spec.Targets, peers}}
	if !f.spec.OneWay {
		dirs = append(dirs, [2][]string{peers, f.spec.Targets})
	}
	for _, d := range dirs {
		id, err := w.Partition(ctx, d[0], d[1])
		if err != nil {
			return fmt.Errorf("partition %v -> %v: %w", d[0], d[1], err)
		}
		f.ids = append(f.ids, id)
	}
	return nil
}

func (f *partition) injectNodes(ctx context.Context) error {
	var peers []netip.Prefix
	if len(f.spec.Peers) == 0 {
		for _, n := range f.net.Nodes() {
			if !slices.Contains(f.spec.Targets, n.Name) && n.IP.IsValid() {
				peers = append(peers, netip.PrefixFrom(n.IP, 32))
			}
		}
	}
	for _, p := range f.spec.Peers {
		pr, err := prefixOf(f.net, p)
		if err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		peers = append(peers, pr)
	}
	dir := netem.Both
	if f.spec.OneWay {
		dir = netem.Outbound
	}
	f.cut = map[string][]netip.Prefix{}
	for _, t := range f.spec.Targets {
		pid, err := f.net.Pid(ctx, t)
		if err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		for _, p := range peers {
			// Recorded before the call: a half-applied block is healed too.
			f.cut[t] = append(f.cut[t], p)
			if err := netem.Block(ctx, pid, p, dir); err != nil {
				return fmt.Errorf("partition %s from %s: %w", t, p, err)
			}
		}
	}
	return nil
}

func (f *partition) Heal(ctx context.Context) error {
	var errs []error
	for _, id := range f.ids {
		if err := f.net.WAN().Unpartition(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	f.ids = nil
	for node, peers := range f.cut {
		errs = append(errs, unblock(ctx, f.net, node, peers))
	}
	f.cut = nil
	return errors.Join(errs...)
}

// unblock removes a node's drop rules for peers (a zero prefix: its
// isolation) and then faultline's table, once it holds no other rule.
func unblock(ctx context.Context, net *netsetup.Net, node string, peers []netip.Prefix) error {
	pid, err := net.Pid(ctx, node)
	if err != nil {
		return fmt.Errorf("heal %s: %w", node, err)
	}
	for _, p := range peers {
		if err := netem.Unblock(ctx, pid, p, netem.Both); err != nil {
			return fmt.Errorf("heal %s: %w", node, err)
		}
	}
	left, err := netem.Rules(ctx, pid)
	if err != nil {
		return fmt.Errorf("heal %s: %w", node, err)
	}
	if len(left) == 0 {
		return netem.Heal(ctx, pid)
	}
	return nil
}

func allRegions(net *netsetup.Net, names []string) bool {
	for _, n := range names {
		if _, ok := net.Region(n); !ok {
			return false
		}
	}
	return len(names) > 0
}

func prefixOf(net *netsetup.Net, name string) (netip.Prefix, error) {
	if r, ok := net.Region(name); ok {
		return r.Subnet, nil
	}
	if n, ok := net.Node(name); ok && n.IP.IsValid() {
		return netip.PrefixFrom(n.IP, 32), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is neither a region nor a node of run %s", name, net.RunID())
}

// isolate cuts nodes off from everything but their own loopback.
type isolate struct {
	env   Env
	nodes []string
	net   *netsetup.Net
	done  []string
}

func (f *isolate) Inject(ctx context.Context) error {
	net, err := netsetup.Discover(ctx, f.env.Runtime, f.env.RunID)
	if err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	f.net = net
	for _, n := range f.nodes {
		pid, err := net.Pid(ctx, n)
		if err != nil {
			return fmt.Errorf("isolate: %w", err)
		}
		f.done = append(f.done, n)
		if err := netem.Isolate(ctx, pid); err != nil {
			return fmt.Errorf("isolate %s: %w", n, err)
		}
	}
	return nil
}

func (f *isolate) Heal(ctx context.Context) error {
	var errs []error
	for _, n := range f.done {
		errs = append(errs, unblock(ctx, f.net, n, []netip.Prefix{{}}))
	}
	f.done = nil
	return errors.Join(errs...)
}

// link changes the wan link between two regions (both directions unless
// OneWay) and puts the whole previous configuration back on heal.
type link struct {
	env    Env
	spec   Spec
	w      *netsetup.WAN
	before []wan.LinkSpec
}

func newLink(env Env, spec Spec) (Fault, error) {
	// A scenario names the link as a target region and a peer region;
	// the CLI as two targets.
	if len(spec.Targets) == 1 && len(spec.Peers) == 1 {
		spec.Targets = []string{spec.Targets[0], spec.Peers[0]}
	}
	if len(spec.Targets) != 2 || spec.Targets[0] == spec.Targets[1] {
		return nil, fmt.Errorf("link: needs two different regions, got %v", spec.Targets)
	}
	c := spec.Link
	if c.RTT == nil && c.Jitter == nil && c.Loss == nil && c.BandwidthBps == nil {
		return nil, errors.New("link: nothing to change (set rtt, jitter, loss or bandwidth)")
	}
	return &link{env: env, spec: spec}, nil
}

func (f *link) Inject(ctx context.Context) error {
	net, err := netsetup.Discover(ctx, f.env.Runtime, f.env.RunID)
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	if !allRegions(net, f.spec.Targets) || net.WAN() == nil {
		return fmt.Errorf("link: %v are not two regions of a run with a wan", f.spec.Targets)
	}
	f.w = net.WAN()
	before, err := f.w.Links(ctx)
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	a, b := f.spec.Targets[0], f.spec.Targets[1]
	dirs := [][2]string{{a, b}}
	if !f.spec.OneWay {
		dirs = append(dirs, [2]string{b, a})
	}
	changed := ApplyLink(before, dirs, f.spec.Link)
	if err := f.w.SetLinks(ctx, changed); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	f.before = before
	return nil
}

func (f *link) Heal(ctx context.Context) error {
	if f.before == nil {
		return nil
	}
	err := f.w.SetLinks(ctx, f.before)
	f.before = nil
	if err != nil {
		return fmt.Errorf("heal link: %w", err)
	}
	return nil
}

// ApplyLink returns links with c applied to each direction in dirs; a
// direction not configured yet starts from an unimpaired link.
func ApplyLink(links []wan.LinkSpec, dirs [][2]string, c LinkChange) []wan.LinkSpec {
	out := slices.Clone(links)
	for _, d := range dirs {
		i := slices.IndexFunc(out, func(l wan.LinkSpec) bool { return l.From == d[0] && l.To == d[1] })
		if i < 0 {
			out = append(out, wan.LinkSpec{From: d[0], To: d[1]})
			i = len(out) - 1
		}
		l := &out[i].Link
		if c.RTT != nil {
			l.Delay = *c.RTT / 2
		}
		if c.Jitter != nil {
			l.Jitter = *c.Jitter
		}
		if c.Loss != nil {
			l.Loss = *c.Loss
		}
		if c.BandwidthBps != nil {
			l.BandwidthBps = *c.BandwidthBps
		}
	}
	return out
}

// slow caps what a node sends (token bucket on its interfaces).
type slow struct {
	env  Env
	spec Spec
	net  *netsetup.Net
	done []string
}

func newSlow(env Env, spec Spec) (Fault, error) {
	if spec.Link.BandwidthBps == nil || *spec.Link.BandwidthBps <= 0 {
		return nil, errors.New("slow: needs a positive bandwidth")
	}
	return &slow{env: env, spec: spec}, nil
}

func (f *slow) Inject(ctx context.Context) error {
	net, err := netsetup.Discover(ctx, f.env.Runtime, f.env.RunID)
	if err != nil {
		return fmt.Errorf("slow: %w", err)
	}
	f.net = net
	for _, n := range f.spec.Targets {
		pid, err := net.Pid(ctx, n)
		if err != nil {
			return fmt.Errorf("slow: %w", err)
		}
		f.done = append(f.done, n)
		if err := netsetup.Shape(ctx, pid, *f.spec.Link.BandwidthBps); err != nil {
			return fmt.Errorf("slow %s: %w", n, err)
		}
	}
	return nil
}

func (f *slow) Heal(ctx context.Context) error {
	var errs []error
	for _, n := range f.done {
		pid, err := f.net.Pid(ctx, n)
		if err == nil {
			err = netsetup.Unshape(ctx, pid)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("heal slow %s: %w", n, err))
		}
	}
	f.done = nil
	return errors.Join(errs...)
}
