package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
)

// The autoscaler runs each region's scaling policy (scenarios.Autoscale)
// in the controller: once a second it reads the region's p95 from the
// loadgens' stream and the web nodes' utilisation from the lb, adds web
// containers through the runtime (registered with the lb's admin API) and,
// on scale-in, drains a node through the lb before removing it.
func init() { registerObserver("autoscale", newAutoscaler) }

const (
	// scaleTick is how often the policies are evaluated.
	scaleTick = time.Second
	// p95Window: seconds of results a decision looks at, ending one second
	// ago (the current second is still arriving).
	p95Window = 2
	// firstAddedOffset: added nodes take addresses from .100 of the
	// region's subnet, far above the planned nodes (from .10).
	firstAddedOffset = 100
	// scaleInCalm: scale in only while p95 is below this share of the SLO.
	scaleInCalm = 0.5
	// drainWait bounds a scale-in's wait for the lb to finish draining
	// (the lb's own drain timeout is 10 s by default).
	drainWait = 15 * time.Second
	// readyWait bounds a scale-out's wait for the lb to take a node in.
	readyWait = 20 * time.Second
	// recoveredFor: p95 must be back under the SLO this many seconds in a
	// row to count as recovered.
	recoveredFor = 3
	// sloErrorShare: past this share of failed requests a second breaks a
	// p95 SLO however fast the failures were (more than 5% of its requests
	// got no answer in time). An lb answering 502 at once would otherwise
	// pass for a recovery, or a calm to scale in on.
	sloErrorShare = 0.05
)

type autoscaler struct {
	r       *run
	regions []*scaledRegion
	mu      sync.Mutex
	events  []results.ScalingEvent
	drains  map[string][][2]time.Time // region → scale-in windows
}

type scaledRegion struct {
	pol      scenarios.Autoscale
	lbName   string // container
	lbHTTP   *http.Client
	template runtime.ContainerSpec // a planned web node's spec, copied for added ones
	subnet   netip.Prefix
	cores    int
	nodes    []webNode // in rotation, in the order they joined
	nextIdx  int
	nextOff  int
	last     time.Time // last action's end
	calm     time.Time // since when scale-in conditions held; zero: they do not
	util     []float64 // recent utilisation samples
	maxNodes int
}

type webNode struct {
	name, container, addr string
	added                 bool
}

func newAutoscaler(r *run) (observer, error) {
	if len(r.sc.Autoscale) == 0 {
		return nil, nil
	}
	a := &autoscaler{r: r, drains: map[string][][2]time.Time{}}
	for _, pol := range r.sc.Autoscale {
		sr, err := a.region(pol)
		if err != nil {
			return nil, err
		}
		a.regions = append(a.regions, sr)
	}
	return a, nil
}

func (a *autoscaler) region(pol scenarios.Autoscale) (*scaledRegion, error) {
	r := a.r
	reg, ok := r.sc.Topology.Region(pol.Region)
	lbs, webs := r.dep.NodesOf("lb", pol.Region), r.dep.NodesOf("web", pol.Region)
	if !ok || len(lbs) == 0 || len(webs) == 0 {
		return nil, fmt.Errorf("region %s: needs an lb and web nodes to scale", pol.Region)
	}
	sr := &scaledRegion{pol: pol, lbName: deploy.ContainerName(r.e.runID, lbs[0].Name), subnet: reg.Subnet,
		cores: webs[0].Cores, nextIdx: len(webs) + 1, nextOff: firstAddedOffset, maxNodes: len(webs)}
	sr.lbHTTP = a.inNamespaceClient(sr.lbName)
	for _, c := range r.dep.Containers {
		if c.Name == deploy.ContainerName(r.e.runID, webs[0].Name) {
			sr.template = c
		}
	}
	if sr.template.Name == "" {
		return nil, fmt.Errorf("region %s: no container spec for %s", pol.Region, webs[0].Name)
	}
	for _, w := range webs {
		sr.nodes = append(sr.nodes, webNode{name: w.Name, container: deploy.ContainerName(r.e.runID, w.Name),
			addr: netip.AddrPortFrom(w.IP, deploy.Port).String()})
	}
	return sr, nil
}

