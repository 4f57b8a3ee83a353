package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	brokercheck "github.com/faultline/faultline/checkers/broker"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/broker"
	"github.com/faultline/faultline/nodes/broker/mirror"
	"github.com/faultline/faultline/nodes/broker/protocol"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
	brokerwork "github.com/faultline/faultline/workloads/broker"
)

// The broker observer follows a run's broker clusters: before the clock
// starts it waits for each cluster's controller quorum and brokers and
// creates the run's topic from the scenario's broker workload options;
// while the run goes it samples who leads every partition (to know which
// partitions a killed broker led, and to mark leader changes) and every
// mirror's lag; afterwards it runs the broker checkers over the workloads'
// histories and fills summary.json's `broker` section.
func init() {
	if deploy.BrokerTopic != brokerwork.Topic || deploy.BrokerPort != brokerwork.BrokerPort {
		panic("engine: deploy and workloads/broker disagree on the broker topic or port")
	}
	registerObserver("broker", newBrokerObserver)
	registerReadiness("broker", brokersReady)
}

const (
	brokerRole = "broker"
	mirrorRole = "mirror"
	// brokerPollEvery is how often leaders and mirror lag are sampled.
	brokerPollEvery = 250 * time.Millisecond
	brokerReadyWait = 60 * time.Second
)

var brokerHTTP = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}

// nodeURL is a node's published HTTP base URL, looked up each time (it
// changes when a killed node is started again).
func (r *run) nodeURL(ctx context.Context, node string) (string, error) {
	info, err := r.e.rt.Inspect(ctx, deploy.ContainerName(r.e.runID, node))
	if err != nil {
		return "", err
	}
	if info.Pid == 0 {
		return "", fmt.Errorf("%s is not running", node)
	}
	addr, err := deploy.PortOf(info, deploy.Port)
	if err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := brokerHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// clusterMeta asks every broker of the cluster for its metadata and keeps
// the freshest answer (the most leader changes applied) from one that knows
// a controller: a broker just restarted may still be replaying the
// controller's log, and its view would be stale.
func (r *run) clusterMeta(ctx context.Context, cluster []topology.NodePlan) (broker.Metadata, string, error) {
	type answer struct {
		m    broker.Metadata
		base string
		err  error
	}
	answers := make([]answer, len(cluster))
	var wg sync.WaitGroup
	for i, n := range cluster {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, err := r.nodeURL(ctx, n.Name)
			var m broker.Metadata
			if err == nil {
				err = getJSON(ctx, base+broker.MetadataPath, &m)
			}
			if err == nil && m.Controller < 0 {
				err = errors.New("no controller known")
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", n.Name, err)
			}
			answers[i] = answer{m: m, base: base, err: err}
		}()
	}
	wg.Wait()
	best := -1
	var errs []error
	for i, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case best < 0 || freshness(a.m) > freshness(answers[best].m):
			best = i
		}
	}
	if best < 0 {
		return broker.Metadata{}, "", errors.Join(errs...)
	}
	return answers[best].m, answers[best].base, nil
}

// freshness grows with every controller change a broker has applied that
// matters here: its topics' partitions and their leader epochs.
func freshness(m broker.Metadata) int64 {
	var n int64
	for _, t := range m.Topics {
		n += int64(len(t.Partitions))
		for _, p := range t.Partitions {
			n += int64(p.Epoch)
		}
	}
	return n
}

// brokerTopicOptions are the topic settings of the scenario's broker
// workloads (the first entry that sets any).
func (r *run) brokerTopicOptions() (brokerwork.Options, error) {
	opts, _ := brokerwork.ParseOptions(nil)
	found := false
	for _, h := range r.sc.History {
		if !strings.HasPrefix(h.Workload, brokerRole+"-") {
			continue
		}
		o, err := brokerwork.ParseOptions(h.Options)
		if err != nil {
			return opts, fmt.Errorf("history %s on line %d: %w", h.Workload, h.Line, err)
		}
		if !found && len(h.Options) > 0 {
			opts, found = o, true
		}
	}
	return opts, nil
}

