// Package lb is the lb role: a region's public entry, round-robin over the
// region's healthy web nodes with active health checks. It deliberately does
// not retry or eject passively: the user-visible error spike after a node
// dies must be measurable.
package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/nodekit"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is the load balancer's configuration.
type Config struct {
	Backends       []string // host:port
	HealthInterval time.Duration
	Fall           int // consecutive failed checks that take a backend out
	Rise           int // consecutive passed checks that bring it back
	DialTimeout    time.Duration
	Timeout        time.Duration // whole proxied request
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if len(c.Backends) == 0 {
		return errors.New("no backends")
	}
	for _, b := range c.Backends {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("backend %q: %w", b, err)
		}
	}
	switch {
	case c.HealthInterval <= 0:
		return fmt.Errorf("health interval %v: must be positive", c.HealthInterval)
	case c.Fall < 1 || c.Rise < 1:
		return fmt.Errorf("fall %d, rise %d: must be at least 1", c.Fall, c.Rise)
	case c.DialTimeout <= 0 || c.Timeout <= 0:
		return fmt.Errorf("dial timeout %v, timeout %v: must be positive", c.DialTimeout, c.Timeout)
	}
	return nil
}

// Run runs the lb role until ctx ends.
func Run(ctx context.Context, args []string) error {
	var f nodekit.Flags
	fs := nodekit.NewFlagSet("lb", &f)
	var cfg Config
	var backends string
	fs.StringVar(&backends, "backends", "", "comma-separated host:port of the backends")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 500*time.Millisecond, "time between health checks of a backend")
	fs.IntVar(&cfg.Fall, "fall", 2, "consecutive failed checks that take a backend out")
	fs.IntVar(&cfg.Rise, "rise", 1, "consecutive passed checks that bring a backend back")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 500*time.Millisecond, "backend connect timeout")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "proxied request timeout")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	cfg.Backends = splitList(backends)
	reg := nodekit.NewRegistry()
	l, err := New(cfg, reg)
	if err != nil {
		return fmt.Errorf("%w: lb: %v", nodes.ErrUsage, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checks := make(chan struct{})
	go func() { defer close(checks); l.Check(ctx) }()
	err = nodekit.Serve(ctx, nodekit.NewServer(f.Listen, l, reg, nodekit.WithReadiness(l.Ready)))
	cancel() // Serve can also end by failing to listen
	<-checks
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LB balances requests over backends; it is an http.Handler.
type LB struct {
	cfg      Config
	backends []*backend
	healthy  atomic.Pointer[[]*backend] // rebuilt on every state change
	next     atomic.Uint64
	mu       sync.Mutex // serialises rebuilds of healthy
	checker  *http.Client
	mux      *http.ServeMux
	noneUp   prometheus.Counter
}

type backend struct {
	addr  string
	proxy *httputil.ReverseProxy

	mu        sync.Mutex
	state     checkState
	checked   bool
	lastCheck time.Time
	lastError string

	requests, errors prometheus.Counter
	up               prometheus.Gauge
}

// New builds a load balancer; call Check to run its health checks.
func New(cfg Config, reg prometheus.Registerer) (*LB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"backend"})
	}
	requests := vec("lb_backend_requests_total", "Requests proxied to a backend.")
	errs := vec("lb_backend_errors_total", "Proxied requests that failed at the backend (answered 502/504).")
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lb_backend_healthy", Help: "1 while a backend is in rotation."}, []string{"backend"})
	l := &LB{
		cfg: cfg,
		noneUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lb_no_backend_total", Help: "Requests answered 502 because no backend was healthy.",
		}),
		checker: &http.Client{
			// Shorter than the interval so a hung check never overlaps the next.
			Timeout: cfg.HealthInterval * 4 / 5,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
				MaxIdleConnsPerHost: 1,
			},
		},
	}
	reg.MustRegister(requests, errs, up, l.noneUp)
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	for _, addr := range cfg.Backends {
		b := &backend{
			addr:     addr,
			state:    checkState{fall: cfg.Fall, rise: cfg.Rise},
			requests: requests.WithLabelValues(addr),
			errors:   errs.WithLabelValues(addr),
			up:       up.WithLabelValues(addr),
		}
		target := &url.URL{Scheme: "http", Host: addr}
		b.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport: transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if errors.Is(err, context.Canceled) {
					return // the client left; nothing is wrong with the backend
				}
				b.errors.Inc()
				code := http.StatusBadGateway
				if errors.Is(err, context.DeadlineExceeded) {
					code = http.StatusGatewayTimeout
				}
				http.Error(w, fmt.Sprintf("backend %s: %v", addr, err), code)
			},
		}
		l.backends = append(l.backends, b)
	}
	l.healthy.Store(&[]*backend{})
	l.mux = http.NewServeMux()
	l.mux.HandleFunc("GET /lb/backends", l.status)
	l.mux.HandleFunc("/", l.proxy)
	return l, nil
}