// inNamespaceClient talks HTTP to a container's own loopback, from inside
// its network namespace: the lb's admin API is not published, and this
// way the controller's traffic never leaves the container.
func (a *autoscaler) inNamespaceClient(container string) *http.Client {
	return nsClient(a.r, container)
}

func nsClient(r *run, container string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, // the container may restart under a new namespace
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			info, err := r.e.rt.Inspect(ctx, container)
			if err != nil {
				return nil, err
			}
			if info.Pid == 0 {
				return nil, fmt.Errorf("%s is not running", container)
			}
			var c net.Conn
			err = netsetup.InNamespace(info.Pid, func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", deploy.Port))
				return err
			})
			return c, err
		},
	}}
}

func (a *autoscaler) watch(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, sr := range a.regions {
		g.Go(func() error { return a.loop(ctx, sr) })
	}
	return g.Wait()
}

func (a *autoscaler) loop(ctx context.Context, sr *scaledRegion) error {
	if d := time.Until(a.r.start); d > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
	t := time.NewTicker(scaleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := a.step(ctx, sr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// One failed action must not end the run's measurements; it is
			// an event the report shows.
			a.r.logf("autoscale %s: %v", sr.pol.Region, err)
			a.r.event("autoscale-error", map[string]any{"region": sr.pol.Region, "error": err.Error()})
		}
	}
}

// step makes one decision for a region, and carries it out.
func (a *autoscaler) step(ctx context.Context, sr *scaledRegion) error {
	now := time.Now()
	pol := sr.pol
	from, to := now.Add(-(p95Window+1)*time.Second), now.Add(-time.Second)
	p95, reqs := a.r.rec.Quantile(pol.Region, from, to, 95)
	_, errs := a.r.rec.Counts(pol.Region, from, to)
	util, err := sr.utilisation(ctx)
	if err != nil {
		return fmt.Errorf("read utilisation: %w", err)
	}
	sr.util = append(sr.util, util)
	if len(sr.util) > 3 {
		sr.util = sr.util[1:]
	}
	var avgUtil float64
	for _, u := range sr.util {
		avgUtil += u / float64(len(sr.util))
	}
	d := decide(pol, reading{nodes: len(sr.nodes), p95: p95, requests: reqs, errors: errs, util: avgUtil},
		now.Sub(sr.last) >= pol.Cooldown, sr.calm, now)
	sr.calm = d.calm
	switch {
	case d.add > 0:
		return a.scaleOut(ctx, sr, d.add, d.reason)
	case d.remove:
		return a.scaleIn(ctx, sr, d.reason)
	}
	return nil
}

// reading is what one decision sees of a region.
type reading struct {
	nodes    int     // web nodes in rotation
	p95      float64 // ms over the last seconds
	requests int64   // behind that p95; 0: no figure
	errors   int64   // failed among them
	util     float64 // busy share of the nodes' cores, averaged
}

// decision is what to do: add nodes, remove one, or nothing; calm is when
// the scale-in conditions began to hold (zero: they do not).
type decision struct {
	add    int
	remove bool
	reason string
	calm   time.Time
}

