package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
)

// History workloads (scenario `history:` entries) run in each region's
// loadgen beside the attacks; each streams back every operation it did.
// The engine keeps them, writes them to raw/, and hands them to the
// observer of the capability they exercise (engine/db.go for db-*), which
// runs the checkers. A history workload's name starts with the role it
// drives ("db-register" drives the db nodes).

// clientStride separates the client ids of different streams once their
// histories are merged: stream k's client c becomes k*clientStride + c.
// A workload renumbers a client after an indefinite operation by adding
// its client count, so this leaves room for a million such renumberings.
const clientStride = 1_000_000

// HistoryStream is one region's run of one history workload.
type HistoryStream struct {
	Workload, Region string
	Ops              []loadgen.Operation
	Final            loadgen.HistoryFinal
	Err              error
}

// histories are a run's history streams.
type histories struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	streams []*HistoryStream
}

// of returns the finished streams of workloads whose name starts with
// prefix ("db-"), after wait.
func (h *histories) of(prefix string) []*HistoryStream {
	if h == nil {
		return nil
	}
	var out []*HistoryStream
	for _, s := range h.streams {
		if strings.HasPrefix(s.Workload, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// historySpecs plans every region's history workloads: each region's
// loadgen drives its own region's nodes of the workload's role first, then
// the other regions' nearest first.
func (r *run) historySpecs(ctx context.Context) ([]historyRun, error) {
	var out []historyRun
	for _, hl := range r.sc.History {
		role, _, _ := strings.Cut(hl.Workload, "-")
		for _, region := range hl.Regions {
			gens := r.dep.NodesOf("loadgen", region)
			if len(gens) == 0 {
				return nil, fmt.Errorf("history %s on line %d: region %s has no loadgen node", hl.Workload, hl.Line, region)
			}
			info, err := r.e.rt.Inspect(ctx, deploy.ContainerName(r.e.runID, gens[0].Name))
			if err != nil {
				return nil, fmt.Errorf("%w: inspect %s: %v", ErrInfra, gens[0].Name, err)
			}
			endpoint, err := deploy.PortOf(info, deploy.Port)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInfra, err)
			}
			local, remote := r.endpointsFrom(region, role)
			if len(local) == 0 && len(remote) == 0 {
				return nil, fmt.Errorf("history %s on line %d: the topology has no %s nodes", hl.Workload, hl.Line, role)
			}
			if len(local) == 0 { // no node here: the nearest region's are local
				local, remote = remote[:1], remote[1:]
			}
			spec := loadgen.HistorySpec{
				Workload: hl.Workload, Region: region, Local: local, Remote: remote,
				Clients: hl.Clients, Think: hl.Think, Timeout: hl.Timeout, Duration: r.sc.Duration,
				Seed: userSeed(r.sc.Seed, hl.Workload+"/"+region), Prefix: r.e.runID + "/",
				Options: hl.Options,
			}
			if err := spec.Validate(); err != nil {
				return nil, fmt.Errorf("history on line %d in region %s: %w", hl.Line, region, err)
			}
			out = append(out, historyRun{endpoint: endpoint, spec: spec})
		}
	}
	return out, nil
}

type historyRun struct {
	endpoint string
	spec     loadgen.HistorySpec
}

// endpointsFrom lists role's HTTP endpoints in region, and in the other
// regions ordered by RTT from it (ties by name).
func (r *run) endpointsFrom(region, role string) (local, remote []string) {
	top := r.sc.Topology
	others := slices.DeleteFunc(slices.Clone(r.dep.Regions()), func(s string) bool { return s == region })
	slices.SortStableFunc(others, func(a, b string) int {
		if d := top.RTT(region, a) - top.RTT(region, b); d != 0 {
			return int(d)
		}
		return strings.Compare(a, b)
	})
	url := func(n string) string { return "http://" + n + ":" + fmt.Sprint(deploy.Port) }
	for _, n := range r.dep.NodesOf(role, region) {
		local = append(local, url(n.IP.String()))
	}
	for _, o := range others {
		for _, n := range r.dep.NodesOf(role, o) {
			remote = append(remote, url(n.IP.String()))
		}
	}
	return local, remote
}

// startHistories starts every history workload of the scenario, to begin
// at the run's start; wait returns once all have finished (main and final
// phase) or ctx ended.
func (r *run) startHistories(ctx context.Context) (wait func() []error, err error) {
	runs, err := r.historySpecs(ctx)
	if err != nil {
		return nil, err
	}
	h := &histories{}
	r.hist = h
	for k, hr := range runs {
		s := &HistoryStream{Workload: hr.spec.Workload, Region: hr.spec.Region}
		h.streams = append(h.streams, s)
		hr.spec.StartAt = r.start
		offset := (k + 1) * clientStride
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			c := loadgen.Client{BaseURL: "http://" + hr.endpoint}
			s.Final, s.Err = c.History(ctx, hr.spec, func(op loadgen.Operation) {
				op.Client += offset
				h.mu.Lock()
				s.Ops = append(s.Ops, op)
				h.mu.Unlock()
			})
		}()
	}
	r.logf("run %s: %d history workload stream(s) started", r.e.runID, len(runs))
	return func() []error {
		h.wg.Wait()
		var errs []error
		for _, s := range h.streams {
			if s.Err != nil {
				errs = append(errs, fmt.Errorf("history %s in %s: %w", s.Workload, s.Region, s.Err))
			}
			if err := writeHistory(r.e.RunDir(), s); err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	}, nil
}

// HistoryFile is where a stream's operations are kept in the run folder,
// one loadgen.Operation per line.
func HistoryFile(workload, region string) string {
	return filepath.Join("raw", "history-"+workload+"-"+region+".jsonl")
}

func writeHistory(dir string, s *HistoryStream) error {
	path := filepath.Join(dir, HistoryFile(s.Workload, s.Region))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var mh loadgen.MemHistory
	for _, op := range s.Ops {
		mh.Record(op)
	}
	return errors.Join(mh.WriteJSONL(f), f.Close())
}

// A readiness check waits, after the topology is up and routed and before
// the run's clock starts, until a capability is ready to be measured (a db
// cluster has formed: its nodes can only find each other once the
// controller has routed the regions together). It returns nil at once when
// the run has nothing for it.
type readinessCheck func(ctx context.Context, r *run) error

var readinessChecks = map[string]readinessCheck{}

func registerReadiness(name string, c readinessCheck) {
	if _, dup := readinessChecks[name]; dup {
		panic("engine: readiness check registered twice: " + name)
	}
	readinessChecks[name] = c
}

// waitReady runs every readiness check.
func (r *run) waitReady(ctx context.Context) error {
	for name, c := range readinessChecks {
		if err := c(ctx, r); err != nil {
			return fmt.Errorf("%w: %s not ready: %v", ErrInfra, name, err)
		}
	}
	return nil
}

// injectsDone reads, from the run's events.jsonl, when each injection had
// been carried out (seconds since the start), by "kind targets".
func (r *run) injectsDone() map[string][]float64 {
	out := map[string][]float64{}
	f, err := os.Open(filepath.Join(r.e.RunDir(), results.EventsFile))
	if err != nil {
		return out
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var ev struct {
			Event, Action, Kind, Error string
			Targets                    []string
			T                          float64
		}
		if dec.Decode(&ev) != nil {
			return out
		}
		if ev.Event == "fault" && ev.Action == "inject" && ev.Error == "" {
			key := ev.Kind + " " + strings.Join(ev.Targets, ",")
			out[key] = append(out[key], ev.T)
		}
	}
}

// recordOps adds the main-phase operations of a history stream that count
// to its region's per-second figures (requests, errors by errKind,
// latency), and as buckets to the raw load log, so that the report's plots
// and recovery times show what the system's clients felt through each
// fault. Operations the end of the main phase cut short did not fail.
func (r *run) recordOps(s *HistoryStream, what string, counts func(loadgen.Operation) bool, errKind func(loadgen.Operation) string) {
	if r.rec == nil {
		return
	}
	type sec struct {
		b    loadgen.Bucket
		hist *hdrhistogram.Histogram
	}
	secs := map[int64]*sec{}
	end := r.start.Add(r.sc.Duration)
	for _, op := range s.Ops {
		if !counts(op) || (op.Error != "" && !op.Return.Before(end)) {
			continue
		}
		unix := op.Call.Unix()
		x := secs[unix]
		if x == nil {
			x = &sec{b: loadgen.Bucket{Second: unix, ErrorsByKind: map[string]int64{}}, hist: loadgen.NewHistogram()}
			secs[unix] = x
		}
		x.b.Requests++
		if op.Error != "" {
			x.b.Errors++
			x.b.ErrorsByKind[errKind(op)]++
		}
		_ = x.hist.RecordValue(max(op.Return.Sub(op.Call).Microseconds(), 1))
	}
	for _, x := range secs {
		x.b.Latency = x.hist.Export()
		if r.raw != nil {
			r.raw.add(s.Region, x.b)
		}
		if err := r.rec.AddBucket(s.Region, x.b); err != nil {
			r.logf("%s %s in %s: %v", what, s.Workload, s.Region, err)
		}
	}
}
