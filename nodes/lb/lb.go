// Package lb is the lb role: a region's public entry. It balances requests
// over the region's web nodes (round-robin or least-connections), takes
// backends out on failed active checks or on consecutive proxy errors,
// and lets an operator or the autoscaler add and drain backends at run time.
// By default it does not retry: the user-visible error spike after a node
// dies must stay measurable.
package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Policies a Config may name.
const (
	RoundRobin = "round-robin"
	LeastConn  = "least-conn"
)

// Config is the load balancer's configuration.
type Config struct {
	Backends       []string // host:port; may be empty when backends are added through the admin API
	Policy         string   // RoundRobin (default when empty) or LeastConn
	HealthInterval time.Duration
	CheckTimeout   time.Duration // one health check; zero means 4/5 of HealthInterval
	Fall           int           // consecutive failed checks that take a backend out
	Rise           int           // consecutive passed checks that bring it back
	DialTimeout    time.Duration
	Timeout        time.Duration // whole proxied request
	// EjectAfter consecutive proxy errors (connect failures, resets,
	// timeouts) eject a backend for EjectFor; then it needs a passing
	// active check to return. Zero disables passive ejection.
	EjectAfter int
	EjectFor   time.Duration
	// DrainTimeout bounds how long a removed backend's in-flight requests
	// may run before they are cut off.
	DrainTimeout time.Duration
	// RetryRefused retries a GET or HEAD without a body once on another
	// backend when the connection was refused, which proves the first
	// backend never saw the request.
	RetryRefused bool
	// AffinityCookie, when set, pins each client to a backend (session
	// affinity, as HAProxy's "cookie ... insert"): when a backend's answer
	// sets a cookie (starts a session), the lb adds one of this name naming
	// the backend, and sends later requests carrying it there while that
	// backend is in rotation, elsewhere once it is not. Answers that set no
	// cookie get none, so they stay cacheable by a CDN. Web nodes that keep
	// sessions in memory need it.
	AffinityCookie string
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	for _, b := range c.Backends {
		if err := validAddr(b); err != nil {
			return err
		}
	}
	switch {
	case c.Policy != "" && c.Policy != RoundRobin && c.Policy != LeastConn:
		return fmt.Errorf("policy %q: want %s or %s", c.Policy, RoundRobin, LeastConn)
	case c.HealthInterval <= 0:
		return fmt.Errorf("health interval %v: must be positive", c.HealthInterval)
	case c.CheckTimeout < 0 || c.CheckTimeout > c.HealthInterval:
		return fmt.Errorf("check timeout %v: must be positive and at most the interval %v", c.CheckTimeout, c.HealthInterval)
	case c.Fall < 1 || c.Rise < 1:
		return fmt.Errorf("fall %d, rise %d: must be at least 1", c.Fall, c.Rise)
	case c.DialTimeout <= 0 || c.Timeout <= 0:
		return fmt.Errorf("dial timeout %v, timeout %v: must be positive", c.DialTimeout, c.Timeout)
	case c.EjectAfter < 0 || (c.EjectAfter > 0 && c.EjectFor <= 0):
		return fmt.Errorf("eject after %d for %v: a positive count needs a positive cool-down", c.EjectAfter, c.EjectFor)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %v: must not be negative", c.DrainTimeout)
	}
	return nil
}

func validAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("backend %q: %w", a, err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("backend %q: want host:port", a)
	}
	return nil
}

// Option configures an LB beyond its Config.
type Option func(*LB)

// WithClock replaces the clock that times ejection cool-downs, so tests
// need not sleep through them.
func WithClock(now func() time.Time) Option { return func(l *LB) { l.now = now } }

