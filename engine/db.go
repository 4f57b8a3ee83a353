package engine

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/checkers/failover"
	"github.com/faultline/faultline/checkers/linearizable"
	"github.com/faultline/faultline/checkers/lostwrites"
	"github.com/faultline/faultline/checkers/partition"
	"github.com/faultline/faultline/checkers/staleness"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// The db observer follows a run's replicated db: while the run goes it
// marks every leader change on the time axis; afterwards it runs the
// checkers over the db history workloads' operations (lost writes,
// linearizability with porcupine's visualization kept in the run folder,
// stale-read age, failover time per leader kill, and what each cut-off
// region managed) and fills summary.json's `db` section.
func init() {
	registerObserver("db", newDBObserver)
	registerReadiness("db", dbFormed)
}

// dbFormTimeout bounds how long a db cluster may take to form once its
// regions are routed together.
const dbFormTimeout = 60 * time.Second

// dbFormed waits until every db node answers and names the same leader,
// which it can only know once that leader has added it and heard back.
func dbFormed(ctx context.Context, r *run) error {
	nodes := r.dep.NodesOf(dbRole, "")
	if len(nodes) == 0 {
		return nil
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, dbFormTimeout)
	defer cancel()
	for {
		sts := r.dbStatuses(ctx)
		leader, ok := dbLeader(sts)
		formed := ok && len(sts) == len(nodes)
		for _, st := range sts {
			formed = formed && st.LeaderID == leader
		}
		if formed {
			r.logf("run %s: db cluster of %d formed in %.1f s, leader %s", r.e.runID, len(nodes), time.Since(began).Seconds(), leader)
			r.event("db-formed", map[string]any{"leader": leader, "s": time.Since(began).Seconds()})
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s, %d of %d db nodes answered, leader %q", dbFormTimeout, len(sts), len(nodes), leader)
		case <-time.After(dbStatusEvery):
		}
	}
}

// LinearizabilityFile is porcupine's visualization of the register history.
const LinearizabilityFile = "db-linearizability.html"

const (
	dbRole = "db"
	// dbStatusEvery is how often the observer asks who leads: fine enough
	// to place a leader change within a fraction of the election timeout.
	dbStatusEvery = 250 * time.Millisecond
	// dbStatusTimeout bounds one status request; a killed or cut-off node
	// must not stall the poll.
	dbStatusTimeout = time.Second
	// leaderWait bounds how long a fault on "the leader" waits for one to
	// exist (an election in progress).
	leaderWait = 15 * time.Second
	// linearizableTimeout bounds porcupine's search; past it the verdict
	// is unknown, and a check on `linearizable` fails.
	linearizableTimeout = 90 * time.Second
)

type dbObserver struct {
	r       *run
	markers []results.Marker
}

func newDBObserver(r *run) (observer, error) {
	if !slices.ContainsFunc(r.sc.History, func(h scenarios.HistoryLoad) bool { return strings.HasPrefix(h.Workload, dbRole+"-") }) {
		return nil, nil
	}
	return &dbObserver{r: r}, nil
}

var dbHTTP = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}

// dbStatuses asks every db node of the run for its view of the cluster,
// through the node's published port (which changes when a node restarts,
// so it is looked up each time). Nodes that do not answer are left out.
func (r *run) dbStatuses(ctx context.Context) map[string]dbclient.Status {
	out := map[string]dbclient.Status{}
	for _, n := range r.dep.NodesOf(dbRole, "") {
		info, err := r.e.rt.Inspect(ctx, deploy.ContainerName(r.e.runID, n.Name))
		if err != nil || info.Pid == 0 {
			continue
		}
		addr, err := deploy.PortOf(info, deploy.Port)
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, dbStatusTimeout)
		st, err := dbclient.New("http://"+addr, dbclient.WithHTTPClient(dbHTTP)).Status(sctx)
		cancel()
		if err == nil {
			out[n.Name] = st
		}
	}
	return out
}

// dbLeader is the node that says it leads in the highest term, if any.
func dbLeader(sts map[string]dbclient.Status) (string, bool) {
	best, term := "", uint64(0)
	for name, st := range sts {
		if st.Role == "leader" && (best == "" || st.Term > term || (st.Term == term && name < best)) {
			best, term = name, st.Term
		}
	}
	return best, best != ""
}

// resolveTarget is chaos.Env.Resolve: "@leader:db" becomes the db node
// leading now, waiting out an election in progress.
func (r *run) resolveTarget(ctx context.Context, target string) ([]string, error) {
	if nodes, ok, err := r.resolveBroker(ctx, target); ok { // engine/broker.go
		return nodes, err
	}
	pick, role, ok := scenarios.ParseDeferred(target)
	if !ok || pick != scenarios.PickLeader || role != dbRole {
		return nil, fmt.Errorf("cannot resolve %q: only {role: db, pick: leader} is known", target)
	}
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		if leader, ok := dbLeader(r.dbStatuses(ctx)); ok {
			return []string{leader}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no db leader within %s", leaderWait)
		case <-time.After(dbStatusEvery):
		}
	}
}

