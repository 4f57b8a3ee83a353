package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/scenarios"
)

// startParallelism bounds concurrent container starts. Measured on these
// machines (Docker 20.10, fuse-overlayfs): the engine serialises most of a
// start, 13 starts take 9.3 s one by one and 7.9 s all at once, and six at a
// time left the default topology's start-up at 8.4-10.2 s against 8.2-8.6 s
// with no practical limit.
const startParallelism = 16

func (r *run) play(ctx context.Context) error {
	e := r.e
	dep, err := deploy.Plan(r.sc.Topology, e.runID, OwnerLabels())
	if err != nil {
		return err
	}
	r.dep = dep
	schedule, err := r.sc.Expand(dep.Nodes)
	if err != nil {
		return err
	}
	steps := make([]chaos.Step, len(schedule))
	for i, s := range schedule {
		steps[i] = chaos.Step{At: s.At, For: s.For, Spec: chaos.Spec{Kind: s.Kind, Targets: s.Targets, Peers: s.Peers, OneWay: s.OneWay, Link: chaos.LinkChange(s.Link)}}
	}
	r.event("schedule", map[string]any{"faults": schedule})

	if err := r.startTopology(ctx); err != nil {
		return err
	}
	if err := r.waitReady(ctx); err != nil {
		return abortErr(ctx, err)
	}
	return r.drive(ctx, steps)
}

// startTopology starts the deployment; startup_s is the time from the first
// container created to the last node healthy.
func (r *run) startTopology(ctx context.Context) error {
	e, dep := r.e, r.dep
	r.logf("run %s: starting %d nodes in %d regions", e.runID, len(dep.Containers), len(dep.Networks))
	st, err := start(ctx, e.rt, dep, e.healthy)
	if err != nil {
		return abortErr(ctx, err)
	}
	r.sum.StartupS = time.Since(st.began).Seconds()
	r.event("healthy", map[string]any{"startup_s": r.sum.StartupS, "started_s": st.started.Seconds(),
		"healthy_s": st.healthy.Seconds(), "network_s": st.network.Seconds()})
	r.logf("run %s: %d nodes healthy in %.2f s (containers started %.2f s, healthy %.2f s, routes %.2f s)",
		e.runID, len(dep.Containers), r.sum.StartupS, st.started.Seconds(), st.healthy.Seconds(), st.network.Seconds())
	return nil
}

// Start creates a deployment's networks and containers and waits until every
// node is healthy. On error, what was made is left for the caller to remove
// by the run label.
func Start(ctx context.Context, rt runtime.Runtime, dep *deploy.Deployment) error {
	_, err := start(ctx, rt, dep, 60*time.Second)
	return err
}

// startTimes says where start-up time went, measured from the first
// container created: all started, all healthy, routes installed.
type startTimes struct {
	began                     time.Time
	started, healthy, network time.Duration
}