// brokersReady waits for every cluster to have its controller and all its
// brokers registered, creates the run's topic in each, and waits until
// every partition has a leader.
func brokersReady(ctx context.Context, r *run) error {
	clusters := deploy.BrokerClusters(r.dep.Nodes)
	if len(clusters) == 0 {
		return nil
	}
	opts, err := r.brokerTopicOptions()
	if err != nil {
		return err
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, brokerReadyWait)
	defer cancel()
	for name, cluster := range clusters {
		created := false
		for {
			m, base, err := r.clusterMeta(ctx, cluster)
			switch {
			case err != nil:
			case len(m.Brokers) < len(cluster):
				err = fmt.Errorf("%d of %d brokers registered", len(m.Brokers), len(cluster))
			case !created:
				err = createTopic(ctx, base, opts, len(cluster))
				created = err == nil
				if created {
					continue
				}
			default:
				if err = topicLed(m); err == nil {
					r.logf("run %s: broker cluster %q of %d ready in %.1f s (topic %s: %d partitions)", r.e.runID, name, len(cluster), time.Since(began).Seconds(), brokerwork.Topic, opts.Partitions)
					r.event("broker-ready", map[string]any{"cluster": name, "s": time.Since(began).Seconds()})
				}
			}
			if err == nil && created {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("broker cluster %q: %v", name, err)
			case <-time.After(brokerPollEvery):
			}
		}
	}
	return nil
}

func createTopic(ctx context.Context, base string, o brokerwork.Options, brokers int) error {
	rf := o.ReplicationFactor
	if rf == 0 {
		rf = int32(min(3, brokers))
	}
	body, _ := json.Marshal(broker.CreateTopic{Name: brokerwork.Topic, Partitions: o.Partitions, ReplicationFactor: rf, MinISR: o.MinISR})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+broker.TopicsPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := brokerHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("create topic: %s: %s", resp.Status, strings.TrimSpace(msg.String()))
	}
	return nil
}

// topicLed is nil once the run's topic exists and every partition leads.
func topicLed(m broker.Metadata) error {
	for _, t := range m.Topics {
		if t.Name != brokerwork.Topic {
			continue
		}
		if t.Err != protocol.None {
			return t.Err
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				return fmt.Errorf("partition %d has no leader", p.ID)
			}
		}
		return nil
	}
	return errors.New("topic not there yet")
}

// leaders maps each partition of the run's topic to the node leading it.
func leaders(m broker.Metadata, cluster []topology.NodePlan) map[int32]string {
	out := map[int32]string{}
	for _, t := range m.Topics {
		if t.Name != brokerwork.Topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Leader >= 1 && int(p.Leader) <= len(cluster) {
				out[p.ID] = cluster[p.Leader-1].Name
			}
		}
	}
	return out
}

// brokerLeader resolves {role: broker, pick: leader}: the broker that
// leads partition 0 of the run's topic now (in the first cluster, by
// name), waiting out an election in progress.
func (r *run) brokerLeader(ctx context.Context) ([]string, error) {
	clusters := deploy.BrokerClusters(r.dep.Nodes)
	names := make([]string, 0, len(clusters))
	for k := range clusters {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, errors.New("the topology has no brokers")
	}
	cluster := clusters[names[0]]
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		if m, _, err := r.clusterMeta(ctx, cluster); err == nil {
			if n, ok := leaders(m, cluster)[0]; ok {
				return []string{n}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader of %s/0 within %s", brokerwork.Topic, leaderWait)
		case <-time.After(brokerPollEvery):
		}
	}
}

type leaderSample struct {
	at      time.Time
	cluster string
	leaders map[int32]string
}

type brokerObserver struct {
	r        *run
	clusters map[string][]topology.NodePlan
	mu       sync.Mutex
	samples  []leaderSample
	lag      []brokercheck.LagPoint
	markers  []results.Marker
}