// decide is the policy, apart from the runtime: out when p95 is above the
// SLO or utilisation above its target (sized proportionally), in when p95
// is well under the SLO and the nodes left would stay under the target,
// both held for a cooldown.
func decide(pol scenarios.Autoscale, in reading, cooled bool, calmSince, now time.Time) decision {
	slo := float64(pol.P95) / float64(time.Millisecond)
	n := in.nodes
	failing := in.requests > 0 && float64(in.errors) > sloErrorShare*float64(in.requests)
	breach := pol.P95 > 0 && in.requests > 0 && (in.p95 > slo || failing)
	busy := pol.Utilization > 0 && in.util > pol.Utilization
	if breach || busy {
		if n >= pol.Max || !cooled {
			return decision{}
		}
		want := n + 1
		var reason []string
		switch {
		case breach && failing:
			// Failures say nothing of how much capacity is missing.
			reason = append(reason, fmt.Sprintf("%.0f%% of requests failed", 100*float64(in.errors)/float64(in.requests)))
		case breach:
			// Proportional, at most doubling: past capacity p95 grows
			// with the queue, not with the missing capacity.
			want = max(want, int(math.Ceil(float64(n)*min(in.p95/slo, 2))))
			reason = append(reason, fmt.Sprintf("p95 %.0f ms > SLO %.0f ms", in.p95, slo))
		}
		if busy {
			want = max(want, int(math.Ceil(float64(n)*in.util/pol.Utilization)))
			reason = append(reason, fmt.Sprintf("utilisation %.2f > %.2f", in.util, pol.Utilization))
		}
		return decision{add: min(want, pol.Max) - n, reason: strings.Join(reason, ", ")}
	}
	calm := n > pol.Min && !failing && (pol.P95 == 0 || (in.requests > 0 && in.p95 < slo*scaleInCalm)) &&
		(pol.Utilization == 0 || in.util*float64(n)/float64(n-1) < pol.Utilization)
	if !calm {
		return decision{}
	}
	if calmSince.IsZero() {
		calmSince = now
	}
	if now.Sub(calmSince) < pol.Cooldown || !cooled {
		return decision{calm: calmSince}
	}
	return decision{remove: true, reason: fmt.Sprintf("p95 %.0f ms, utilisation %.2f with %d nodes", in.p95, in.util, n)}
}

// utilisation is the share of the web nodes' cores busy now, from the lb's
// in-flight counts (requests queued at a node count too, so it can pass 1).
func (sr *scaledRegion) utilisation(ctx context.Context) (float64, error) {
	st, err := sr.backends(ctx)
	if err != nil {
		return 0, err
	}
	var inflight int64
	up := 0
	for _, b := range st {
		if b.State == lb.StateUp {
			inflight += b.InFlight
			up++
		}
	}
	if up == 0 || sr.cores == 0 {
		return 0, nil
	}
	return float64(inflight) / float64(up*sr.cores), nil
}

func (sr *scaledRegion) backends(ctx context.Context) ([]lb.BackendStatus, error) {
	var st []lb.BackendStatus
	err := sr.admin(ctx, http.MethodGet, "/lb/backends", http.StatusOK, &st)
	return st, err
}