// LB balances requests over backends; it is an http.Handler.
type LB struct {
	cfg       Config
	now       func() time.Time
	m         *metrics
	dialer    *net.Dialer     // for the connections the lb forwards on itself (direct.go)
	transport *http.Transport // for ReverseProxy: requests with a body, upgrades
	checker   *http.Client
	mux       *http.ServeMux

	mu       sync.Mutex // guards backends and draining, serialises rotation rebuilds
	backends []*backend // in rotation order, draining ones excluded
	draining []*backend
	rotation atomic.Pointer[[]*backend] // backends that may take new requests
	next     atomic.Uint64

	kick  chan struct{} // asks Check for a round now (a backend was added)
	ready atomic.Bool   // a check round has put a backend in rotation, or found none
}

// New builds a load balancer; call Check to run its health checks. Backends
// join the rotation after their first passing check.
func New(cfg Config, reg prometheus.Registerer, opts ...Option) (*LB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Policy == "" {
		cfg.Policy = RoundRobin
	}
	if cfg.CheckTimeout == 0 {
		// Shorter than the interval so a hung check never overlaps the next.
		cfg.CheckTimeout = cfg.HealthInterval * 4 / 5
	}
	l := &LB{
		cfg:  cfg,
		now:  time.Now,
		m:    newMetrics(reg, cfg.Policy),
		kick: make(chan struct{}, 1),
		checker: &http.Client{
			Timeout: cfg.CheckTimeout,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
				MaxIdleConnsPerHost: 1,
			},
		},
		dialer: &net.Dialer{Timeout: min(cfg.DialTimeout, cfg.Timeout), KeepAlive: 30 * time.Second},
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	for _, o := range opts {
		o(l)
	}
	for _, a := range cfg.Backends {
		l.add(a)
	}
	l.rebuild()
	l.mux = http.NewServeMux()
	l.routes(l.mux)
	l.mux.HandleFunc("/", l.proxy)
	return l, nil
}

func (l *LB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "" || p[0] != '/' || strings.HasPrefix(p, "/lb/") ||
		strings.Contains(p, "//") || strings.Contains(p, "/.") || r.Method == http.MethodConnect {
		// The admin API, and what the mux answers itself (a redirect to
		// the clean path, 400 to "*").
		l.mux.ServeHTTP(w, r)
		return
	}
	// Everything else is proxied: the mux would only find that out, at a
	// cost per request.
	l.proxy(w, r)
}

func (l *LB) proxy(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { l.m.latency.Observe(time.Since(start).Seconds()) }()
	l.m.requests.Inc()
	b := l.pinned(r)
	if b == nil {
		b = l.pick(nil)
	}
	if b == nil {
		l.m.noneUp.Inc()
		http.Error(w, "no healthy backend", http.StatusBadGateway)
		return
	}
	l.forward(w, r, b, false)
}

// pinned is the backend r's affinity cookie names, if it is in rotation.
func (l *LB) pinned(r *http.Request) *backend {
	if l.cfg.AffinityCookie == "" {
		return nil
	}
	c, err := r.Cookie(l.cfg.AffinityCookie)
	if err != nil {
		return nil
	}
	for _, b := range *l.rotation.Load() {
		if b.addr == c.Value {
			return b
		}
	}
	return nil
}

// pin tells the client which backend it is pinned to when the backend
// starts a session (sets a cookie), unless the client already knows.
func (l *LB) pin(resp *http.Response, b *backend) {
	if l.cfg.AffinityCookie == "" || len(resp.Header.Values("Set-Cookie")) == 0 {
		return
	}
	if resp.Request != nil {
		if c, err := resp.Request.Cookie(l.cfg.AffinityCookie); err == nil && c.Value == b.addr {
			return
		}
	}
	resp.Header.Add("Set-Cookie", (&http.Cookie{Name: l.cfg.AffinityCookie, Value: b.addr, Path: "/", HttpOnly: true}).String())
}

