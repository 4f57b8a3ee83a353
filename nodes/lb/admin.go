package lb

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// maxAdminBody bounds a PUT /lb/backends body.
const maxAdminBody = 1 << 20

// BackendStatus is one entry of GET /lb/backends.
type BackendStatus struct {
	Addr      string    `json:"addr"`
	State     string    `json:"state"`
	Healthy   bool      `json:"healthy"` // in rotation: takes new requests
	InFlight  int64     `json:"in_flight"`
	Checks    int       `json:"checks"`
	Fails     int       `json:"consecutive_fails"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Status reports every backend, in rotation order, then the draining ones.
func (l *LB) Status() []BackendStatus {
	l.mu.Lock()
	bs := append(append([]*backend(nil), l.backends...), l.draining...)
	l.mu.Unlock()
	out := make([]BackendStatus, 0, len(bs))
	for _, b := range bs {
		b.mu.Lock()
		st := b.state()
		out = append(out, BackendStatus{Addr: b.addr, State: st, Healthy: st == StateUp,
			InFlight: b.inflight.Load(), Checks: b.checks, Fails: b.check.fails,
			LastCheck: b.lastCheck, LastError: b.lastError})
		b.mu.Unlock()
	}
	return out
}

// Transitions is the body of GET /lb/transitions: every change of a
// backend's state (the latest 1,000), and the checks that drive them, so a
// reader can tell how long the lb took to take a dead backend out.
type Transitions struct {
	HealthInterval time.Duration `json:"health_interval_ns"`
	Fall           int           `json:"fall"`
	EjectAfter     int           `json:"eject_after"`
	Transitions    []Transition  `json:"transitions"`
}

// routes adds the admin API:
//
//	GET    /lb/backends        status of every backend
//	GET    /lb/transitions     every backend state change, timed
//	PUT    /lb/backends        ["host:port", ...] becomes the full list
//	POST   /lb/backends/{addr} add one
//	DELETE /lb/backends/{addr} drain one
func (l *LB) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /lb/backends", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, l.Status())
	})
	mux.HandleFunc("GET /lb/transitions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Transitions{HealthInterval: l.cfg.HealthInterval, Fall: l.cfg.Fall,
			EjectAfter: l.cfg.EjectAfter, Transitions: l.m.Transitions()})
	})
	mux.HandleFunc("PUT /lb/backends", func(w http.ResponseWriter, r *http.Request) {
		var addrs []string
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
		if err := dec.Decode(&addrs); err != nil {
			http.Error(w, fmt.Sprintf("want a JSON list of host:port: %v", err), http.StatusBadRequest)
			return
		}
		for _, a := range addrs {
			if err := validAddr(a); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		added, removed := l.setBackends(addrs)
		writeJSON(w, http.StatusOK, map[string][]string{"added": added, "draining": removed})
	})
	mux.HandleFunc("POST /lb/backends/{addr}", func(w http.ResponseWriter, r *http.Request) {
		a := r.PathValue("addr")
		if err := validAddr(a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !l.add(a) {
			fmt.Fprintf(w, "%s already a backend\n", a)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s added\n", a)
	})
	mux.HandleFunc("DELETE /lb/backends/{addr}", func(w http.ResponseWriter, r *http.Request) {
		a := r.PathValue("addr")
		if !l.remove(a) {
			http.Error(w, a+" is not a backend", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "%s draining\n", a)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