func (l *LB) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.mux.ServeHTTP(w, r) }

func (l *LB) proxy(w http.ResponseWriter, r *http.Request) {
	hs := *l.healthy.Load()
	if len(hs) == 0 {
		l.noneUp.Inc()
		http.Error(w, "no healthy backend", http.StatusBadGateway)
		return
	}
	b := hs[(l.next.Add(1)-1)%uint64(len(hs))]
	b.requests.Inc()
	ctx, cancel := context.WithTimeout(r.Context(), l.cfg.Timeout)
	defer cancel()
	b.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// Ready reports an error until every backend has been checked once, so the
// LB does not answer 502 for backends it simply has not looked at yet.
func (l *LB) Ready() error {
	for _, b := range l.backends {
		b.mu.Lock()
		checked := b.checked
		b.mu.Unlock()
		if !checked {
			return fmt.Errorf("backend %s not checked yet", b.addr)
		}
	}
	return nil
}

// Check health-checks every backend each interval until ctx ends.
func (l *LB) Check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range l.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(l.cfg.HealthInterval)
			defer t.Stop()
			for {
				l.checkOnce(ctx, b)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (l *LB) checkOnce(ctx context.Context, b *backend) {
	err := l.probe(ctx, b.addr)
	if ctx.Err() != nil {
		return // shutting down; the failure says nothing about the backend
	}
	b.mu.Lock()
	changed := b.state.observe(err == nil) || !b.checked
	b.checked = true
	b.lastCheck = time.Now()
	b.lastError = ""
	if err != nil {
		b.lastError = err.Error()
	}
	b.mu.Unlock()
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

func (l *LB) rebuild() {
	l.mu.Lock()
	defer l.mu.Unlock()
	hs := make([]*backend, 0, len(l.backends))
	for _, b := range l.backends {
		b.mu.Lock()
		up := b.state.up
		b.mu.Unlock()
		if up {
			hs = append(hs, b)
			b.up.Set(1)
		} else {
			b.up.Set(0)
		}
	}
	l.healthy.Store(&hs)
}

// BackendStatus is one entry of GET /lb/backends.
type BackendStatus struct {
	Addr      string    `json:"addr"`
	Healthy   bool      `json:"healthy"`
	Checked   bool      `json:"checked"`
	Fails     int       `json:"consecutive_fails"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Status reports every backend's health-check state.
func (l *LB) Status() []BackendStatus {
	out := make([]BackendStatus, 0, len(l.backends))
	for _, b := range l.backends {
		b.mu.Lock()
		out = append(out, BackendStatus{Addr: b.addr, Healthy: b.state.up, Checked: b.checked,
			Fails: b.state.fails, LastCheck: b.lastCheck, LastError: b.lastError})
		b.mu.Unlock()
	}
	return out
}

func (l *LB) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l.Status())
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
