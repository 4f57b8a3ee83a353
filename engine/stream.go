package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
	"github.com/faultline/faultline/nodes/stream/wordcount"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/topology"
)

// streamDrain bounds how long the report waits, after the load, for every
// input sentence to be fully processed.
const streamDrain = 60 * time.Second

func init() { registerObserver("stream", newStreamObserver) }

// streamObserver follows word count through the run: every second it reads
// each worker's counters, so throughput can be judged around each kill; at
// the end it reads the final counts from the master's checkpoints and
// compares them with the counts computed from the input.
type streamObserver struct {
	r       *run
	master  topology.NodePlan
	workers []topology.NodePlan
	cfg     wordcount.Config
	client  *http.Client

	mu     sync.Mutex
	last   map[string]workerStats // per worker, as last read
	series map[int]*results.StreamSecond
	total  workerStats
	comps  map[string]*compStats      // per component, summed over workers
	busy   map[int]map[string]float64 // per second and component: busy task-seconds
}

type workerStats struct {
	acked, executed, failed, replayed uint64
	comps                             map[string]compStats
}

// compStats are one component's stream_component_* counters (seconds for
// complete and busy).
type compStats struct {
	emitted, executed, acked, failed, replayed, complete, busy float64
}

// compFields says where each stream_component_<metric> goes; metrics this
// observer does not use are absent. Built once: it is looked up for every
// line of every worker's metrics each second.
var compFields = map[string]func(*compStats) *float64{
	"emitted_total": func(c *compStats) *float64 { return &c.emitted }, "executed_total": func(c *compStats) *float64 { return &c.executed },
	"acked_total": func(c *compStats) *float64 { return &c.acked }, "failed_total": func(c *compStats) *float64 { return &c.failed },
	"replayed_total": func(c *compStats) *float64 { return &c.replayed }, "complete_seconds_total": func(c *compStats) *float64 { return &c.complete },
	"busy_seconds_total": func(c *compStats) *float64 { return &c.busy },
}

// since is what c did after prev, a counter that went down meaning its
// process restarted.
func (c compStats) since(prev compStats) compStats {
	d := func(p, n float64) float64 {
		if n < p {
			return n
		}
		return n - p
	}
	return compStats{d(prev.emitted, c.emitted), d(prev.executed, c.executed), d(prev.acked, c.acked),
		d(prev.failed, c.failed), d(prev.replayed, c.replayed), d(prev.complete, c.complete), d(prev.busy, c.busy)}
}

func (c *compStats) add(d compStats) {
	c.emitted += d.emitted
	c.executed += d.executed
	c.acked += d.acked
	c.failed += d.failed
	c.replayed += d.replayed
	c.complete += d.complete
	c.busy += d.busy
}

func newStreamObserver(r *run) (observer, error) {
	nodes := r.dep.NodesOf("stream", "")
	master, ok := deploy.StreamMaster(nodes)
	if !ok {
		return nil, nil
	}
	st := r.sc.Topology.Stream
	cfg := wordcount.Lecture(st.SentencesPerSpout)
	cfg.Rate, cfg.FailRate = st.Rate, st.FailRate
	// Polls time out within the second they belong to: a killed worker
	// must not hold back the others' figures.
	o := &streamObserver{r: r, master: master, cfg: cfg, client: &http.Client{Timeout: 800 * time.Millisecond},
		last: map[string]workerStats{}, series: map[int]*results.StreamSecond{},
		comps: map[string]*compStats{}, busy: map[int]map[string]float64{}}
	for _, n := range nodes {
		if n.Name != master.Name {
			o.workers = append(o.workers, n)
		}
	}
	return o, nil
}

func (o *streamObserver) watch(ctx context.Context) error {
	onTicks(ctx, time.Second, func() { o.pollWorkers(ctx) })
	return nil
}

// pollWorkers adds what every worker did since its last read to the second
// it is read in. A worker that restarted counts from zero again; one that is
// down adds nothing.
func (o *streamObserver) pollWorkers(ctx context.Context) {
	sec := int(time.Since(o.r.start).Seconds())
	var wg sync.WaitGroup
	for _, w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now, err := o.workerStats(ctx, w)
			if err != nil {
				return
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			prev := o.last[w.Name]
			d := workerStats{acked: delta(prev.acked, now.acked), executed: delta(prev.executed, now.executed), failed: delta(prev.failed, now.failed), replayed: delta(prev.replayed, now.replayed)}
			o.last[w.Name] = now
			s := o.series[sec]
			if s == nil {
				s = &results.StreamSecond{T: sec}
				o.series[sec] = s
			}
			s.Acked += d.acked
			s.Executed += d.executed
			s.Failed += d.failed
			s.Replayed += d.replayed
			o.total.failed += d.failed
			o.total.replayed += d.replayed
			for name, c := range now.comps {
				cd := c.since(prev.comps[name])
				total := o.comps[name]
				if total == nil {
					total = &compStats{}
					o.comps[name] = total
				}
				total.add(cd)
				if o.busy[sec] == nil {
					o.busy[sec] = map[string]float64{}
				}
				o.busy[sec][name] += cd.busy
			}
		}()
	}
	wg.Wait()
}

