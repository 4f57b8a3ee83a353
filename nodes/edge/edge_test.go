package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Generous: bounds a wait for something that must happen, never a speed.
const wait = 10 * time.Second

// origin answers /<anything> with the headers the test put in hdr for that
// path, and counts the requests it saw per path.
type origin struct {
	*httptest.Server
	mu      sync.Mutex
	hdr     map[string]http.Header
	seen    map[string]int
	failing atomic.Bool   // answer 503 while set
	release chan struct{} // /slow waits for it
}

func newOrigin(t *testing.T) *origin {
	o := &origin{hdr: map[string]http.Header{}, seen: map[string]int{}, release: make(chan struct{})}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen[r.URL.RequestURI()]++
		n := o.seen[r.URL.RequestURI()]
		h := o.hdr[r.URL.Path]
		o.mu.Unlock()
		if o.failing.Load() {
			http.Error(w, "origin down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/slow" {
			select {
			case <-o.release:
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "%s #%d", r.URL.RequestURI(), n)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) set(path string, kv ...string) {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	o.mu.Lock()
	o.hdr[path] = h
	o.mu.Unlock()
}

func (o *origin) count(uri string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[uri]
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testEdge struct {
	*Edge
	reg *prometheus.Registry
}

func newEdge(t *testing.T, o *origin, opts ...Option) (testEdge, *clock) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	e, err := New(o.URL, reg, append([]Option{WithClock(c.Now)}, opts...)...)
	require.NoError(t, err)
	return testEdge{e, reg}, c
}

type answer struct {
	code        int
	xcache, age string
	body        string
}

func get(t *testing.T, h http.Handler, method, uri string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, uri, nil))
	return answer{rec.Code, rec.Header().Get("X-Cache"), rec.Header().Get("Age"), rec.Body.String()}
}

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// gauge gathers one unlabelled gauge from reg.
func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestHitMiss(t *testing.T) {
	o := newOrigin(t)
	o.set("/app.css", "Cache-Control", "public, max-age=60", "Content-Type", "text/css")
	e, c := newEdge(t, o)

	assert.Equal(t, answer{200, Miss, "0", "/app.css #1"}, get(t, e, "GET", "/app.css"))
	c.Add(5 * time.Second)
	assert.Equal(t, answer{200, Hit, "5", "/app.css #1"}, get(t, e, "GET", "/app.css"))
	assert.Equal(t, answer{200, Hit, "5", ""}, get(t, e, "HEAD", "/app.css"), "HEAD is served from the GET's entry")
	assert.Equal(t, answer{200, Miss, "0", "/app.css?v=2 #1"}, get(t, e, "GET", "/app.css?v=2"), "the query is part of the key")
	assert.Equal(t, 1, o.count("/app.css"))

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/app.css", nil))
	assert.Equal(t, "text/css", rec.Header().Get("Content-Type"))
	assert.Equal(t, "11", rec.Header().Get("Content-Length"))

	assert.Equal(t, float64(3), value(t, e.m.requests.WithLabelValues(Hit)))
	assert.Equal(t, float64(2), value(t, e.m.requests.WithLabelValues(Miss)))
	assert.Equal(t, float64(2), value(t, e.m.originRequests))
	assert.Equal(t, 0.6, gauge(t, e.reg, "edge_hit_ratio"))
	assert.Equal(t, float64(2), gauge(t, e.reg, "edge_cache_objects"))
}

func TestExpiry(t *testing.T) {
	date := time.Unix(1_700_000_000, 0).UTC()
	tests := []struct {
		name   string
		header []string
		fresh  time.Duration // still a HIT one second before, a MISS at
	}{
		{"max-age", []string{"Cache-Control", "max-age=60"}, 60 * time.Second},
		{"s-maxage wins for a shared cache", []string{"Cache-Control", "max-age=60, s-maxage=10"}, 10 * time.Second},
		{"Age from upstream counts", []string{"Cache-Control", "max-age=60", "Age", "50"}, 10 * time.Second},
		{"Expires against Date", []string{"Expires", date.Add(20 * time.Second).Format(http.TimeFormat),
			"Date", date.Format(http.TimeFormat)}, 20 * time.Second},
		{"max-age beats Expires", []string{"Cache-Control", "max-age=30",
			"Expires", date.Add(time.Hour).Format(http.TimeFormat)}, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t)
			o.set("/x", tt.header...)
			e, c := newEdge(t, o)
			assert.Equal(t, Miss, get(t, e, "GET", "/x").xcache)
			c.Add(tt.fresh - time.Second)
			assert.Equal(t, Hit, get(t, e, "GET", "/x").xcache)
			c.Add(time.Second)
			got := get(t, e, "GET", "/x")
			assert.Equal(t, Miss, got.xcache)
			assert.Equal(t, "/x #2", got.body)
			assert.Equal(t, 2, o.count("/x"))
		})
	}
}