// watch marks each leader change on the time axis until the load is over.
func (o *dbObserver) watch(ctx context.Context) error {
	r := o.r
	last := ""
	t := time.NewTicker(dbStatusEvery)
	defer t.Stop()
	for {
		if leader, ok := dbLeader(r.dbStatuses(ctx)); ok && leader != last {
			if ctx.Err() != nil {
				return nil
			}
			o.markers = append(o.markers, results.Marker{T: time.Since(r.start).Seconds(), Kind: "db-leader", Label: "db leader: " + leader})
			r.event("db-leader", map[string]any{"leader": leader})
			last = leader
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (o *dbObserver) report(_ context.Context, sum *results.Summary) error {
	r := o.r
	sum.Markers = append(sum.Markers, o.markers...)
	streams := r.hist.of(dbRole + "-")
	var all, register []loadgen.Operation
	byRegion := map[string][]loadgen.Operation{}
	for _, s := range streams {
		all = append(all, s.Ops...)
		byRegion[s.Region] = append(byRegion[s.Region], s.Ops...)
		if s.Workload == dbwork.WorkloadRegister {
			register = append(register, s.Ops...)
		}
	}
	var (
		set *lostwrites.Summary
		reg *linearizable.Summary
		st  *staleness.Summary
		fo  *failover.Summary
	)
	if hasWorkload(streams, dbwork.WorkloadSet) {
		s, err := lostwrites.Check(all)
		if err != nil {
			return err
		}
		set = &s
	}
	vis := ""
	if len(register) > 0 {
		s, err := linearizable.Check(register, linearizable.Timeout(linearizableTimeout),
			linearizable.Visualize(filepath.Join(r.e.RunDir(), LinearizabilityFile)))
		if err != nil {
			return err
		}
		s.Visualization, vis = LinearizabilityFile, LinearizabilityFile
		reg = &s
	}
	if s, err := staleness.Check(all); err != nil {
		return err
	} else if s.Reads > 0 {
		st = &s
	}
	if kills := o.leaderKills(sum.Faults); len(kills) > 0 {
		s := failover.Check(all, kills)
		fo = &s
	}
	for _, s := range streams {
		o.record(s)
	}
	db := checkers.NewDB(set, reg, st, fo)
	db.Partitions = o.partitions(sum.Faults, byRegion)
	db.Unsafe = r.sc.Topology.Unsafe
	db.VisualizationFile = vis
	sum.DB = &db
	r.event("db", map[string]any{"lost_writes": db.LostWrites, "linearizable": db.Linearizable})
	return nil
}

func hasWorkload(streams []*HistoryStream, w string) bool {
	return slices.ContainsFunc(streams, func(s *HistoryStream) bool { return s.Workload == w })
}

// processKinds are the faults that take a node away.
var processKinds = []string{"kill", "stop", "pause"}

// leaderKills are the times db nodes were taken away. Faults on "the
// leader" were resolved to the node that led at injection, so these are
// the moments a leader died (a kill of a follower would not stop writes,
// and shows as a near-zero failover).
//
// A kill counts from the moment it had been carried out: the fault's
// injected_at is when the controller began (asking the nodes who leads,
// then the runtime to kill it), and writes the old leader committed in
// between would make the failover look instant.
func (o *dbObserver) leaderKills(faults []results.Fault) []time.Time {
	var out []time.Time
	done := o.r.injectsDone()
	for _, f := range faults {
		if !slices.Contains(processKinds, f.Kind) || f.InjectedAt < 0 || f.Error != "" {
			continue
		}
		if !slices.ContainsFunc(f.Targets, func(t string) bool { return o.isDB(t) }) {
			continue
		}
		at := f.InjectedAt
		for _, t := range done[f.Kind+" "+strings.Join(f.Targets, ",")] {
			if t >= f.InjectedAt {
				at = t
				break
			}
		}
		out = append(out, o.r.start.Add(time.Duration(at*float64(time.Second))))
	}
	return out
}

func (o *dbObserver) isDB(node string) bool {
	return slices.ContainsFunc(o.r.dep.NodesOf(dbRole, ""), func(n topology.NodePlan) bool { return n.Name == node })
}

// partitions judges every region a partition cut off from the rest, over
// the time the cut was certainly in place: from the moment the injection
// had finished (the fault's injected_at is when it began, and cutting takes
// a few hundred milliseconds, during which requests still cross) to the
// moment the heal began (injected_at + for).
func (o *dbObserver) partitions(faults []results.Fault, byRegion map[string][]loadgen.Operation) []partition.Summary {
	var out []partition.Summary
	done := o.r.injectsDone()
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
		at := func(s float64) time.Time { return o.r.start.Add(time.Duration(s * float64(time.Second))) }
		for _, region := range f.Targets {
			if _, ok := byRegion[region]; !ok {
				continue // a node, or a region without db clients
			}
			out = append(out, partition.Check(region, byRegion[region], o.r.start, at(from), at(to)))
		}
	}
	return out
}

// record adds a stream's operations of the main phase to its region's
// per-second figures (see recordOps): the db's clients call no lb, so there
// is no other load to plot. A failed CAS comparison is an answer, not an
// error.
func (o *dbObserver) record(s *HistoryStream) {
	o.r.recordOps(s, "db", func(op loadgen.Operation) bool { return op.Kind != dbwork.KindFinal },
		func(op loadgen.Operation) string { return "db-" + op.Kind })
}