func (sr *scaledRegion) admin(ctx context.Context, method, path string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://lb"+path, nil)
	if err != nil {
		return err
	}
	resp, err := sr.lbHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("lb %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("lb %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// scaleOut starts k web nodes, waits for them to be healthy, registers them
// with the lb and waits until the lb has them in rotation.
func (a *autoscaler) scaleOut(ctx context.Context, sr *scaledRegion, k int, reason string) error {
	began := time.Now()
	added := make([]webNode, k)
	for i := range added {
		spec, node, err := sr.nextSpec(a.r)
		if err != nil {
			return err
		}
		added[i] = node
		if err := a.r.e.rt.Create(ctx, spec); err != nil {
			return fmt.Errorf("create %s: %w", node.name, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, node := range added {
		g.Go(func() error {
			if err := a.r.e.rt.Start(gctx, node.container); err != nil {
				return fmt.Errorf("start %s: %w", node.name, err)
			}
			hctx, cancel := context.WithTimeout(gctx, readyWait)
			defer cancel()
			if err := a.r.e.rt.WaitHealthy(hctx, node.container); err != nil {
				return fmt.Errorf("%s never became healthy: %w", node.name, err)
			}
			// Like its planned peers, it reaches other regions (a db
			// leader, say) through the wan.
			if netsetup.HasNamespaces(a.r.e.rt) {
				n, err := netsetup.Discover(gctx, a.r.e.rt, a.r.e.runID)
				if err != nil {
					return fmt.Errorf("routes of %s: %w", node.name, err)
				}
				if err := n.Install(gctx, node.name); err != nil {
					return err
				}
			}
			if err := sr.admin(gctx, http.MethodPost, "/lb/backends/"+node.addr, http.StatusCreated, nil); err != nil {
				return err
			}
			return sr.waitState(hctx, node.addr, func(st string, present bool) bool { return st == lb.StateUp })
		})
	}
	err := g.Wait()
	for _, node := range added {
		sr.nodes = append(sr.nodes, node)
		sr.maxNodes = max(sr.maxNodes, len(sr.nodes))
		a.record(results.ScalingEvent{Region: sr.pol.Region, Action: "out", Node: node.name, Reason: reason,
			NodesAfter: len(sr.nodes)}, began)
	}
	sr.last = time.Now()
	return err
}

// nextSpec is a planned web node's container spec with a new name and a
// free address in the region's subnet; labels (the run's among them) carry
// over, so the run's cleanup removes added nodes too.
func (sr *scaledRegion) nextSpec(r *run) (runtime.ContainerSpec, webNode, error) {
	ip, err := sr.freeAddr(r)
	if err != nil {
		return runtime.ContainerSpec{}, webNode{}, err
	}
	name := topology.NodeName("web", sr.pol.Region, sr.nextIdx)
	sr.nextIdx++
	spec := sr.template
	spec.Name = deploy.ContainerName(r.e.runID, name)
	spec.Env = cloneMap(spec.Env)
	spec.Env["FAULTLINE_NODE"] = name
	spec.Labels = runtime.Labels(cloneMap(spec.Labels))
	spec.Labels[runtime.LabelNode] = name
	spec.Networks = []runtime.Attachment{{Network: sr.template.Networks[0].Network, IP: ip.String()}}
	return spec, webNode{name: name, container: spec.Name, addr: netip.AddrPortFrom(ip, deploy.Port).String(), added: true}, nil
}

func (sr *scaledRegion) freeAddr(r *run) (netip.Addr, error) {
	used := map[netip.Addr]bool{}
	for _, n := range r.dep.Nodes {
		used[n.IP] = true
	}
	for ; ; sr.nextOff++ {
		ip := sr.subnet.Masked().Addr()
		for range sr.nextOff {
			ip = ip.Next()
		}
		// The last host is the wan router's; stop short of it.
		if !sr.subnet.Contains(ip.Next().Next()) {
			return netip.Addr{}, fmt.Errorf("region %s: no free address left in %s", sr.pol.Region, sr.subnet)
		}
		if !used[ip] {
			sr.nextOff++
			return ip, nil
		}
	}
}

// scaleIn drains the newest node through the lb (no new requests, in-flight
// ones finish), then stops and removes its container.
func (a *autoscaler) scaleIn(ctx context.Context, sr *scaledRegion, reason string) error {
	began := time.Now()
	node := sr.nodes[len(sr.nodes)-1]
	if err := sr.admin(ctx, http.MethodDelete, "/lb/backends/"+node.addr, http.StatusAccepted, nil); err != nil {
		return err
	}
	sr.nodes = sr.nodes[:len(sr.nodes)-1]
	dctx, cancel := context.WithTimeout(ctx, drainWait)
	err := sr.waitState(dctx, node.addr, func(_ string, present bool) bool { return !present })
	cancel()
	if err != nil {
		err = fmt.Errorf("drain %s: %w", node.name, err)
	}
	if serr := a.r.e.rt.Stop(ctx, node.container, 5*time.Second); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop %s: %w", node.name, serr))
	}
	if !node.added {
		// A planned node stays (stopped) for the run's teardown and the
		// chaos layer, which know it by name.
	} else if rerr := a.r.e.rt.Remove(ctx, node.container); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", node.name, rerr))
	}
	end := time.Now()
	a.mu.Lock()
	a.drains[sr.pol.Region] = append(a.drains[sr.pol.Region], [2]time.Time{began, end})
	a.mu.Unlock()
	a.record(results.ScalingEvent{Region: sr.pol.Region, Action: "in", Node: node.name, Reason: reason,
		NodesAfter: len(sr.nodes)}, began)
	sr.last = end
	return err
}

// waitState polls the lb until done says the backend at addr is where the
// caller wants it (present: the lb still lists it, in any state).
func (sr *scaledRegion) waitState(ctx context.Context, addr string, done func(state string, present bool) bool) error {
	for {
		st, err := sr.backends(ctx)
		if err == nil {
			i := slices.IndexFunc(st, func(b lb.BackendStatus) bool { return b.Addr == addr })
			state := ""
			if i >= 0 {
				state = st[i].State
			}
			if done(state, i >= 0) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lb state of %s: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *autoscaler) record(e results.ScalingEvent, began time.Time) {
	e.T = began.Sub(a.r.start).Seconds()
	e.ReadyS = time.Since(began).Seconds()
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
	a.r.logf("autoscale %s: %s %s (%s) → %d nodes in %.1f s", e.Region, e.Action, e.Node, e.Reason, e.NodesAfter, e.ReadyS)
	a.r.event("scaling", map[string]any{"region": e.Region, "action": e.Action, "node": e.Node,
		"reason": e.Reason, "nodes_after": e.NodesAfter, "ready_s": e.ReadyS})
}

// report adds the events, their markers and each region's acceptance
// figures, read from the recorded per-second latencies.
func (a *autoscaler) report(_ context.Context, sum *results.Summary) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	slices.SortStableFunc(a.events, func(x, y results.ScalingEvent) int { return int(math.Copysign(1, x.T-y.T)) })
	sum.Scaling = append(sum.Scaling, a.events...)
	// Nodes added by one decision share one marker (their labels would
	// overlap): "out web-east-2 … web-east-4 → 4".
	for i := 0; i < len(a.events); {
		e, j := a.events[i], i+1
		for j < len(a.events) && a.events[j].T == e.T && a.events[j].Action == e.Action && a.events[j].Region == e.Region {
			j++
		}
		m := results.ScalingMarker(a.events[j-1])
		if j-i > 1 {
			m.Label = fmt.Sprintf("%s %s … %s → %d", e.Action, e.Node, a.events[j-1].Node, a.events[j-1].NodesAfter)
		}
		sum.Markers = append(sum.Markers, m)
		i = j
	}
	if sum.Autoscale == nil {
		sum.Autoscale = map[string]results.AutoscaleStats{}
	}
	for _, sr := range a.regions {
		sum.Autoscale[sr.pol.Region] = a.stats(sr)
	}
	return nil
}

func (a *autoscaler) stats(sr *scaledRegion) results.AutoscaleStats {
	st := results.AutoscaleStats{BreachS: -1, FirstHealthyS: -1, RecoverS: -1, MaxNodes: sr.maxNodes}
	region := sr.pol.Region
	for _, e := range a.events {
		if e.Region != region {
			continue
		}
		if e.Action == "out" {
			st.ScaleOuts++
		} else {
			st.ScaleIns++
		}
	}
	// Errors during scale-ins: from each drain's start through the second
	// after its container was removed. (The summary's series are not built yet
	// when observers report; the recorder has the same seconds.)
	for _, w := range a.drains[region] {
		_, errs := a.r.rec.Counts(region, w[0], w[1].Add(2*time.Second))
		st.ScaleInErrors += errs
	}
	if sr.pol.P95 <= 0 {
		return st
	}
	// Breach and recovery per recorded second of p95; a second in which
	// more than sloErrorShare of the requests failed breaks the SLO.
	slo := float64(sr.pol.P95) / float64(time.Millisecond)
	end := int(math.Ceil(a.r.sc.Duration.Seconds()))
	good := 0
	for s := 0; s < end; s++ {
		from := a.r.start.Add(time.Duration(s) * time.Second)
		p95, reqs := a.r.rec.Quantile(region, from, from.Add(time.Second), 95)
		if reqs == 0 {
			continue
		}
		_, errs := a.r.rec.Counts(region, from, from.Add(time.Second))
		met := p95 <= slo && float64(errs) <= sloErrorShare*float64(reqs)
		if st.BreachS < 0 {
			if !met {
				st.BreachS = float64(s)
			}
			continue
		}
		if met {
			good++
			if good == recoveredFor && st.RecoverS < 0 {
				st.RecoverS = float64(s-recoveredFor+1) - st.BreachS
			}
		} else {
			good = 0
		}
	}
	if st.BreachS >= 0 {
		for _, e := range a.events {
			if e.Region == region && e.Action == "out" && e.T+e.ReadyS >= st.BreachS {
				st.FirstHealthyS = max(0, e.T+e.ReadyS-st.BreachS)
				break
			}
		}
	}
	return st
}

func cloneMap[M ~map[string]string](m M) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// The sessions observer reports each session-loaded region's lost sessions
// (results.SessionStats). It lives beside the autoscaler: both follow the
// web tier.
func init() { registerObserver("sessions", newSessionsObserver) }

type sessionsObserver struct {
	r       *run
	regions map[string]string // region → mode
}

func newSessionsObserver(r *run) (observer, error) {
	o := &sessionsObserver{r: r, regions: map[string]string{}}
	for _, l := range r.sc.Load {
		if l.Workload != "session" {
			continue
		}
		for _, region := range l.Regions {
			// deploy wires web nodes to a db in their region when there is
			// one (stateless); otherwise sessions stay in memory.
			mode := "stateful"
			if len(r.dep.NodesOf("db", region)) > 0 {
				mode = "stateless"
			}
			o.regions[region] = mode
		}
	}
	if len(o.regions) == 0 {
		return nil, nil
	}
	return o, nil
}

func (o *sessionsObserver) watch(ctx context.Context) error { return nil }

func (o *sessionsObserver) report(_ context.Context, sum *results.Summary) error {
	if sum.Sessions == nil {
		sum.Sessions = map[string]results.SessionStats{}
	}
	for region, mode := range o.regions {
		sum.Sessions[region] = results.SessionStats{Mode: mode, Lost: o.r.rec.ErrorsOfKind(region, "4xx")}
	}
	return nil
}

// The edge observer reads each region's edges' cache results (HIT, MISS,
// STALE, PASS) from their /metrics once the load is over: the CDN's hit
// ratio in summary.json and the report.
func init() { registerObserver("edge", newEdgeObserver) }

type edgeObserver struct {
	r     *run
	edges []topology.NodePlan
}

func newEdgeObserver(r *run) (observer, error) {
	edges := r.dep.NodesOf("edge", "")
	if len(edges) == 0 {
		return nil, nil
	}
	return &edgeObserver{r: r, edges: edges}, nil
}

func (o *edgeObserver) watch(context.Context) error { return nil }

func (o *edgeObserver) report(ctx context.Context, sum *results.Summary) error {
	if sum.Edge == nil {
		sum.Edge = map[string]results.EdgeStats{}
	}
	var errs []error
	for _, n := range o.edges {
		counts, err := edgeResults(ctx, nsClient(o.r, deploy.ContainerName(o.r.e.runID, n.Name)))
		if err != nil {
			errs = append(errs, fmt.Errorf("edge %s: %w", n.Name, err))
			continue
		}
		st := sum.Edge[n.Region]
		st.Hits += counts["HIT"]
		st.Misses += counts["MISS"]
		st.Stale += counts["STALE"]
		st.Pass += counts["PASS"]
		if st.Hits+st.Misses > 0 {
			st.HitRatio = float64(st.Hits) / float64(st.Hits+st.Misses)
		}
		sum.Edge[n.Region] = st
	}
	// A figure that could not be read is missing from the report, which
	// says so; the run's verdict rests on its checks.
	for _, err := range errs {
		o.r.logf("%v", err)
	}
	return nil
}

// edgeResults reads edge_requests_total by result from an edge's /metrics.
func edgeResults(ctx context.Context, hc *http.Client) (map[string]int64, error) {
	body, err := httpGet(ctx, hc, "http://edge/metrics", 4<<20)
	if err != nil {
		return nil, err
	}
	return parseEdgeResults(string(body)), nil
}

// parseEdgeResults picks the edge_requests_total{result="..."} samples out
// of Prometheus text exposition.
func parseEdgeResults(text string) map[string]int64 {
	return parseCounterByLabel(text, "edge_requests_total", "result")
}