func newBrokerObserver(r *run) (observer, error) {
	clusters := deploy.BrokerClusters(r.dep.Nodes)
	if len(clusters) == 0 {
		return nil, nil
	}
	return &brokerObserver{r: r, clusters: clusters}, nil
}

func (o *brokerObserver) watch(ctx context.Context) error {
	r := o.r
	last := map[string]map[int32]string{}
	mirrors := r.dep.NodesOf(mirrorRole, "")
	t := time.NewTicker(brokerPollEvery)
	defer t.Stop()
	for {
		for name, cluster := range o.clusters {
			m, _, err := r.clusterMeta(ctx, cluster)
			if err != nil || ctx.Err() != nil {
				continue
			}
			ls := leaders(m, cluster)
			o.mu.Lock()
			o.samples = append(o.samples, leaderSample{at: time.Now(), cluster: name, leaders: ls})
			if prev, ok := last[name]; ok && !mapsEqual(prev, ls) {
				o.markers = append(o.markers, results.Marker{T: time.Since(r.start).Seconds(), Kind: "broker-leader", Label: "leaders " + describeLeaders(ls)})
				r.event("broker-leaders", map[string]any{"cluster": name, "leaders": ls})
			}
			o.mu.Unlock()
			last[name] = ls
		}
		for _, mn := range mirrors {
			base, err := r.nodeURL(ctx, mn.Name)
			var st mirror.Status
			if err == nil {
				err = getJSON(ctx, base+mirror.StatusPath, &st)
			}
			if err != nil || ctx.Err() != nil || !st.Started {
				continue
			}
			o.mu.Lock()
			o.lag = append(o.lag, brokercheck.LagPoint{T: time.Since(r.start).Seconds(), MS: st.LagMS})
			o.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func mapsEqual(a, b map[int32]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// describeLeaders counts partitions per leader, short enough for the
// plots' marker labels: "us-east-1×3, ...".
func describeLeaders(ls map[int32]string) string {
	count := map[string]int{}
	for _, n := range ls {
		count[n]++
	}
	var parts []string
	for n, c := range count {
		parts = append(parts, fmt.Sprintf("%s×%d", strings.TrimPrefix(n, brokerRole+"-"), c))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// kills are the faults that took a broker away, each with the partitions
// it led just before (the last sample taken before the injection began).
// A kill counts from the moment it had been carried out (done, from the
// run's events): injected_at is when the controller began, and on a loaded
// machine the old leader may still acknowledge for a while after that.
func (o *brokerObserver) kills(faults []results.Fault, done map[string][]float64) []brokercheck.Kill {
	var out []brokercheck.Kill
	for _, f := range faults {
		if !slices.Contains(processKinds, f.Kind) || f.InjectedAt < 0 || f.Error != "" {
			continue
		}
		began := o.r.start.Add(time.Duration(f.InjectedAt * float64(time.Second)))
		at := began
		for _, t := range done[f.Kind+" "+strings.Join(f.Targets, ",")] {
			if t >= f.InjectedAt {
				at = o.r.start.Add(time.Duration(t * float64(time.Second)))
				break
			}
		}
		for _, target := range f.Targets {
			k := brokercheck.Kill{At: at, Node: target}
			for _, s := range o.samples {
				if !s.at.Before(began) {
					break
				}
				k.Partitions = k.Partitions[:0]
				for p, n := range s.leaders {
					if n == target {
						k.Partitions = append(k.Partitions, p)
					}
				}
			}
			if o.isBroker(target) {
				slices.Sort(k.Partitions)
				out = append(out, k)
			}
		}
	}
	return out
}

func (o *brokerObserver) isBroker(node string) bool {
	return slices.ContainsFunc(o.r.dep.NodesOf(brokerRole, ""), func(n topology.NodePlan) bool { return n.Name == node })
}

func (o *brokerObserver) report(_ context.Context, sum *results.Summary) error {
	r := o.r
	o.mu.Lock()
	defer o.mu.Unlock()
	sum.Markers = append(sum.Markers, o.markers...)
	streams := r.hist.of(brokerRole + "-")
	if len(streams) == 0 {
		return nil
	}
	var publishes []loadgen.Operation
	var consumers []brokercheck.Stream
	byRegion := map[string][]loadgen.Operation{}
	for _, s := range streams {
		switch s.Workload {
		case brokerwork.WorkloadProduce:
			publishes = append(publishes, s.Ops...)
			byRegion[s.Region] = append(byRegion[s.Region], s.Ops...)
			o.record(s)
		case brokerwork.WorkloadConsume:
			consumers = append(consumers, brokercheck.Stream{Name: s.Region, Ops: s.Ops})
		}
	}
	sort.Slice(consumers, func(i, j int) bool { return consumers[i].Name < consumers[j].Name })
	done := r.injectsDone()
	s, err := brokercheck.Check(publishes, consumers, o.kills(sum.Faults, done))
	if err != nil {
		return err
	}
	s.CutOffs = o.cutOffs(sum.Faults, byRegion, done)
	s.MirrorLagMS = brokercheck.Lag(o.lag)
	if s.MirrorLagMS.Samples > 0 {
		sum.Markers = append(sum.Markers, results.Marker{T: s.MirrorLagMS.MaxAtS, Kind: "mirror-lag",
			Label: fmt.Sprintf("mirror lag max %.0f ms", s.MirrorLagMS.Max)})
	}
	if opts, err := r.brokerTopicOptions(); err == nil {
		s.Acks = map[int8]string{-1: "all", 1: "1", 0: "0"}[opts.Acks]
	}
	s.Unsafe = slices.DeleteFunc(slices.Clone(r.sc.Topology.Unsafe), func(u string) bool { return !strings.HasPrefix(u, brokerRole+"-") })
	sum.Broker = &s
	r.event("broker", map[string]any{"acked": s.Acked, "lost": s.Lost, "duplicates": s.Duplicate, "reordered": s.Reordered})
	return nil
}

// resolveBroker is the broker part of resolveTarget (engine/db.go).
func (r *run) resolveBroker(ctx context.Context, target string) ([]string, bool, error) {
	pick, role, ok := scenarios.ParseDeferred(target)
	if !ok || pick != scenarios.PickLeader || role != brokerRole {
		return nil, false, nil
	}
	nodes, err := r.brokerLeader(ctx)
	return nodes, true, err
}

// cutOffs judges the producers of every region a partition cut off from
// all the others, over the time the cut was certainly in place: from when
// the injection had been carried out to when the heal began.
func (o *brokerObserver) cutOffs(faults []results.Fault, byRegion map[string][]loadgen.Operation, done map[string][]float64) []brokercheck.CutOff {
	var out []brokercheck.CutOff
	at := func(s float64) time.Time { return o.r.start.Add(time.Duration(s * float64(time.Second))) }
	for _, f := range faults {
		if (f.Kind != "partition" && f.Kind != "region-isolate") || len(f.Peers) > 0 || f.OneWay || f.InjectedAt < 0 || f.HealedAt < 0 {
			continue
		}
		from, to := f.InjectedAt, f.HealedAt
		if f.For > 0 {
			to = min(to, f.InjectedAt+f.For)
		}
		for _, t := range done[f.Kind+" "+strings.Join(f.Targets, ",")] {
			if t >= from && t <= to {
				from = t
				break
			}
		}
		for _, region := range f.Targets {
			if _, ok := byRegion[region]; ok {
				out = append(out, brokercheck.CheckCutOff(region, byRegion, o.r.start, at(from), at(to)))
			}
		}
	}
	return out
}

// record adds a producer stream's publishes of the main phase to its
// region's per-second figures (see recordOps): a broker run has no other
// load to plot.
func (o *brokerObserver) record(s *HistoryStream) {
	o.r.recordOps(s, "broker", func(op loadgen.Operation) bool {
		return op.Kind == brokerwork.KindPublish && op.Input != nil
	}, func(loadgen.Operation) string { return "broker-publish" })
}