func start(ctx context.Context, rt runtime.Runtime, dep *deploy.Deployment, healthTimeout time.Duration) (startTimes, error) {
	var st startTimes
	for _, n := range dep.Networks {
		if err := rt.CreateNetwork(ctx, n); err != nil {
			return st, fmt.Errorf("%w: create network %s: %v", ErrInfra, n.Name, err)
		}
	}
	st.began = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(startParallelism)
	for _, c := range dep.Containers {
		g.Go(func() error {
			if err := rt.Create(gctx, c); err != nil {
				return fmt.Errorf("%w: create %s: %v", ErrInfra, c.Name, err)
			}
			if err := rt.Start(gctx, c.Name); err != nil {
				return fmt.Errorf("%w: start %s: %v", ErrInfra, c.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	st.started = time.Since(st.began)
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	g, gctx = errgroup.WithContext(hctx)
	for _, c := range dep.Containers {
		g.Go(func() error {
			if err := rt.WaitHealthy(gctx, c.Name); err != nil {
				return fmt.Errorf("%w: node %s never became healthy: %v", ErrInfra, c.Labels[runtime.LabelNode], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	st.healthy = time.Since(st.began)
	// Every node sends other regions' traffic through the wan.
	if err := netsetup.Setup(ctx, rt, dep.RunID); err != nil {
		return st, fmt.Errorf("%w: network: %v", ErrInfra, err)
	}
	st.network = time.Since(st.began)
	return st, nil
}

// abortErr reports an interrupted run as such, not as the infrastructure
// error the interruption caused.
func abortErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("run aborted: %w", context.Cause(ctx))
	}
	return err
}

type regionLoad struct {
	region, endpoint string
	spec             loadgen.AttackSpec
}

// attackSpec is the loadgen's form of one region's share of a scenario load.
func attackSpec(l scenarios.LoadSpec, target string, d time.Duration, seed int64) loadgen.AttackSpec {
	spec := loadgen.AttackSpec{Target: target, Workload: l.Workload, Rate: l.Rate, Duration: d, Timeout: l.Timeout}
	if r := l.Ramp; r != nil {
		spec.Ramp = &loadgen.Ramp{From: r.From, To: r.To}
	}
	if st := l.Step; st != nil {
		spec.Step = &loadgen.Step{From: st.From, By: st.By, Max: st.Max, Every: st.Every}
	}
	for _, p := range l.Phases {
		spec.Phases = append(spec.Phases, loadgen.Phase{For: p.For, From: p.From, To: p.To})
	}
	if u := l.Users; u != nil {
		spec.Users = &loadgen.Users{N: u.N, Think: u.Think, Exponential: u.Exponential, Seed: seed}
	}
	return spec
}

// userSeed gives each region's users their own draws, the same in every run
// of the scenario's seed.
func userSeed(seed int64, region string) int64 {
	h := fnv.New64a()
	h.Write([]byte(region))
	return seed ^ int64(h.Sum64())
}

// drive runs the load in every region and the fault schedule side by side.
func (r *run) drive(ctx context.Context, steps []chaos.Step) error {
	e, sc := r.e, r.sc
	var loads []regionLoad
	for _, l := range sc.Load {
		for _, region := range l.Regions {
			gens := r.dep.NodesOf("loadgen", region)
			target, ok := r.dep.EntryURL(region)
			if len(gens) == 0 || !ok {
				return fmt.Errorf("load in region %s needs a loadgen and an lb node in the topology", region)
			}
			info, err := e.rt.Inspect(ctx, deploy.ContainerName(e.runID, gens[0].Name))
			if err != nil {
				return fmt.Errorf("%w: inspect %s: %v", ErrInfra, gens[0].Name, err)
			}
			endpoint, err := deploy.PortOf(info, deploy.Port)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInfra, err)
			}
			// With geodns in the topology, clients find the application by
			// name through their region's DNS (and the others' as fallbacks),
			// so a failover reaches them the way it reaches real users.
			resolvers := r.dep.Resolvers(sc.Topology, region)
			if len(resolvers) > 0 {
				target = "http://" + net.JoinHostPort(sc.Topology.DNS.AppName(), strconv.Itoa(deploy.Port))
			}
			spec := attackSpec(l, target, sc.Duration, userSeed(sc.Seed, region))
			spec.Resolvers = resolvers
			// The scenario was validated against the workload names only; a
			// model the workload cannot run fails here, before any load.
			if err := spec.Validate(); err != nil {
				return fmt.Errorf("load on line %d in region %s: %w", l.Line, region, err)
			}
			loads = append(loads, regionLoad{region: region, endpoint: endpoint, spec: spec})
		}
	}

	// The scenario clock starts a little ahead, so every region's attack is
	// set up before the first request is due and all start together.
	r.start = time.Now().Add(e.startLead).Truncate(time.Millisecond)
	r.sum.StartedAt = r.start
	r.rec = results.NewRecorder(r.start)
	for _, region := range r.dep.Regions() {
		r.rec.EnsureRegion(region)
	}
	r.cpu = map[string]loadgen.Final{}
	r.event("start", map[string]any{"duration_s": sc.Duration.Seconds()})

	obs, err := r.startObservers()
	if err != nil {
		return err
	}
	runCtx, endRun := context.WithCancel(ctx)
	defer endRun()
	waitHistories, err := r.startHistories(runCtx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var loadErrs []error
	for name, o := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.watch(runCtx); err != nil {
				mu.Lock()
				loadErrs = append(loadErrs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.progressLoop(runCtx)
	}()
	var faults []results.Fault
	wg.Add(1)
	go func() {
		defer wg.Done()
		env := chaos.Env{Runtime: e.rt, RunID: e.runID, Container: func(node string) string { return deploy.ContainerName(e.runID, node) }, Resolve: r.resolveTarget}
		faults = chaos.Play(runCtx, env, r.start, steps, func(ev chaos.Event) {
			r.event("fault", map[string]any{"action": ev.Action, "kind": ev.Kind, "targets": ev.Targets, "error": ev.Error})
			msg := fmt.Sprintf("t=%5.1fs %s %s %s", ev.T, ev.Action, ev.Kind, strings.Join(ev.Targets, ","))
			if ev.Error != "" {
				msg += " FAILED: " + ev.Error
			}
			r.logf("%s", msg)
			label := ev.Kind + " " + strings.Join(ev.Targets, ",")
			r.active.set(label, ev.T, ev.Action == "inject" && ev.Error == "")
		})
	}()

	var lwg sync.WaitGroup
	for _, l := range loads {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			spec := l.spec
			spec.StartAt = r.start
			final, buckets, err := r.attack(runCtx, l, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				loadErrs = append(loadErrs, fmt.Errorf("load in %s: %w", l.region, err))
				return
			}
			prev := r.cpu[l.region]
			prev.CPUSeconds += final.CPUSeconds
			prev.WallSeconds = max(prev.WallSeconds, final.WallSeconds)
			r.cpu[l.region] = prev
			if err := r.loadFigures(l.region, spec, final, buckets); err != nil {
				loadErrs = append(loadErrs, fmt.Errorf("load in %s: %w", l.region, err))
			}
		}()
	}
	lwg.Wait()
	// A run without load, driven by its system's own sources (a stream
	// topology's spouts), still lasts its duration.
	if rest := time.Until(r.start.Add(sc.Duration)); rest > 0 {
		select {
		case <-runCtx.Done():
		case <-time.After(rest):
		}
	}
	if errs := waitHistories(); len(errs) > 0 {
		mu.Lock()
		loadErrs = append(loadErrs, errs...)
		mu.Unlock()
	}
	// The load is over: end the run, which heals every fault still active.
	endRun()
	wg.Wait()
	r.sum.Faults = faults
	r.sum.EndedAt = time.Now()
	if ctx.Err() != nil {
		return fmt.Errorf("run aborted: %w", context.Cause(ctx))
	}
	for name, o := range obs {
		if err := o.report(ctx, r.sum); err != nil {
			loadErrs = append(loadErrs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(loadErrs) > 0 {
		return fmt.Errorf("%w: %w", ErrInfra, errors.Join(loadErrs...))
	}
	return nil
}

// attack runs one region's load and feeds its buckets to the recorder; it
// also returns a step load's buckets, which its capacity search judges. A
// panic in the stream decoder must not take the controller down without
// cleanup, so it is turned into an error here.
func (r *run) attack(ctx context.Context, l regionLoad, spec loadgen.AttackSpec) (final loadgen.Final, buckets []loadgen.Bucket, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic reading load results: %v", p)
		}
	}()
	var bad error
	final, err = r.e.driver.Attack(ctx, l.endpoint, spec, func(b loadgen.Bucket) {
		if r.raw != nil {
			r.raw.add(l.region, b)
		}
		if err := r.rec.AddBucket(l.region, b); err != nil && bad == nil {
			bad = err
		}
		if spec.Step != nil {
			buckets = append(buckets, b)
		}
	})
	if err == nil {
		err = bad
	}
	return final, buckets, err
}

// loadFigures adds what a finished attack's model measures to the summary:
// the response-time law of a closed load and the capacity of a step load
// (when the scenario has an SLO to judge it by). Callers hold the lock.
func (r *run) loadFigures(region string, spec loadgen.AttackSpec, final loadgen.Final, buckets []loadgen.Bucket) error {
	if spec.Users != nil {
		if r.sum.ClosedModel == nil {
			r.sum.ClosedModel = map[string]results.ClosedModel{}
		}
		r.sum.ClosedModel[region] = results.NewClosedModel(final.Users, final.Throughput, final.MeanResponse, final.MeanThink)
	}
	slo := r.sc.SLO
	if spec.Step == nil || slo == nil {
		return nil
	}
	c, err := loadgen.MaxSustainableRate(spec, spec.StartAt, buckets, loadgen.SLO{P99: slo.P99, MaxErrorRate: slo.ErrorRate})
	if err != nil {
		return err
	}
	if r.sum.Capacity == nil {
		r.sum.Capacity = map[string]results.Capacity{}
	}
	r.sum.Capacity[region] = results.Capacity{RateRPS: c.Rate, Steps: c.Steps, Broke: c.Broke,
		SLOP99MS: float64(slo.P99) / float64(time.Millisecond), SLOErrorRate: slo.ErrorRate}
	return nil
}