// delta is a counter's increase, a drop meaning the process restarted.
func delta(prev, now uint64) uint64 {
	if now < prev {
		return now
	}
	return now - prev
}

// workerStats reads a worker's stream_*_total counters from /metrics.
func (o *streamObserver) workerStats(ctx context.Context, w topology.NodePlan) (workerStats, error) {
	body, err := o.get(ctx, fmt.Sprintf("http://%s:%d/metrics", w.IP, deploy.Port))
	if err != nil {
		return workerStats{}, err
	}
	st := workerStats{comps: map[string]compStats{}}
	for s := range promSamples(string(body)) {
		if metric, comp, ok := componentMetric(s); ok {
			f, err := strconv.ParseFloat(s.value, 64)
			if err != nil {
				return workerStats{}, fmt.Errorf("%s: %s{%s}: %w", w.Name, s.name, s.labels, err)
			}
			c := st.comps[comp]
			if field := compFields[metric]; field != nil {
				*field(&c) = f
			}
			st.comps[comp] = c
			continue
		}
		if s.labels != "" {
			continue
		}
		var dst *uint64
		switch s.name {
		case "stream_acked_total":
			dst = &st.acked
		case "stream_executed_total":
			dst = &st.executed
		case "stream_failed_total":
			dst = &st.failed
		case "stream_replayed_total":
			dst = &st.replayed
		default:
			continue
		}
		f, err := strconv.ParseFloat(s.value, 64)
		if err != nil {
			return workerStats{}, fmt.Errorf("%s: %s: %w", w.Name, s.name, err)
		}
		*dst = uint64(f)
	}
	return st, nil
}

// sinkDBWrongWords counts the words whose count in the db (where the sink
// writes a key per word) differs from want.
func (o *streamObserver) sinkDBWrongWords(ctx context.Context, want map[string]int64) (int, error) {
	var urls []string
	for _, d := range o.r.dep.NodesOf("db", "") {
		urls = append(urls, fmt.Sprintf("http://%s:%d", d.IP, deploy.Port))
	}
	db, err := dbclient.NewMulti(urls, 5*time.Second)
	if err != nil {
		return 0, err
	}
	wrong := 0
	for w, n := range want {
		var got string
		err := db.Do(ctx, func(ctx context.Context, c *dbclient.Client) error {
			r, err := c.Get(ctx, wordcount.DBKeyPrefix+w, dbclient.Linearizable)
			got = r.Value
			return err
		})
		if err != nil && !errors.Is(err, dbclient.ErrNotFound) {
			return 0, err
		}
		if got != strconv.FormatInt(n, 10) {
			wrong++
		}
	}
	return wrong, nil
}

// componentMetric splits `stream_component_executed_total{component="split"}`
// into its metric and component.
func componentMetric(s promSample) (metric, comp string, ok bool) {
	metric, ok = strings.CutPrefix(s.name, "stream_component_")
	if !ok {
		return "", "", false
	}
	comp, ok = s.label("component")
	return metric, comp, ok
}

// components is summary.json's per-component table: totals over the run,
// tuples a second over the seconds that had input, capacity (busy share
// of the component's tasks) mean and worst over those seconds.
func (o *streamObserver) components(tp *topo.Topology, busySeconds []int) []results.StreamComponent {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []results.StreamComponent
	for _, c := range tp.Components {
		t := o.comps[c.Name]
		if t == nil {
			t = &compStats{}
		}
		sc := results.StreamComponent{Name: c.Name, Kind: c.Role.String(), Tasks: c.Parallelism,
			Emitted: uint64(t.emitted), Executed: uint64(t.executed), Acked: uint64(t.acked), Failed: uint64(t.failed), Replayed: uint64(t.replayed)}
		if t.acked > 0 {
			sc.CompleteLatencyMs = 1000 * t.complete / t.acked
		}
		if n := float64(len(busySeconds)); n > 0 {
			tuples := t.executed
			if c.Role == topo.RoleSpout {
				tuples = t.emitted
			}
			sc.TuplesPerS = tuples / n
			if c.Role != topo.RoleSpout {
				for _, sec := range busySeconds {
					capacity := o.busy[sec][c.Name] / float64(c.Parallelism)
					sc.Capacity += capacity / n
					sc.CapacityMax = max(sc.CapacityMax, capacity)
				}
			}
		}
		out = append(out, sc)
	}
	return out
}

func (o *streamObserver) get(ctx context.Context, url string) ([]byte, error) {
	return httpGet(ctx, o.client, url, 64<<20)
}