// pick chooses a backend from the rotation by the policy, never skip.
func (l *LB) pick(skip *backend) *backend {
	hs := *l.rotation.Load()
	n := uint64(len(hs))
	if n == 0 || (n == 1 && hs[0] == skip) {
		return nil
	}
	off := l.next.Add(1) - 1
	if l.cfg.Policy == RoundRobin {
		if b := hs[off%n]; b != skip {
			return b
		}
		return hs[(off+1)%n]
	}
	// Least connections; scanning from a rotating offset spreads ties.
	var best *backend
	var least int64
	for i := range n {
		b := hs[(off+i)%n]
		if b == skip {
			continue
		}
		if c := b.inflight.Load(); best == nil || c < least {
			best, least = b, c
		}
	}
	return best
}

// copyBuffers spares each proxied response a fresh 32 KiB copy buffer:
// without it, allocating and zeroing them was a visible share of the lb's
// CPU in BenchmarkVsHAProxy.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

type retriedKey struct{}

// forward sends r to b and its answer to w; retried says r already failed
// on another backend.
func (l *LB) forward(w http.ResponseWriter, r *http.Request, b *backend, retried bool) {
	b.begin()
	defer l.end(b)
	if direct(r) {
		l.forwardDirect(w, r, b, retried)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), l.cfg.Timeout)
	defer cancel()
	if retried {
		ctx = context.WithValue(ctx, retriedKey{}, true)
	}
	// A drain that times out cuts the requests still running on b.
	stop := context.AfterFunc(b.cut, cancel)
	defer stop()
	b.proxy.ServeHTTP(w, r.WithContext(ctx))
}

func (l *LB) newProxy(b *backend) *httputil.ReverseProxy {
	target := &url.URL{Scheme: "http", Host: b.addr}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  l.transport,
		BufferPool: copyBuffers,
		ModifyResponse: func(resp *http.Response) error {
			b.consecErrs.Store(0)
			l.pin(resp, b)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			l.failed(w, r, b, err, r.Context().Value(retriedKey{}) != nil)
		},
	}
}

// failed answers r, which b did not: nothing when the client left, 503
// when b's drain timed out, else 502 or 504 after counting the error
// against b and, where allowed, retrying on another backend.
func (l *LB) failed(w http.ResponseWriter, r *http.Request, b *backend, err error, retried bool) {
	if errors.Is(err, context.Canceled) {
		if b.cut.Err() != nil {
			http.Error(w, fmt.Sprintf("backend %s removed: drain timeout", b.addr), http.StatusServiceUnavailable)
		}
		return // otherwise the client left; nothing is wrong with the backend
	}
	b.m.errors.Inc()
	l.passiveError(b)
	if !retried && l.retryable(r, err) {
		if next := l.pick(b); next != nil {
			l.m.retries.Inc()
			l.forward(w, r, next, true)
			return
		}
	}
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	http.Error(w, fmt.Sprintf("backend %s: %v", b.addr, err), code)
}

// retryable is true only where a retry cannot run a request twice: an
// idempotent method, no body and a refused connection.
func (l *LB) retryable(r *http.Request, err error) bool {
	return l.cfg.RetryRefused &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.Body == nil || r.Body == http.NoBody) &&
		errors.Is(err, syscall.ECONNREFUSED)
}

func (l *LB) passiveError(b *backend) {
	n := b.consecErrs.Add(1)
	if l.cfg.EjectAfter == 0 || n < int64(l.cfg.EjectAfter) {
		return
	}
	// Passive ejection never empties the rotation (Envoy's
	// max_ejection_percent does the same): a last backend that is only
	// overloaded still serves more than an instant 502 does, and one that
	// is dead is taken out by the active checks.
	if hs := *l.rotation.Load(); len(hs) == 1 && hs[0] == b {
		return
	}
	b.mu.Lock()
	eject := b.ejectedUntil.IsZero() && !b.draining
	if eject {
		b.ejectedUntil = l.now().Add(l.cfg.EjectFor)
	}
	b.mu.Unlock()
	if eject {
		b.m.ejections.Inc()
		l.rebuild()
	}
}
