package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/topology"
)

// The lb-failover observer measures how a region's lb handles one of its
// web nodes being killed (stopped, paused): the acceptance says the lb has
// it out within two health intervals, and the error rate is back under
// 0.5% by then.
//
// The start of the clock is the hard part. The fault's injected_at is when
// the controller began the kill, and on a loaded Docker host the process
// may die seconds later (the kill's "done" event later still). So the
// observer probes each web node a fault will hit, every probeEvery from
// the controller, and the clock starts at the node's last answer before
// the lb took it out (never before the kill began). The lb's side is its
// own record of state changes (GET /lb/transitions), timed when it decided.
// The probe reads the node's /metrics, so a stateful node's last answer
// also says how many sessions it held when it died.
func init() { registerObserver("lb-failover", newFailoverObserver) }

const (
	probeEvery   = 100 * time.Millisecond
	probeTimeout = 250 * time.Millisecond
)

type failoverObserver struct {
	r     *run
	nodes map[string]probedNode // by node name
	hc    *http.Client
	mu    sync.Mutex
	// answered: each node's successful probes, in order.
	answered map[string][]answer
}

// answer is one successful probe: when it came back, and the sessions the
// node held in memory then (-1: it keeps none there).
type answer struct {
	at       time.Time
	sessions int64
}

type probedNode struct {
	web, lb topology.NodePlan
}

func newFailoverObserver(r *run) (observer, error) {
	schedule, err := r.sc.Expand(r.dep.Nodes)
	if err != nil {
		return nil, err
	}
	o := &failoverObserver{r: r, nodes: map[string]probedNode{}, answered: map[string][]answer{},
		hc: &http.Client{Timeout: probeTimeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}}
	for _, f := range schedule {
		if !slices.Contains(processKinds, f.Kind) {
			continue
		}
		for _, target := range f.Targets {
			for _, n := range r.dep.NodesOf("web", "") {
				if lbs := r.dep.NodesOf("lb", n.Region); n.Name == target && len(lbs) > 0 {
					o.nodes[n.Name] = probedNode{web: n, lb: lbs[0]}
				}
			}
		}
	}
	if len(o.nodes) == 0 {
		return nil, nil
	}
	return o, nil
}

// watch probes each node's /metrics at its address, straight from the
// controller's host (each region's network is a bridge the host is on).
func (o *failoverObserver) watch(ctx context.Context) error {
	var wg sync.WaitGroup
	for name, n := range o.nodes {
		url := "http://" + netip.AddrPortFrom(n.web.IP, deploy.Port).String() + "/metrics"
		wg.Go(func() {
			probe := func() {
				if a, ok := o.probe(ctx, url); ok {
					o.mu.Lock()
					o.answered[name] = append(o.answered[name], a)
					o.mu.Unlock()
				}
			}
			probe()
			onTicks(ctx, probeEvery, probe)
		})
	}
	wg.Wait()
	return nil
}

func (o *failoverObserver) probe(ctx context.Context, url string) (answer, bool) {
	body, err := httpGet(ctx, o.hc, url, 4<<20)
	if err != nil {
		return answer{}, false
	}
	return answer{at: time.Now(), sessions: parseGauge(string(body), "web_sessions_in_memory")}, true
}

// parseGauge is an unlabelled sample's value in Prometheus text
// exposition, or -1 when it is not there.
func parseGauge(text, metric string) int64 {
	for s := range promSamples(text) {
		if s.name == metric && s.labels == "" {
			if f, err := strconv.ParseFloat(s.value, 64); err == nil {
				return int64(f)
			}
		}
	}
	return -1
}