func TestNotCached(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		header []string
	}{
		{"no-store", "/x", []string{"Cache-Control", "max-age=60, no-store"}},
		{"no-cache", "/x", []string{"Cache-Control", "no-cache, max-age=60"}},
		{"private", "/x", []string{"Cache-Control", "private, max-age=60"}},
		{"no lifetime", "/x", nil},
		{"max-age=0", "/x", []string{"Cache-Control", "max-age=0"}},
		{"Expires in the past", "/x", []string{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}},
		{"bad Expires", "/x", []string{"Expires", "0"}},
		{"Set-Cookie", "/x", []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}},
		{"Vary", "/x", []string{"Cache-Control", "max-age=60", "Vary", "Accept-Language"}},
		{"not a 200", "/missing", []string{"Cache-Control", "max-age=60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t)
			o.set(tt.path, tt.header...)
			e, _ := newEdge(t, o)
			first := get(t, e, "GET", tt.path)
			second := get(t, e, "GET", tt.path)
			assert.Equal(t, Miss, first.xcache)
			assert.Equal(t, Miss, second.xcache)
			assert.Equal(t, tt.path+" #2", second.body)
			assert.Equal(t, 2, o.count(tt.path))
		})
	}
}

func TestPassThrough(t *testing.T) {
	o := newOrigin(t)
	o.set("/x", "Cache-Control", "max-age=60")
	e, _ := newEdge(t, o)
	assert.Equal(t, answer{200, Pass, "", "/x #1"}, get(t, e, "POST", "/x"))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer t")
	e.ServeHTTP(rec, req)
	assert.Equal(t, Pass, rec.Header().Get("X-Cache"), "a shared cache must not store authorised answers")
	assert.Equal(t, Miss, get(t, e, "GET", "/x").xcache)
	assert.Equal(t, 3, o.count("/x"))
}

func TestCoalescing(t *testing.T) {
	o := newOrigin(t)
	o.set("/slow", "Cache-Control", "max-age=60")
	e, _ := newEdge(t, o)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	const n = 20
	bodies := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				bodies <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			bodies <- resp.Header.Get("X-Cache") + " " + string(b)
		})
	}
	// Every request but the leader's is waiting on the one origin fetch.
	require.Eventually(t, func() bool { return value(t, e.m.coalesced) == n-1 }, wait, 5*time.Millisecond)
	close(o.release)
	wg.Wait()
	close(bodies)
	for b := range bodies {
		assert.Equal(t, "MISS /slow #1", b)
	}
	assert.Equal(t, 1, o.count("/slow"))
	assert.Equal(t, float64(1), value(t, e.m.originRequests))
	assert.Equal(t, Hit, get(t, e, "GET", "/slow").xcache)
}

