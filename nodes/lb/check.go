package lb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Ready reports an error until a round of checks has put a backend in
// rotation (or found none to check), so the LB does not answer 502 for
// backends it has not looked at yet, or that were still starting when it
// first looked (they need Rise passing checks). Once ready it stays so:
// losing its backends later is the system's failure to measure, not a
// start that is not over.
func (l *LB) Ready() error {
	if !l.ready.Load() {
		return errors.New("no backend in rotation yet")
	}
	return nil
}

// Check health-checks every backend each interval, and at once when one
// is added, until ctx ends.
func (l *LB) Check(ctx context.Context) {
	t := time.NewTicker(l.cfg.HealthInterval)
	defer t.Stop()
	for {
		l.checkRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
	}
}

// checkRound checks every backend in rotation order once, concurrently.
func (l *LB) checkRound(ctx context.Context) {
	l.mu.Lock()
	bs := slices.Clone(l.backends)
	l.mu.Unlock()
	idleSince := time.Now().Add(-idleConnTimeout)
	for _, b := range bs {
		b.pool.expire(idleSince)
	}
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() { l.checkOnce(ctx, b) })
	}
	wg.Wait()
	if ctx.Err() == nil && (len(bs) == 0 || len(*l.rotation.Load()) > 0) {
		l.ready.Store(true)
	}
}

func (l *LB) checkOnce(ctx context.Context, b *backend) {
	err := l.probe(ctx, b.addr)
	if ctx.Err() != nil {
		return // shutting down; the failure says nothing about the backend
	}
	b.mu.Lock()
	before := b.state()
	b.check.observe(err == nil)
	b.checked = true
	b.checks++
	b.lastCheck = time.Now()
	b.lastError = ""
	if err != nil {
		b.lastError = err.Error()
	}
	if err == nil && !b.ejectedUntil.IsZero() && !l.now().Before(b.ejectedUntil) {
		b.ejectedUntil = time.Time{}
		b.consecErrs.Store(0)
	}
	changed := b.state() != before
	b.mu.Unlock()
	b.m.checks.Inc()
	if changed {
		l.rebuild()
	}
}

func (l *LB) probe(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := l.checker.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// checkState is a backend's up/down decision from consecutive check results.
type checkState struct {
	fall, rise int
	up         bool
	seen       bool
	fails, oks int
}

// observe records one check and reports whether up changed. The first check
// decides the state directly: a fresh LB should neither send to a dead
// backend for fall intervals nor wait rise intervals for a live one.
func (s *checkState) observe(ok bool) bool {
	was := s.up
	if ok {
		s.oks, s.fails = s.oks+1, 0
	} else {
		s.oks, s.fails = 0, s.fails+1
	}
	switch {
	case !s.seen:
		s.up = ok
	case s.up && s.fails >= s.fall:
		s.up = false
	case !s.up && s.oks >= s.rise:
		s.up = true
	}
	s.seen = true
	return s.up != was
}
