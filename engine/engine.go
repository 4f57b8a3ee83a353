// Package engine plays one scenario end to end: it starts the topology
// through a runtime, drives load from every region, plays the fault
// schedule, evaluates the checks, writes the run folder and tears everything
// down — on success, on a failed check, on abort and on panic.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/scenarios"
)

// ErrInfra marks failures of the machinery rather than of the system under
// test: the runtime did not answer, a node never became healthy. The CLI
// maps it to exit code 3.
var ErrInfra = errors.New("infrastructure error")

// LoadDriver starts an attack on the loadgen reachable at endpoint
// ("127.0.0.1:port") and streams its results. The real one speaks HTTP to the
// loadgen role; engine tests substitute a driver that synthesises results.
type LoadDriver interface {
	Attack(ctx context.Context, endpoint string, spec loadgen.AttackSpec, onBucket func(loadgen.Bucket)) (loadgen.Final, error)
}

// HTTPDriver is the LoadDriver for real loadgen containers.
type HTTPDriver struct{}

// Attack implements LoadDriver.
func (HTTPDriver) Attack(ctx context.Context, endpoint string, spec loadgen.AttackSpec, onBucket func(loadgen.Bucket)) (loadgen.Final, error) {
	c := loadgen.Client{BaseURL: "http://" + endpoint}
	return c.Attack(ctx, spec, onBucket)
}

// Engine runs scenarios. Build one with New.
type Engine struct {
	rt        runtime.Runtime
	driver    LoadDriver
	outDir    string
	keep      bool
	log       io.Writer
	runID     string
	progress  time.Duration
	live      bool
	healthy   time.Duration
	startLead time.Duration
}

// Option configures an Engine.
type Option func(*Engine)

// WithDriver replaces the HTTP load driver.
func WithDriver(d LoadDriver) Option { return func(e *Engine) { e.driver = d } }

// WithOutDir sets where run folders go (default results/runs).
func WithOutDir(dir string) Option { return func(e *Engine) { e.outDir = dir } }

// WithKeep leaves the topology running after the run.
func WithKeep(keep bool) Option { return func(e *Engine) { e.keep = keep } }

// WithLog sets where progress lines go (default io.Discard).
func WithLog(w io.Writer) Option { return func(e *Engine) { e.log = w } }

// WithRunID fixes the run id (default: time plus random suffix).
func WithRunID(id string) Option { return func(e *Engine) { e.runID = id } }

// WithProgressEvery sets how often a progress line is printed (default 5 s).
func WithProgressEvery(d time.Duration) Option { return func(e *Engine) { e.progress = d } }

// WithLiveProgress redraws the progress in place (for a terminal) instead
// of printing a line every few seconds.
func WithLiveProgress(live bool) Option { return func(e *Engine) { e.live = live } }

// WithHealthTimeout bounds how long nodes may take to become healthy (default 60 s).
func WithHealthTimeout(d time.Duration) Option { return func(e *Engine) { e.healthy = d } }

// New makes an engine on rt.
func New(rt runtime.Runtime, opts ...Option) *Engine {
	e := &Engine{
		rt: rt, driver: HTTPDriver{}, outDir: filepath.Join("results", "runs"), log: io.Discard,
		progress: 5 * time.Second, healthy: 60 * time.Second, startLead: 500 * time.Millisecond,
	}
	for _, o := range opts {
		o(e)
	}
	if e.runID == "" {
		e.runID = NewRunID()
	}
	return e
}

// NewRunID makes a sortable, unique run id like 20261127-051500-3fa2.
func NewRunID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// RunID is the id of the run this engine makes.
func (e *Engine) RunID() string { return e.runID }

// RunDir is the folder the run's results go to.
func (e *Engine) RunDir() string { return filepath.Join(e.outDir, e.runID) }

// OwnerLabels mark resources with the controller that made them, so a later
// run can tell a dead controller's leftovers from a live run's.
func OwnerLabels() runtime.Labels {
	return runtime.Labels{runtime.LabelOwnerPID: strconv.Itoa(os.Getpid())}
}

// Run plays sc. It returns the summary (also written to the run folder) and
// an error only when the run could not be carried out; a failed check is a
// summary with verdict "fail" and no error. Every resource the run made is
// removed before Run returns, unless the engine keeps them.
func (e *Engine) Run(ctx context.Context, sc *scenarios.Scenario) (sum *results.Summary, err error) {
	r := &run{e: e, sc: sc, con: &console{w: e.log, live: e.live}, sum: &results.Summary{
		RunID: e.runID, Scenario: sc.Name, Seed: sc.Seed,
		Checks: []results.Check{}, Faults: []results.Fault{}, Recovery: []results.Recovery{},
		Regions: map[string]results.Region{},
	}}
	if err := os.MkdirAll(e.RunDir(), 0o755); err != nil {
		return nil, fmt.Errorf("%w: make run folder: %v", ErrInfra, err)
	}
	events, err := os.Create(filepath.Join(e.RunDir(), results.EventsFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	r.events = json.NewEncoder(events)
	defer events.Close()
	if err := writeScenario(e.RunDir(), sc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	if r.raw, err = openRawLog(e.RunDir()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}

	// Whatever happens below — a failed step, an abort, a panic — the
	// topology goes away and whatever was measured gets written.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic during run %s: %v", e.runID, p)
		}
		if !e.keep {
			r.teardown(ctx)
		}
		if cerr := r.raw.close(); cerr != nil {
			r.logf("write %s: %v", RawLoadFile, cerr)
		}
		r.finish(err)
		sum = r.sum
	}()
	return r.sum, r.play(ctx)
}

type run struct {
	e      *Engine
	sc     *scenarios.Scenario
	sum    *results.Summary
	dep    *deploy.Deployment
	rec    *results.Recorder
	start  time.Time
	evMu   sync.Mutex
	events *json.Encoder
	cpu    map[string]loadgen.Final
	con    *console
	raw    *rawLog
	active activeFaults
	hist   *histories // the history workloads' streams (engine/history.go)
}

func (r *run) event(kind string, fields map[string]any) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	ev := map[string]any{"event": kind, "time": time.Now().UTC().Format(time.RFC3339Nano)}
	if !r.start.IsZero() {
		ev["t"] = time.Since(r.start).Seconds()
	}
	for k, v := range fields {
		ev[k] = v
	}
	_ = r.events.Encode(ev)
}

func (r *run) logf(format string, a ...any) { r.con.logf(format, a...) }

func (r *run) teardown(ctx context.Context) {
	// Detached from ctx: an interrupted run must still clean up.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := r.e.rt.RemoveByLabel(tctx, runtime.Labels{runtime.LabelRun: r.e.runID}); err != nil {
		r.logf("teardown %s: %v (remove leftovers with `faultline down --all`)", r.e.runID, err)
		r.event("teardown", map[string]any{"error": err.Error()})
		return
	}
	r.event("teardown", nil)
}
