// Package edge is the CDN edge role: a per-region caching reverse proxy for
// static content from the origin region's load balancer. It honours the
// origin's Cache-Control and Expires, serves hits from memory, folds
// concurrent misses for a URL into one origin request, and bounds its memory
// with LRU eviction.
package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// X-Cache values.
const (
	Hit   = "HIT"
	Miss  = "MISS"
	Stale = "STALE" // origin failed; a stale copy was served (stale-if-error)
	Pass  = "PASS"  // not cacheable: proxied straight through
)

type config struct {
	memory        int64
	maxObject     int64
	staleIfError  time.Duration
	originTimeout time.Duration
	transport     http.RoundTripper
	now           func() time.Time
}

// Option configures an Edge.
type Option func(*config)

// WithMemory bounds the bytes of cached objects (default 64 MiB); objects
// larger than an eighth of it pass through uncached.
func WithMemory(bytes int64) Option { return func(c *config) { c.memory = bytes } }

// WithStaleIfError serves an expired copy for up to d past its lifetime
// when the origin fails (an error or a 5xx). Zero (the default) never does.
func WithStaleIfError(d time.Duration) Option { return func(c *config) { c.staleIfError = d } }

// WithOriginTimeout bounds one origin request (default 5 s).
func WithOriginTimeout(d time.Duration) Option { return func(c *config) { c.originTimeout = d } }

// WithTransport replaces the transport to the origin.
func WithTransport(rt http.RoundTripper) Option { return func(c *config) { c.transport = rt } }

// WithClock replaces the clock that ages entries, so expiry is testable
// without sleeping.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Edge is the caching proxy; it is an http.Handler.
type Edge struct {
	cfg    config
	origin string // scheme://host[/path] without a trailing slash
	client *http.Client
	pass   *httputil.ReverseProxy
	store  *store
	m      *metrics

	mu      sync.Mutex
	flights map[string]*flight
}

// flight is one origin fetch that concurrent misses for a URL wait on.
type flight struct {
	done   chan struct{}
	entry  *entry // what waiters serve; nil sends them to the origin themselves
	xcache string
}

// New builds an edge in front of origin, registering its metrics on reg.
func New(origin string, reg prometheus.Registerer, opts ...Option) (*Edge, error) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin %q: want an http(s)://host[:port] URL", origin)
	}
	c := config{memory: 64 << 20, originTimeout: 5 * time.Second, transport: http.DefaultTransport, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.memory < 1<<10 || c.staleIfError < 0 || c.originTimeout <= 0 {
		return nil, fmt.Errorf("memory %d (at least 1 KiB), stale-if-error %v, origin timeout %v: out of range",
			c.memory, c.staleIfError, c.originTimeout)
	}
	c.maxObject = c.memory / 8
	e := &Edge{
		cfg:     c,
		origin:  strings.TrimSuffix(u.String(), "/"),
		client:  &http.Client{Transport: c.transport, Timeout: c.originTimeout},
		flights: map[string]*flight{},
	}
	e.m = newMetrics(reg, e)
	e.store = newStore(c.memory, e.m.evictions.Inc)
	e.pass = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: c.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Cache", Pass)
			return nil
		},
	}
	return e, nil
}

func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.Header.Get("Authorization") != "" {
		e.m.count(Pass)
		e.pass.ServeHTTP(w, r)
		return
	}
	key := r.URL.RequestURI()
	now := e.cfg.now()
	cached := e.store.get(key)
	if cached != nil && cached.staleFor(now) < 0 {
		e.m.count(Hit)
		serve(w, r, cached, now, Hit)
		return
	}
	f, leader := e.join(key)
	if !leader {
		e.m.coalesced.Inc()
		select {
		case <-f.done:
		case <-r.Context().Done():
			return
		}
		if f.entry == nil {
			// The answer was not shareable (private, too big, an error):
			// ask the origin for this client alone.
			e.m.count(Pass)
			e.pass.ServeHTTP(w, r)
			return
		}
		e.m.count(f.xcache)
		serve(w, r, f.entry, e.cfg.now(), f.xcache)
		return
	}
	defer e.land(key, f)
	e.fill(w, r, key, cached, f)
}

// join returns the flight for key, and whether the caller leads it.
func (e *Edge) join(key string) (*flight, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.flights[key]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	e.flights[key] = f
	return f, true
}

func (e *Edge) land(key string, f *flight) {
	e.mu.Lock()
	delete(e.flights, key)
	e.mu.Unlock()
	close(f.done)
}

