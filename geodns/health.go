package geodns

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Prober checks one region's entry. The real one speaks HTTP; tests and
// other deployments (TCP connect, a control-plane feed) plug in their own.
type Prober interface {
	Probe(ctx context.Context, r Region) error
}

// HTTPProber GETs http://<LB>/healthz and wants a 2xx.
type HTTPProber struct {
	Client *http.Client
}

// NewHTTPProber returns a prober whose client ignores proxy settings from
// the environment: a health check must reach the LB itself.
func NewHTTPProber() HTTPProber {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
	}
	return HTTPProber{Client: &http.Client{Transport: tr}}
}

// Probe implements Prober.
func (p HTTPProber) Probe(ctx context.Context, r Region) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.LB+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", r.Name, err)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused for the next probe.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("probe %s: status %s", r.Name, resp.Status)
	}
	return nil
}

// Event is one health change of a region.
type Event struct {
	Time    time.Time `json:"time"`
	Region  string    `json:"region"`
	Healthy bool      `json:"healthy"`
	Reason  string    `json:"reason"`
	// LastOK, on a down event, is when the last check round that found the
	// region healthy began: it was alive then, so a failover's clock can
	// start there rather than at whatever began its death.
	LastOK time.Time `json:"last_ok,omitzero"`
}

// maxEvents bounds the in-memory event log; a flapping region must not grow
// memory without limit over a long run.
const maxEvents = 10000

type regionHealth struct {
	healthy    bool
	fails, oks int // consecutive
	since      time.Time
	lastErr    string
	lastOK     time.Time // the start of the last round whose probe succeeded
}

// RunHealthChecks probes every region each check interval until ctx ends.
func (s *Server) RunHealthChecks(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Check.Interval)
	defer t.Stop()
	for {
		s.CheckNow(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CheckNow probes every region once, concurrently, and applies the results:
// after Fall consecutive failures a region goes down, after Rise consecutive
// successes it comes back, and the answers are swapped on any change.
func (s *Server) CheckNow(ctx context.Context) {
	began := s.now()
	errs := make([]error, len(s.cfg.Regions))
	var wg sync.WaitGroup
	for i, r := range s.cfg.Regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, s.cfg.Check.Timeout)
			defer cancel()
			errs[i] = s.prober.Probe(pctx, r)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Shutting down: a probe cut short says nothing about the region.
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for i, err := range errs {
		h := &s.health[i]
		if err != nil {
			h.fails, h.oks, h.lastErr = h.fails+1, 0, err.Error()
		} else {
			h.fails, h.oks, h.lastOK = 0, h.oks+1, began
		}
		var reason string
		switch {
		case h.healthy && h.fails >= s.cfg.Check.Fall:
			reason = fmt.Sprintf("%d consecutive failures, last: %s", h.fails, h.lastErr)
		case !h.healthy && h.oks >= s.cfg.Check.Rise:
			reason = fmt.Sprintf("%d consecutive successes", h.oks)
		default:
			continue
		}
		h.healthy, h.since = !h.healthy, s.now()
		ev := Event{Time: h.since, Region: s.cfg.Regions[i].Name, Healthy: h.healthy, Reason: reason}
		if !h.healthy {
			ev.LastOK = h.lastOK
		}
		s.recordLocked(ev)
		changed = true
	}
	if changed {
		s.publishLocked()
	}
}

func (s *Server) recordLocked(e Event) {
	if len(s.events) == maxEvents {
		s.events = append(s.events[:0], s.events[1:]...)
	}
	s.events = append(s.events, e)
	s.metrics.healthChanges.WithLabelValues(e.Region, healthWord(e.Healthy)).Inc()
	s.metrics.healthy.WithLabelValues(e.Region).Set(boolGauge(e.Healthy))
}

func healthWord(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
