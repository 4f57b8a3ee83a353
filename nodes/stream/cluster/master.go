// Package cluster runs a topology over several workers: a master (Storm's
// Nimbus) assigns tasks, watches heartbeats and moves the tasks of a dead
// worker; workers heartbeat, run what they are assigned and keep their
// checkpoints at the master.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
)

// AssignmentStore keeps the master's decisions. MemAssignmentStore keeps
// them in memory; a replicated store (the db cluster or a raft group) is
// meant to plug in here so that a new master continues where the old left.
type AssignmentStore interface {
	// Load returns the last saved assignment, Version 0 when there is none.
	Load(ctx context.Context) (engine.Assignment, error)
	Save(ctx context.Context, a engine.Assignment) error
}

// MemAssignmentStore is an AssignmentStore in memory.
type MemAssignmentStore struct {
	mu sync.Mutex
	a  engine.Assignment
}

// Load returns the saved assignment.
func (s *MemAssignmentStore) Load(context.Context) (engine.Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a, nil
}

// Save replaces the saved assignment.
func (s *MemAssignmentStore) Save(_ context.Context, a engine.Assignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a = a
	return nil
}

// Heartbeat is what a worker reports.
type Heartbeat struct {
	ID   string `json:"id"`
	Addr string `json:"addr"` // where it accepts tuples
}

// Master assigns tasks to workers.
type Master struct {
	topo       *topo.Topology
	store      AssignmentStore
	states     engine.StateStore
	ackers     int
	minWorkers int
	timeout    time.Duration

	mu      sync.Mutex
	workers map[string]seen
	cur     engine.Assignment
	moves   []Move
	lastErr error
}

type seen struct {
	addr string
	at   time.Time
}

// Move records a reassignment after a worker died.
type Move struct {
	At    time.Time `json:"at"`
	From  string    `json:"from"`
	Tasks int       `json:"tasks"`
}

// MasterOption configures a Master.
type MasterOption func(*Master)

// WithAckers sets the number of acker tasks (default 2).
func WithAckers(n int) MasterOption { return func(m *Master) { m.ackers = n } }

// WithMinWorkers makes the master wait for n workers before the first
// assignment (default 1).
func WithMinWorkers(n int) MasterOption { return func(m *Master) { m.minWorkers = n } }

// WithHeartbeatTimeout sets how long a silent worker counts as alive
// (default 3 s).
func WithHeartbeatTimeout(d time.Duration) MasterOption { return func(m *Master) { m.timeout = d } }

// NewMaster returns a master for t. states holds the workers' checkpoints.
func NewMaster(t *topo.Topology, store AssignmentStore, states engine.StateStore, opts ...MasterOption) *Master {
	m := &Master{topo: t, store: store, states: states, ackers: 2, minWorkers: 1, timeout: 3 * time.Second, workers: map[string]seen{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Run loads the stored assignment and reschedules until ctx ends. A store
// that cannot be reached (a replicated one electing a leader) is retried:
// workers keep running their last assignment meanwhile.
func (m *Master) Run(ctx context.Context) error {
	tick := time.NewTicker(m.timeout / 4)
	defer tick.Stop()
	tookOver := false
	for {
		a, err := m.store.Load(ctx)
		if err == nil {
			m.mu.Lock()
			m.cur = a
			m.mu.Unlock()
			tookOver = a.Version > 0
			break
		}
		m.setErr(fmt.Errorf("load assignment: %w", err))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	// A master that took over a stored assignment first gives every worker
	// a heartbeat timeout to check in, or it would move the tasks of
	// workers it simply had not heard from yet.
	started := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if tookOver && now.Sub(started) < m.timeout {
				continue
			}
			m.setErr(m.reschedule(ctx, now))
		}
	}
}

// setErr keeps the last store error for /assignment's readers; nil clears it.
func (m *Master) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
}

// Err is the last error saving or loading through the store, nil when the
// last attempt worked.
func (m *Master) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Assignment returns the current assignment.
func (m *Master) Assignment() engine.Assignment {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// Moves lists the reassignments so far.
func (m *Master) Moves() []Move {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.moves)
}

func (m *Master) heartbeat(h Heartbeat, now time.Time) engine.Assignment {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.workers[h.ID] = seen{addr: h.Addr, at: now}
	return m.cur
}

// reschedule makes the first assignment once enough workers are up, and
// afterwards moves the tasks of workers that stopped heartbeating to the
// least loaded live ones. Live workers keep their tasks: moving a task
// costs a restore and replays.
func (m *Master) reschedule(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var live []string
	for id, s := range m.workers {
		if now.Sub(s.at) < m.timeout {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	if len(live) == 0 || (m.cur.Version == 0 && len(live) < m.minWorkers) {
		return nil
	}
	next := engine.Assignment{Version: m.cur.Version + 1, Tasks: map[int32]string{}, Addrs: map[string]string{}}
	load := map[string]int{}
	for _, id := range live {
		load[id] = 0
	}
	changed := m.cur.Version == 0
	orphans := map[string]int{}
	total := int32(m.topo.NumTasks() + m.ackers)
	var todo []int32
	for id := int32(1); id <= total; id++ {
		w, ok := m.cur.Tasks[id]
		if _, alive := load[w]; ok && alive {
			next.Tasks[id] = w
			load[w]++
			continue
		}
		if ok {
			orphans[w]++
		}
		todo = append(todo, id)
	}
	for _, id := range todo {
		best := live[0]
		for _, w := range live {
			if load[w] < load[best] {
				best = w
			}
		}
		next.Tasks[id] = best
		load[best]++
		changed = true
	}
	// Only owners need an address; a restarted owner may come back on a
	// new one.
	for _, w := range next.Tasks {
		next.Addrs[w] = m.workers[w].addr
	}
	changed = changed || len(next.Addrs) != len(m.cur.Addrs)
	for id, addr := range next.Addrs {
		changed = changed || m.cur.Addrs[id] != addr
	}
	if !changed {
		return nil
	}
	if err := m.store.Save(ctx, next); err != nil {
		return fmt.Errorf("save assignment %d: %w", next.Version, err)
	}
	for w, n := range orphans {
		m.moves = append(m.moves, Move{At: now, From: w, Tasks: n})
	}
	m.cur = next
	return nil
}

// Handler serves the workers: POST /heartbeat answers with the current
// assignment; GET and PUT /state/{task}[?worker=id] keep checkpoints.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var h Heartbeat
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&h); err != nil || h.ID == "" {
			http.Error(w, "bad heartbeat", http.StatusBadRequest)
			return
		}
		writeJSON(w, m.heartbeat(h, time.Now()))
	})
	mux.HandleFunc("GET /assignment", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, m.Assignment())
	})
	mux.HandleFunc("GET /state/{task}", func(w http.ResponseWriter, r *http.Request) {
		task, err := strconv.ParseInt(r.PathValue("task"), 10, 32)
		if err != nil {
			http.Error(w, "bad task", http.StatusBadRequest)
			return
		}
		data, err := m.states.Load(r.Context(), int32(task))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("PUT /state/{task}", func(w http.ResponseWriter, r *http.Request) {
		task, err := strconv.ParseInt(r.PathValue("task"), 10, 32)
		if err != nil {
			http.Error(w, "bad task", http.StatusBadRequest)
			return
		}
		// Fencing: a worker the master gave up on may still be running the
		// task; its checkpoints must not overwrite the new owner's.
		if wid := r.URL.Query().Get("worker"); wid != "" && m.Assignment().Tasks[int32(task)] != wid {
			http.Error(w, "task not assigned to "+wid, http.StatusConflict)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := m.states.Save(r.Context(), int32(task), data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