// fill fetches key from the origin for the flight's leader, stores what may
// be stored and answers w; f.entry is set for waiters when it can be shared.
func (e *Edge) fill(w http.ResponseWriter, r *http.Request, key string, cached *entry, f *flight) {
	// Waiters depend on this fetch: it must outlive a leader who hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.cfg.originTimeout)
	defer cancel()
	start := time.Now()
	resp, err := e.get(ctx, key)
	if err == nil {
		defer resp.Body.Close()
	}
	e.m.originLatency.Observe(time.Since(start).Seconds())
	now := e.cfg.now()
	if (err != nil || resp.StatusCode >= 500) && cached != nil && cached.staleFor(now) <= e.cfg.staleIfError && e.cfg.staleIfError > 0 {
		f.entry, f.xcache = cached, Stale
		e.m.count(Stale)
		serve(w, r, cached, now, Stale)
		return
	}
	e.m.count(Miss)
	if err != nil {
		e.m.originErrors.Inc()
		http.Error(w, fmt.Sprintf("origin: %v", err), http.StatusBadGateway)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, e.cfg.maxObject+1))
	if err != nil {
		e.m.originErrors.Inc()
		http.Error(w, fmt.Sprintf("origin body: %v", err), http.StatusBadGateway)
		return
	}
	h := resp.Header.Clone()
	age := initialAge(h)
	removeHopByHop(h)
	life, fresh := freshness(h, now)
	if fresh && storable(r, resp) && int64(len(body)) <= e.cfg.maxObject {
		ent := newEntry(key, h, body, now, age, life)
		e.store.put(ent)
		f.entry, f.xcache = ent, Miss
		serve(w, r, ent, now, Miss)
		return
	}
	// Not cacheable: relay this one answer as it came.
	copyHeader(w.Header(), h)
	w.Header().Set("X-Cache", Miss)
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(body); err == nil {
		_, _ = io.Copy(w, resp.Body) // the rest of an object too big to cache
	}
}

// get is a GET even for a HEAD miss, so that the object can be cached.
func (e *Edge) get(ctx context.Context, key string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.origin+key, nil)
	if err != nil {
		return nil, err
	}
	e.m.originRequests.Inc()
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return resp, nil
}

func serve(w http.ResponseWriter, r *http.Request, ent *entry, now time.Time, xcache string) {
	h := w.Header()
	copyHeader(h, ent.header)
	h.Set("Age", strconv.FormatInt(int64(ent.age(now)/time.Second), 10))
	h.Set("X-Cache", xcache)
	h.Set("Content-Length", strconv.Itoa(len(ent.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(ent.body) // a failed write means the client left
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

// removeHopByHop drops headers that describe one connection, not the
// object, and Age, which serve recomputes.
func removeHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Age", "Content-Length"} {
		h.Del(k)
	}
}

type metrics struct {
	requests                     *prometheus.CounterVec
	hits, misses                 atomic.Int64
	coalesced, evictions         prometheus.Counter
	originRequests, originErrors prometheus.Counter
	originLatency                prometheus.Observer
}

func (m *metrics) count(result string) {
	m.requests.WithLabelValues(result).Inc()
	switch result {
	case Hit:
		m.hits.Add(1)
	case Miss:
		m.misses.Add(1)
	}
}

func newMetrics(reg prometheus.Registerer, e *Edge) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "edge_origin_duration_seconds", Help: "Time to the origin's response headers.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_requests_total", Help: "Requests by X-Cache result (HIT, MISS, STALE, PASS).",
		}, []string{"result"}),
		coalesced:      counter("edge_coalesced_total", "Misses that waited for another request's origin fetch."),
		evictions:      counter("edge_evictions_total", "Objects evicted to stay under the memory bound."),
		originRequests: counter("edge_origin_requests_total", "Requests the edge sent to the origin for misses."),
		originErrors:   counter("edge_origin_errors_total", "Origin requests that failed without an answer."),
		originLatency:  latency,
	}
	ratio := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edge_hit_ratio", Help: "HITs over HITs plus MISSes since start.",
	}, func() float64 {
		h, ms := m.hits.Load(), m.misses.Load()
		if h+ms == 0 {
			return 0
		}
		return float64(h) / float64(h+ms)
	})
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_cache_bytes", Help: "Bytes held by cached objects."},
		func() float64 { b, _ := e.store.stats(); return float64(b) })
	objects := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_cache_objects", Help: "Objects cached."},
		func() float64 { _, n := e.store.stats(); return float64(n) })
	reg.MustRegister(m.requests, m.coalesced, m.evictions, m.originRequests, m.originErrors, latency, ratio, bytes, objects)
	return m
}