func (o *failoverObserver) report(ctx context.Context, sum *results.Summary) error {
	r := o.r
	secs := func(t time.Time) float64 { return t.Sub(r.start).Seconds() }
	at := func(s float64) time.Time { return r.start.Add(time.Duration(s * float64(time.Second))) }
	lbs := map[string]*lb.Transitions{}
	for _, f := range sum.Faults {
		// A kill that reported an error may still have been carried out
		// (the Docker call timed out, the container died anyway): it counts
		// when the lb took the node out.
		if !slices.Contains(processKinds, f.Kind) || f.InjectedAt < 0 {
			continue
		}
		for _, target := range f.Targets {
			n, ok := o.nodes[target]
			if !ok {
				continue
			}
			tr, seen := lbs[n.lb.Name]
			if !seen {
				var err error
				if tr, err = o.transitions(ctx, n.lb); err != nil {
					// Missing from the report, which then says so through
					// the checks on it; the run's other figures stand.
					r.logf("lb-failover: %s: %v", n.lb.Name, err)
				}
				lbs[n.lb.Name] = tr
			}
			if tr == nil {
				continue
			}
			killed := at(f.InjectedAt)
			healed := r.start.Add(r.sc.Duration)
			if f.HealedAt > 0 {
				healed = at(f.HealedAt)
			}
			x := results.LBFailover{Region: n.web.Region, Node: n.web.Name, Kind: f.Kind, KilledAt: f.InjectedAt,
				OutAt: -1, EjectionS: -1, BoundS: 2 * tr.HealthInterval.Seconds()}
			out, by := leftRotation(tr.Transitions, netip.AddrPortFrom(n.web.IP, deploy.Port).String(), killed, healed)
			if out.IsZero() && f.Error != "" {
				continue
			}
			silent, held := o.lastAnswer(n.web.Name, killed, out, healed)
			x.SilentAt = secs(silent)
			if held >= 0 {
				x.SessionsHeld = &held
			}
			if !out.IsZero() {
				x.OutAt, x.OutBy = secs(out), by
				x.EjectionS = max(0, out.Sub(silent).Seconds())
				// The whole seconds from the lb's decision to the heal.
				reqs, errs := r.rec.Counts(n.web.Region, out.Truncate(time.Second).Add(time.Second), healed.Truncate(time.Second))
				x.RequestsAfter = reqs
				if reqs > 0 {
					x.ErrorRateAfter = float64(errs) / float64(reqs)
				}
				sum.Markers = append(sum.Markers, results.Marker{T: x.OutAt, Kind: "lb-out",
					Label: fmt.Sprintf("lb out %s (%s, %.2f s)", n.web.Name, by, x.EjectionS)})
			}
			r.event("lb-failover", map[string]any{"node": x.Node, "silent_at": x.SilentAt, "out_at": x.OutAt, "out_by": x.OutBy, "ejection_s": x.EjectionS})
			sum.LBFailover = append(sum.LBFailover, x)
		}
	}
	slices.SortStableFunc(sum.LBFailover, func(a, b results.LBFailover) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return cmp.Compare(a.KilledAt, b.KilledAt)
	})
	return nil
}

func (o *failoverObserver) transitions(ctx context.Context, n topology.NodePlan) (*lb.Transitions, error) {
	body, err := httpGet(ctx, nsClient(o.r, deploy.ContainerName(o.r.e.runID, n.Name)), "http://lb/lb/transitions", 4<<20)
	if err != nil {
		return nil, err
	}
	var tr lb.Transitions
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("/lb/transitions: %w", err)
	}
	return &tr, nil
}

// leftRotation is when the lb took backend out of rotation during the
// fault [killed, healed), and into which state; a backend already out when
// the fault began counts as out at once. Zero: it stayed in.
func leftRotation(ts []lb.Transition, backend string, killed, healed time.Time) (time.Time, string) {
	state, i := "", 0
	for ; i < len(ts) && ts[i].At.Before(killed); i++ {
		if ts[i].Addr == backend {
			state = ts[i].To
		}
	}
	if state != "" && state != lb.StateUp {
		return killed, state + " before the kill"
	}
	for _, t := range ts[i:] {
		if !t.At.Before(healed) {
			break
		}
		if t.Addr == backend && t.From == lb.StateUp && t.To != lb.StateDraining {
			return t.At, t.To
		}
	}
	return time.Time{}, ""
}

