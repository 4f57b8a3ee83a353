package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// History workloads are the other kind of load: instead of counting
// requests per second like an attack, each records every operation it did
// (loadgen.Operation) for a checker to judge afterwards: lost writes,
// linearizability, staleness, failover. They run in each region's loadgen
// container next to the attacks, started by the controller over HTTP like
// an attack, and stream their operations back as NDJSON. The db workloads
// (workloads/db) register themselves here; broker and stream workloads can
// do the same.

// HistoryPath is where the loadgen role runs history workloads.
const HistoryPath = "/history"

// MaxFinish bounds a history workload's final phase (e.g. reading every key
// back), which runs after Duration.
const MaxFinish = 2 * time.Minute

// maxHistoryClients bounds one history workload's concurrent clients.
const maxHistoryClients = 1000

// HistorySpec asks a loadgen to run one history workload.
type HistorySpec struct {
	Workload string // a name from HistoryWorkloads()
	Region   string // the loadgen's own region
	// Local are the system's endpoints ("http://host:port") in the
	// loadgen's region, which its clients use first; Remote are the other
	// regions' endpoints, nearest first, which a client moves on to when
	// its own fail.
	Local  []string
	Remote []string `json:",omitempty"`
	// Clients run concurrently, each waiting for its operation's answer
	// and then Think before the next.
	Clients int
	Think   time.Duration `json:",omitempty"`
	Timeout time.Duration // per operation; DefaultTimeout when zero
	// Duration is the main phase; a final phase (bounded by MaxFinish)
	// may follow.
	Duration time.Duration
	// StartAt is the wall-clock start, as in AttackSpec; zero means now.
	StartAt time.Time `json:",omitempty"`
	// Seed seeds the clients' choices: same seed, same choices.
	Seed int64
	// Prefix is unique per run and shared by every region's loadgen, so
	// that keys (or topics) start empty and regions can share them.
	Prefix string
	// Options are the workload's own settings from the scenario
	// (scenarios.HistoryLoad.Options).
	Options map[string]string `json:",omitempty"`
}

// HistoryWorkload is one started history workload.
type HistoryWorkload interface {
	// Run drives the clients until ctx ends (the main phase), recording
	// every operation in h.
	Run(ctx context.Context, h History)
	// Finish runs once after Run, e.g. reading everything back; ctx bounds it.
	Finish(ctx context.Context, h History)
}

// HistoryFactory prepares a history workload from its spec (already
// validated for the fields every workload shares).
type HistoryFactory func(spec HistorySpec) (HistoryWorkload, error)

var (
	historyMu        sync.RWMutex
	historyWorkloads = map[string]HistoryFactory{}
)

// RegisterHistory makes a history workload available by name. It panics on
// a duplicate or on a name an attack workload already has.
func RegisterHistory(name string, f HistoryFactory) {
	historyMu.Lock()
	defer historyMu.Unlock()
	if _, dup := historyWorkloads[name]; dup || workloads[name] != nil {
		panic("loadgen: workload registered twice: " + name)
	}
	historyWorkloads[name] = f
}