func (o *streamObserver) report(ctx context.Context, sum *results.Summary) error {
	tp, err := wordcount.Build(o.cfg)
	if err != nil {
		return err
	}
	spouts := tp.Component("sentences").Tasks
	st := &results.Stream{Sentences: o.cfg.PerSpout * uint64(len(spouts)), Kills: []results.StreamKill{}}
	want := wordcount.Expected(len(spouts), o.cfg.PerSpout)
	// A broker-fed word count must count what the topic holds: the feeder
	// retries failed publishes, so a sentence may be there twice.
	var bc *client.Client
	if o.r.sc.Topology.Stream.FromBroker {
		var addrs []string
		for _, b := range o.r.dep.NodesOf("broker", "") {
			addrs = append(addrs, netip.AddrPortFrom(b.IP, deploy.BrokerPort).String())
		}
		bc = client.New(addrs)
		defer bc.Close()
	}

	// The input may still be draining: wait, bounded, for every sentence.
	base := fmt.Sprintf("http://%s:%d/state/", o.master.IP, deploy.Port)
	deadline := time.Now().Add(streamDrain)
	for {
		if bc != nil {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			counts, ends, err := wordcount.CountTopic(cctx, bc, deploy.StreamTopic, len(spouts), o.cfg.PerSpout)
			cancel()
			if err != nil {
				return fmt.Errorf("read topic %s back: %w", deploy.StreamTopic, err)
			}
			want, st.Sentences = counts, 0
			for _, e := range ends {
				st.Sentences += uint64(e)
			}
		}
		st.Acked = 0
		for _, id := range spouts {
			data, err := o.get(ctx, base+strconv.Itoa(int(id)))
			if err != nil {
				return fmt.Errorf("spout %d checkpoint: %w", id, err)
			}
			w, err := engine.SpoutWatermark(data)
			if err != nil {
				return fmt.Errorf("spout %d checkpoint: %w", id, err)
			}
			st.Acked += w
		}
		if st.Acked >= st.Sentences || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		o.r.logf("stream: %d of %d sentences processed; waiting for the rest", st.Acked, st.Sentences)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	data, err := o.get(ctx, base+strconv.Itoa(int(tp.Component("sink").Tasks[0])))
	if err != nil {
		return fmt.Errorf("sink checkpoint: %w", err)
	}
	snap, err := engine.BoltSnapshot(data)
	if err != nil {
		return fmt.Errorf("sink checkpoint: %w", err)
	}
	got, err := wordcount.DecodeCounts(snap)
	if err != nil {
		return fmt.Errorf("sink checkpoint: %w", err)
	}
	st.Words = len(want)
	for w, n := range want {
		if got[w] != n {
			st.WrongWords++
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			st.WrongWords++
		}
	}
	st.Exact = st.WrongWords == 0 && st.Acked == st.Sentences
	if o.r.sc.Topology.Stream.Sink == "db" {
		wrong, err := o.sinkDBWrongWords(ctx, want)
		if err != nil {
			return fmt.Errorf("read the db sink's counts: %w", err)
		}
		exact := wrong == 0 && st.Acked == st.Sentences
		st.SinkDB = &results.StreamSinkDB{Exact: exact, WrongWords: wrong}
	}

	o.mu.Lock()
	for _, s := range o.series {
		st.Series = append(st.Series, *s)
	}
	st.Failed, st.Replayed = o.total.failed, o.total.replayed
	o.mu.Unlock()
	slices.SortFunc(st.Series, func(a, b results.StreamSecond) int { return a.T - b.T })
	st.InputPerS = o.cfg.Rate * float64(o.cfg.Spouts)
	var tuples, sentences float64
	var busy []int
	for _, s := range st.Series {
		if s.Acked > 0 {
			tuples += float64(s.Executed)
			sentences += float64(s.Acked)
			busy = append(busy, s.T)
		}
	}
	if n := float64(len(busy)); n > 0 {
		st.TuplesPerS, st.SentencesPerS = tuples/n, sentences/n
	}
	st.Components = o.components(tp, busy)
	for _, f := range sum.Faults {
		// A fault on a region (down, isolated) takes its workers too, and
		// below its master.
		var hit []string
		for _, w := range o.workers {
			if slices.Contains(f.Targets, w.Name) || slices.Contains(f.Targets, w.Region) {
				hit = append(hit, w.Name)
			}
		}
		if f.InjectedAt >= 0 && len(hit) > 0 {
			st.Kills = append(st.Kills, results.StreamKill{Workers: hit, InjectedAt: f.InjectedAt})
		}
	}
	st.RecoveryS = results.StreamRecovery(st.Series, st.Kills, st.InputPerS)
	for _, f := range sum.Faults {
		if f.InjectedAt >= 0 && (slices.Contains(f.Targets, o.master.Name) || slices.Contains(f.Targets, o.master.Region)) {
			healed := f.HealedAt
			if healed < 0 {
				healed = sum.EndedAt.Sub(o.r.start).Seconds()
			}
			st.MasterDown = append(st.MasterDown, results.StreamOutage{InjectedAt: f.InjectedAt, HealedAt: healed})
		}
	}
	results.StreamOutages(st.Series, st.MasterDown, st.InputPerS)
	sum.Stream = st
	return nil
}