// lastAnswer is when the node last answered a probe before the lb took it
// out (or before the heal, when it never did), and never before the kill
// began: from then on it was silent. held is the sessions it held in
// memory at that last answer (-1: unknown, or it keeps none there).
func (o *failoverObserver) lastAnswer(node string, killed, out, healed time.Time) (silent time.Time, held int64) {
	until := healed
	if !out.IsZero() {
		until = out
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	as := o.answered[node]
	i, _ := slices.BinarySearchFunc(as, until, func(a answer, t time.Time) int { return a.at.Compare(t) })
	if i == 0 {
		return killed, -1
	}
	last := as[i-1]
	if last.at.Before(killed) {
		return killed, last.sessions
	}
	return last.at, last.sessions
}

// The web-cache observer adds up the cache reads each web node counts
// (web_item_reads_total, web_session_reads_total by result), per region:
// the region cache's hit ratio in summary.json and the report. It reads
// every few seconds during the run too, so a node killed and restarted
// (its counters back at zero) keeps what it had counted. It reads each
// node at its address straight from the host, as the failover probes do:
// a Docker API call per read would load the daemon the faults go through.
func init() { registerObserver("web-cache", newCacheObserver) }

const cacheScrapeEvery = 2 * time.Second

type cacheObserver struct {
	r    *run
	webs []topology.NodePlan
	hc   *http.Client
	mu   sync.Mutex
	// per node, per "metric/result": what earlier lives of the node
	// counted (base) and the latest reading of this one (last).
	base, last map[string]map[string]int64
}

func newCacheObserver(r *run) (observer, error) {
	webs := r.dep.NodesOf("web", "")
	if len(webs) == 0 || len(r.dep.NodesOf("cache", "")) == 0 {
		return nil, nil
	}
	return &cacheObserver{r: r, webs: webs, base: map[string]map[string]int64{}, last: map[string]map[string]int64{},
		hc: &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}}, nil
}

func (o *cacheObserver) watch(ctx context.Context) error {
	onTicks(ctx, cacheScrapeEvery, func() { o.scrape(ctx) })
	return nil
}

// scrape reads every web node once; nodes that do not answer (killed) keep
// their last reading.
func (o *cacheObserver) scrape(ctx context.Context) []error {
	var errs []error
	for _, n := range o.webs {
		body, err := httpGet(ctx, o.hc, "http://"+netip.AddrPortFrom(n.IP, deploy.Port).String()+"/metrics", 4<<20)
		if err != nil {
			errs = append(errs, fmt.Errorf("web %s: %w", n.Name, err))
			continue
		}
		now := map[string]int64{}
		for _, m := range []string{"web_item_reads_total", "web_session_reads_total"} {
			for result, v := range parseCounterByLabel(string(body), m, "result") {
				now[m+"/"+result] = v
			}
		}
		o.reading(n.Name, now)
	}
	return errs
}

// reading takes a node's counters as read now; when any went down, the
// node restarted and its last reading is banked.
func (o *cacheObserver) reading(node string, now map[string]int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := o.last[node]
	for k, v := range last {
		if now[k] < v {
			if o.base[node] == nil {
				o.base[node] = map[string]int64{}
			}
			for k, v := range last {
				o.base[node][k] += v
			}
			break
		}
	}
	o.last[node] = now
}

func (o *cacheObserver) report(ctx context.Context, sum *results.Summary) error {
	for _, err := range o.scrape(ctx) {
		o.r.logf("web-cache: %v", err)
	}
	o.addTo(sum)
	return nil
}

func (o *cacheObserver) addTo(sum *results.Summary) {
	o.mu.Lock()
	defer o.mu.Unlock()
	stats := map[string]results.CacheStats{}
	for _, n := range o.webs {
		st := stats[n.Region]
		for _, counts := range []map[string]int64{o.base[n.Name], o.last[n.Name]} {
			for k, v := range counts {
				switch _, result, _ := strings.Cut(k, "/"); result {
				case "hit":
					st.Hits += v
				case "miss":
					st.Misses += v
				case "error":
					st.Errors += v
				case "store":
					st.Uncached += v
				}
			}
		}
		stats[n.Region] = st
	}
	for region, st := range stats {
		if st.Reads()+st.Uncached == 0 {
			continue
		}
		if st.Reads() > 0 {
			st.HitRatio = float64(st.Hits) / float64(st.Reads())
		}
		if sum.Cache == nil {
			sum.Cache = map[string]results.CacheStats{}
		}
		sum.Cache[region] = st
	}
}

// parseCounterByLabel picks metric{label="..."} samples (that label only)
// out of Prometheus text exposition, by the label's value.
func parseCounterByLabel(text, metric, label string) map[string]int64 {
	out := map[string]int64{}
	for s := range promSamples(text) {
		if s.name != metric {
			continue
		}
		value, ok := s.label(label)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(s.value, 64); err == nil {
			out[value] = int64(v)
		}
	}
	return out
}