// Waiters must not be handed an answer meant for one client.
func TestCoalescedPrivateIsRefetched(t *testing.T) {
	o := newOrigin(t)
	o.set("/slow", "Cache-Control", "private, max-age=60")
	e, _ := newEdge(t, o)
	const n = 4
	got := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { got <- get(t, e, "GET", "/slow") })
	}
	require.Eventually(t, func() bool { return value(t, e.m.coalesced) == n-1 }, wait, 5*time.Millisecond)
	close(o.release)
	wg.Wait()
	close(got)
	bodies := map[string]bool{}
	for a := range got {
		bodies[a.body] = true
	}
	assert.Len(t, bodies, n, "each client got its own origin answer")
	assert.Equal(t, n, o.count("/slow"))
}

func TestLRUBound(t *testing.T) {
	o := newOrigin(t)
	body := strings.Repeat("x", 600)
	o.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen[r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, body)
	})
	const memory = 8 << 10
	e, _ := newEdge(t, o, WithMemory(memory))
	for i := range 30 {
		require.Equal(t, Miss, get(t, e, "GET", fmt.Sprintf("/%d", i)).xcache)
		// /0 stays the most recently used, so it is never evicted.
		require.Equal(t, Hit, get(t, e, "GET", "/0").xcache, "after /%d", i)
		bytes, _ := e.store.stats()
		require.LessOrEqual(t, bytes, int64(memory))
	}
	_, objects := e.store.stats()
	assert.Greater(t, objects, 2)
	assert.Less(t, objects, 30)
	assert.Equal(t, Miss, get(t, e, "GET", "/1").xcache, "the oldest were evicted")
	assert.Equal(t, Hit, get(t, e, "GET", "/29").xcache, "the newest were kept")
	assert.Positive(t, value(t, e.m.evictions))

	big := strings.Repeat("y", memory)
	o.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, big)
	})
	a := get(t, e, "GET", "/big")
	assert.Equal(t, big, a.body, "an object too big to cache is relayed whole")
	assert.Equal(t, Miss, get(t, e, "GET", "/big").xcache)
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name    string
		stale   time.Duration
		after   time.Duration
		want    string
		wantErr bool
	}{
		{"off", 0, 61 * time.Second, Miss, true},
		{"inside the window", time.Minute, 61 * time.Second, Stale, false},
		{"past the window", time.Minute, 121 * time.Second, Miss, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t)
			o.set("/x", "Cache-Control", "max-age=60")
			e, c := newEdge(t, o, WithStaleIfError(tt.stale))
			get(t, e, "GET", "/x")
			c.Add(tt.after)
			o.failing.Store(true)
			a := get(t, e, "GET", "/x")
			assert.Equal(t, tt.want, a.xcache)
			if tt.wantErr {
				assert.Equal(t, http.StatusServiceUnavailable, a.code)
			} else {
				assert.Equal(t, answer{200, Stale, fmt.Sprint(int(tt.after.Seconds())), "/x #1"}, a)
			}
		})
	}
}

func TestOriginDown(t *testing.T) {
	o := newOrigin(t)
	e, _ := newEdge(t, o)
	o.Close()
	a := get(t, e, "GET", "/x")
	assert.Equal(t, http.StatusBadGateway, a.code)
	assert.Equal(t, float64(1), value(t, e.m.originErrors))
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "lb:8080", "ftp://x", "http://"} {
		_, err := New(bad, prometheus.NewRegistry())
		assert.Error(t, err, bad)
	}
	_, err := New("http://x", prometheus.NewRegistry(), WithMemory(10))
	assert.Error(t, err)
	e, err := New("http://lb:8080/", prometheus.NewRegistry())
	require.NoError(t, err)
	assert.Equal(t, "http://lb:8080", e.origin)
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--nope"},
		{}, // no origin
		{"--origin", "http://x", "--memory", "lots"},
		{"--origin", "http://x", "--memory", "0"},
	} {
		require.ErrorIs(t, Run(context.Background(), args), nodes.ErrUsage, "%q", args)
	}
}