// HistoryWorkloads lists the registered history workloads, sorted.
func HistoryWorkloads() []string {
	historyMu.RLock()
	defer historyMu.RUnlock()
	out := make([]string, 0, len(historyWorkloads))
	for n := range historyWorkloads {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsHistory reports whether name is a history workload.
func IsHistory(name string) bool {
	historyMu.RLock()
	defer historyMu.RUnlock()
	return historyWorkloads[name] != nil
}

func historyFactory(name string) HistoryFactory {
	historyMu.RLock()
	defer historyMu.RUnlock()
	return historyWorkloads[name]
}

// Validate reports the first problem with s.
func (s HistorySpec) Validate() error {
	switch {
	case historyFactory(s.Workload) == nil:
		return fmt.Errorf("history workload %q: unknown (have %v)", s.Workload, HistoryWorkloads())
	case len(s.Local) == 0:
		return fmt.Errorf("history workload %s in %s: no local endpoint", s.Workload, s.Region)
	case s.Clients < 1 || s.Clients > maxHistoryClients:
		return fmt.Errorf("history workload %s: clients %d: must be in [1, %d]", s.Workload, s.Clients, maxHistoryClients)
	case s.Duration <= 0 || s.Duration > MaxDuration:
		return fmt.Errorf("history workload %s: duration %v: must be in (0, %v]", s.Workload, s.Duration, MaxDuration)
	case s.Timeout < 0 || s.Think < 0:
		return fmt.Errorf("history workload %s: timeout and think must not be negative", s.Workload)
	case s.Prefix == "":
		return fmt.Errorf("history workload %s: empty prefix", s.Workload)
	}
	for _, ep := range append(append([]string(nil), s.Local...), s.Remote...) {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("history workload %s: endpoint %q: want http://host:port", s.Workload, ep)
		}
	}
	return nil
}

// OpTimeout is the per-operation timeout, DefaultTimeout when unset.
func (s HistorySpec) OpTimeout() time.Duration {
	if s.Timeout == 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// HistoryFinal ends a history stream.
type HistoryFinal struct {
	Operations int
	Error      string `json:",omitempty"`
}

// HistoryMessage is one NDJSON line of a history stream.
type HistoryMessage struct {
	Op    *Operation    `json:",omitempty"`
	Final *HistoryFinal `json:",omitempty"`
}

// RunHistory runs spec: it waits for StartAt, runs the main phase for
// Duration, then the final phase, recording into h. It returns early when
// ctx ends.
func RunHistory(ctx context.Context, spec HistorySpec, h History) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	w, err := historyFactory(spec.Workload)(spec)
	if err != nil {
		return fmt.Errorf("history workload %s: %w", spec.Workload, err)
	}
	if !sleepUntilCtx(ctx, spec.StartAt) {
		return ctx.Err()
	}
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(spec.Duration))
	w.Run(runCtx, h)
	cancel()
	finCtx, cancel := context.WithTimeout(ctx, MaxFinish)
	defer cancel()
	w.Finish(finCtx, h)
	return ctx.Err()
}

func sleepUntilCtx(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if t.IsZero() || d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// HistoryHandler serves POST HistoryPath: it runs one history workload per
// request (several may run at once: a region runs each of the scenario's
// history workloads side by side) and streams its operations back. A run
// ends when its client disconnects or when stop ends.
func HistoryHandler(stop context.Context) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var spec HistorySpec
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			http.Error(w, "decode spec: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := spec.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		s := &streamHistory{rc: http.NewResponseController(w), bw: bufio.NewWriter(w)}
		s.enc = json.NewEncoder(s.bw)
		_ = s.rc.Flush()
		flushDone := make(chan struct{})
		go s.flushEvery(ctx, 100*time.Millisecond, flushDone)
		err := RunHistory(ctx, spec, s)
		cancel()
		<-flushDone
		final := HistoryFinal{Operations: s.count()}
		if err != nil {
			final.Error = err.Error()
		}
		s.send(HistoryMessage{Final: &final})
		s.flush()
	}
}

// streamHistory is the History of a remote run: operations go out as
// NDJSON, flushed a few times a second rather than per operation.
type streamHistory struct {
	mu  sync.Mutex
	rc  *http.ResponseController
	bw  *bufio.Writer
	enc *json.Encoder
	n   int
}

func (s *streamHistory) Record(op Operation) {
	s.send(HistoryMessage{Op: &op})
}

func (s *streamHistory) send(m HistoryMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A failed write means the controller went away; its request context
	// then ends the run, so the error needs no handling here.
	if s.enc.Encode(m) == nil && m.Op != nil {
		s.n++
	}
}

func (s *streamHistory) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *streamHistory) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bw.Flush() == nil {
		_ = s.rc.Flush()
	}
}

func (s *streamHistory) flushEvery(ctx context.Context, d time.Duration, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flush()
		}
	}
}

// History runs spec on the remote loadgen, calling onOp for each recorded
// operation, and returns its final message. Canceling ctx stops the run.
func (c *Client) History(ctx context.Context, spec HistorySpec, onOp func(Operation)) (HistoryFinal, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + HistoryPath
	resp, err := c.start(ctx, "history", u, spec)
	if err != nil {
		return HistoryFinal{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	for {
		var m HistoryMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return HistoryFinal{}, fmt.Errorf("history %s: read stream: %w", u, err)
		}
		switch {
		case m.Final != nil:
			if m.Final.Error != "" {
				return *m.Final, fmt.Errorf("history %s: remote: %s", u, m.Final.Error)
			}
			return *m.Final, nil
		case m.Op != nil:
			onOp(*m.Op)
		default:
			return HistoryFinal{}, fmt.Errorf("history %s: stream line with neither op nor final", u)
		}
	}
}
