package lb

import (
	"context"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// States a backend reports in GET /lb/backends and lb_backend_state.
const (
	StateUnchecked = "unchecked" // added, not yet checked: gets no requests
	StateUp        = "up"
	StateDown      = "down"     // failed fall active checks in a row
	StateEjected   = "ejected"  // EjectAfter proxy errors in a row; back after the cool-down and a passing check
	StateDraining  = "draining" // removed: no new requests, in-flight ones finish
)

var states = []string{StateUnchecked, StateUp, StateDown, StateEjected, StateDraining}

type backend struct {
	addr       string
	proxy      *httputil.ReverseProxy // for requests with a body and upgrades
	pool       *pool                  // connections for the others (direct.go)
	m          backendMetrics
	inflight   atomic.Int64
	consecErrs atomic.Int64
	cut        context.Context // cancelled when a drain times out
	cutOff     context.CancelFunc

	mu           sync.Mutex
	check        checkState
	checked      bool
	checks       int // active checks done, for status and tests
	lastCheck    time.Time
	lastError    string
	ejectedUntil time.Time // zero while not ejected
	draining     bool
	drainTimer   *time.Timer
	finished     bool
}

// state needs b.mu.
func (b *backend) state() string {
	switch {
	case b.draining:
		return StateDraining
	case !b.checked:
		return StateUnchecked
	case !b.ejectedUntil.IsZero():
		return StateEjected
	case b.check.up:
		return StateUp
	}
	return StateDown
}

func (b *backend) begin() {
	b.inflight.Add(1)
	b.m.inflight.Inc()
	b.m.requests.Inc()
}

func (l *LB) end(b *backend) {
	b.m.inflight.Dec()
	if b.inflight.Add(-1) != 0 {
		return
	}
	b.mu.Lock()
	draining := b.draining
	b.mu.Unlock()
	if draining {
		l.finish(b)
	}
}

// add puts addr in the rotation's candidates (it joins after a passing
// check) and reports whether it was new. A draining backend of the same
// address keeps draining beside the new one.
func (l *LB) add(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.find(addr) >= 0 {
		return false
	}
	b := &backend{addr: addr, check: checkState{fall: l.cfg.Fall, rise: l.cfg.Rise}, m: l.m.backend(addr)}
	b.cut, b.cutOff = context.WithCancel(context.Background())
	b.proxy = l.newProxy(b)
	b.pool = newPool()
	l.backends = append(l.backends, b)
	l.m.setState(addr, StateUnchecked)
	select {
	case l.kick <- struct{}{}:
	default: // a round is already asked for
	}
	return true
}

// find needs l.mu.
func (l *LB) find(addr string) int {
	return slices.IndexFunc(l.backends, func(b *backend) bool { return b.addr == addr })
}

// remove starts draining addr and reports whether it was a backend.
func (l *LB) remove(addr string) bool {
	l.mu.Lock()
	i := l.find(addr)
	if i < 0 {
		l.mu.Unlock()
		return false
	}
	b := l.backends[i]
	l.backends = slices.Delete(l.backends, i, i+1)
	l.draining = append(l.draining, b)
	b.mu.Lock()
	b.draining = true
	b.drainTimer = time.AfterFunc(l.cfg.DrainTimeout, func() {
		b.cutOff()
		b.pool.cut()
		l.finish(b)
	})
	b.mu.Unlock()
	l.rebuildLocked()
	l.mu.Unlock()
	if b.inflight.Load() == 0 {
		l.finish(b)
	}
	return true
}

// setBackends makes addrs the full list: new ones are added, missing
// ones drained.
func (l *LB) setBackends(addrs []string) (added, removed []string) {
	l.mu.Lock()
	var gone []string
	for _, b := range l.backends {
		if !slices.Contains(addrs, b.addr) {
			gone = append(gone, b.addr)
		}
	}
	l.mu.Unlock()
	for _, a := range gone {
		if l.remove(a) {
			removed = append(removed, a)
		}
	}
	for _, a := range addrs {
		if l.add(a) {
			added = append(added, a)
		}
	}
	return added, removed
}

// finish ends a drain: b leaves the status list for good. Late requests
// that picked b from an old rotation still run to completion.
func (l *LB) finish(b *backend) {
	b.mu.Lock()
	if b.finished {
		b.mu.Unlock()
		return
	}
	b.finished = true
	b.drainTimer.Stop()
	b.mu.Unlock()
	b.pool.shut()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining = slices.DeleteFunc(l.draining, func(d *backend) bool { return d == b })
	if l.find(b.addr) < 0 {
		l.m.forget(b.addr)
	}
}

func (l *LB) rebuild() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rebuildLocked()
}

// rebuildLocked recomputes the rotation and every state gauge; needs l.mu.
func (l *LB) rebuildLocked() {
	hs := make([]*backend, 0, len(l.backends))
	for _, b := range l.backends {
		b.mu.Lock()
		st := b.state()
		b.mu.Unlock()
		if st == StateUp {
			hs = append(hs, b)
		}
		l.m.setState(b.addr, st)
	}
	for _, b := range l.draining {
		if l.find(b.addr) < 0 {
			l.m.setState(b.addr, StateDraining)
		}
	}
	l.rotation.Store(&hs)
}
