package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/geodns"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/topology"
)

// RawDNSFile holds every geodns state the controller polled.
const RawDNSFile = "raw/geodns.jsonl"

// dnsPollEvery is how often every geodns node is read: fine enough to time
// a failover bounded at a few seconds to within a poll.
const dnsPollEvery = 200 * time.Millisecond

func init() { registerObserver("geodns", newDNSObserver) }

// dnsObserver polls every geodns node's state through the run, so the
// summary can say when each region's clients were moved away and back,
// where to, and what every server answered.
type dnsObserver struct {
	r       *run
	servers []topology.NodePlan
	client  *http.Client

	mu     sync.Mutex
	polls  []results.DNSPoll
	health map[healthKey]time.Time // every health change seen, once: its LastOK
}

// healthKey identifies one health change of a region as one server saw it.
type healthKey struct {
	server, region string
	healthy        bool
	at             time.Time
}

func newDNSObserver(r *run) (observer, error) {
	servers := r.dep.NodesOf("geodns", "")
	if len(servers) == 0 {
		return nil, nil
	}
	return &dnsObserver{r: r, servers: servers, client: &http.Client{Timeout: dnsPollEvery * 2}, health: map[healthKey]time.Time{}}, nil
}

func (o *dnsObserver) watch(ctx context.Context) error {
	pollAll := func() {
		var wg sync.WaitGroup
		for _, s := range o.servers {
			wg.Go(func() { o.poll(ctx, s) })
		}
		wg.Wait()
	}
	pollAll()
	onTicks(ctx, dnsPollEvery, pollAll)
	return nil
}

// poll reads one server's state; a server that is down or cut off simply
// leaves no poll, which is what its absence means.
func (o *dnsObserver) poll(ctx context.Context, s topology.NodePlan) {
	// The controller reaches nodes on their region network directly: the
	// host is every region bridge's gateway, which no fault ever cuts.
	url := fmt.Sprintf("http://%s:%d/geodns/state", s.IP, deploy.Port)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	var st geodns.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return
	}
	p := results.DNSPoll{T: time.Since(o.r.start).Seconds(), Server: s.Name, Region: s.Region,
		Mapping: st.Mapping, Answers: st.Answers, Rcodes: st.Rcodes}
	o.mu.Lock()
	o.polls = append(o.polls, p)
	for _, ev := range st.Events {
		o.health[healthKey{server: s.Name, region: ev.Region, healthy: ev.Healthy, at: ev.Time}] = ev.LastOK
	}
	o.mu.Unlock()
}

func (o *dnsObserver) report(_ context.Context, sum *results.Summary) error {
	o.mu.Lock()
	polls := slices.Clone(o.polls)
	var health []healthKey
	var changes []results.DNSHealth
	for k, lastOK := range o.health {
		health = append(health, k)
		c := results.DNSHealth{T: k.at.Sub(o.r.start).Seconds(), Server: k.server, Region: k.region, Healthy: k.healthy, LastOK: -1}
		if !lastOK.IsZero() {
			c.LastOK = lastOK.Sub(o.r.start).Seconds()
		}
		changes = append(changes, c)
	}
	o.mu.Unlock()
	sort.SliceStable(polls, func(i, j int) bool { return polls[i].T < polls[j].T })
	if err := o.writeRaw(polls); err != nil {
		return err
	}
	if len(polls) == 0 {
		return fmt.Errorf("no geodns node answered the controller's %d polls", len(o.servers))
	}
	var series map[string]results.Region
	if o.r.rec != nil {
		series = o.r.rec.Regions()
	}
	g := results.BuildGeoDNS(polls, changes, sum.Faults, o.r.dep.Regions(), series, dnsBound(o.r.sc.Topology.DNS).Seconds())
	sum.GeoDNS = g
	// Every health change lands on the timeline: who saw which region go
	// down or come back, and when.
	sort.Slice(health, func(i, j int) bool { return health[i].at.Before(health[j].at) })
	for _, h := range health {
		t := h.at.Sub(o.r.start).Seconds()
		if t < 0 {
			continue // the start-up checks, before the run's clock
		}
		state := "down"
		if h.healthy {
			state = "up"
		}
		sum.Markers = append(sum.Markers, results.Marker{T: t, Kind: "dns-health", Label: fmt.Sprintf("%s: %s %s", h.server, h.region, state)})
	}
	for _, f := range g.Failovers {
		if f.FailoverS >= 0 {
			sum.Markers = append(sum.Markers, results.Marker{T: f.AliveAt + f.FailoverS, Kind: "dns",
				Label: fmt.Sprintf("%s clients sent to %s", f.Region, f.MovedTo)})
		}
		if f.BackS >= 0 {
			sum.Markers = append(sum.Markers, results.Marker{T: f.HealedAt + f.BackS, Kind: "dns",
				Label: fmt.Sprintf("%s clients back home", f.Region)})
		}
	}
	sort.SliceStable(sum.Markers, func(i, j int) bool { return sum.Markers[i].T < sum.Markers[j].T })
	return nil
}

func (o *dnsObserver) writeRaw(polls []results.DNSPoll) error {
	path := filepath.Join(o.r.e.RunDir(), RawDNSFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", RawDNSFile, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", RawDNSFile, err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, p := range polls {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("write %s: %w", RawDNSFile, err)
		}
	}
	return f.Close()
}

// dnsBound is what the topology's DNS settings promise: a dead region is
// noticed after fall failed checks one interval apart, and its clients'
// cached answers expire within a TTL after that.
func dnsBound(d topology.DNS) time.Duration {
	c := geodns.Config{TTL: d.TTL, Check: geodns.HealthCheck{Interval: d.CheckInterval, Timeout: d.CheckTimeout, Fall: d.Fall, Rise: d.Rise}}.WithDefaults()
	return time.Duration(c.Check.Fall)*c.Check.Interval + c.TTL
}
