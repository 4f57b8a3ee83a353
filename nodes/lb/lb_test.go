package lb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Generous: bounds a wait for something that must happen, never a speed.
const wait = 10 * time.Second

type fakeBackend struct {
	*httptest.Server
	name    string
	sick    atomic.Bool   // /healthz answers 500 while set
	broken  atomic.Bool   // other paths drop the connection while set
	entered chan string   // /slow reports arrival here
	release chan struct{} // and waits for this (or the client leaving)
}

func newBackend(t *testing.T, name string) *fakeBackend {
	b := &fakeBackend{name: name, entered: make(chan string, 16), release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			if b.sick.Load() {
				http.Error(w, "sick", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, "ok")
			return
		case b.broken.Load():
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case r.URL.Path == "/slow":
			b.entered <- name
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "%s %s", name, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(b.Close)
	return b
}

func addr(b *fakeBackend) string { return strings.TrimPrefix(b.URL, "http://") }

func testConfig(backends ...*fakeBackend) Config {
	cfg := Config{HealthInterval: time.Hour, Fall: 2, Rise: 1, DialTimeout: 500 * time.Millisecond,
		Timeout: wait, DrainTimeout: wait}
	for _, b := range backends {
		cfg.Backends = append(cfg.Backends, addr(b))
	}
	return cfg
}

// serve runs l behind a loopback server, without health checks: tests that
// need checks run rounds themselves (checkRound) or call start.
// ejecting serves an lb over two backends, a and b, that ejects a backend
// after ejectAfter consecutive errors for ejectFor; its first check round
// is done, so both are in rotation.
func ejecting(t *testing.T, ejectAfter int, ejectFor time.Duration) (a, b *fakeBackend, l *LB, srv *httptest.Server) {
	a, b = newBackend(t, "a"), newBackend(t, "b")
	cfg := testConfig(a, b)
	cfg.EjectAfter, cfg.EjectFor = ejectAfter, ejectFor
	l, srv = serve(t, cfg)
	l.checkRound(t.Context())
	return a, b, l, srv
}

func serve(t *testing.T, cfg Config, opts ...Option) (*LB, *httptest.Server) {
	l, err := New(cfg, prometheus.NewRegistry(), opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return l, srv
}

// start runs an LB over backends with its checks, waiting until ready.
func start(t *testing.T, interval time.Duration, backends ...*fakeBackend) (*LB, *httptest.Server) {
	cfg := testConfig(backends...)
	cfg.HealthInterval = interval
	l, srv := serve(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Check(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return l.Ready() == nil }, wait, 5*time.Millisecond)
	return l, srv
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func hit(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, "")
}

// spread sends n requests and counts answers by backend name.
func spread(t *testing.T, url string, n int) map[string]int {
	got := map[string]int{}
	for range n {
		code, body := hit(t, url+"/api/hello")
		if code != http.StatusOK {
			got[fmt.Sprint(code)]++
			continue
		}
		got[strings.Fields(body)[0]]++
	}
	return got
}

func stateOf(l *LB, a string) string {
	for _, s := range l.Status() {
		if s.Addr == a {
			return s.State
		}
	}
	return "absent"
}

func TestRoundRobin(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	_, srv := start(t, time.Hour, a, b, c)
	assert.Equal(t, map[string]int{"a": 10, "b": 10, "c": 10}, spread(t, srv.URL, 30))

	_, body := hit(t, srv.URL+"/x")
	assert.Contains(t, body, "127.0.0.1", "X-Forwarded-For is set")
}

func TestHealthCheckEjectsAndRestores(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	// Checks time out at 4/5 of the interval; keep that far above what a
	// loaded machine needs to answer a loopback request.
	l, srv := start(t, 250*time.Millisecond, a, b, c)

	b.sick.Store(true)
	require.Eventually(t, func() bool { return !l.Status()[1].Healthy }, wait, 5*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 10, "c": 10}, spread(t, srv.URL, 20), "no traffic to the ejected backend")

	code, body := hit(t, srv.URL+"/lb/backends")
	require.Equal(t, http.StatusOK, code)
	var st []BackendStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st, 3)
	assert.Equal(t, addr(b), st[1].Addr)
	assert.False(t, st[1].Healthy)
	assert.Equal(t, StateDown, st[1].State)
	assert.GreaterOrEqual(t, st[1].Fails, 2)
	assert.Contains(t, st[1].LastError, "500")
	assert.True(t, st[0].Healthy)

	b.sick.Store(false)
	require.Eventually(t, func() bool { return l.Status()[1].Healthy }, wait, 5*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 10, "b": 10, "c": 10}, spread(t, srv.URL, 30))
}

func TestNoHealthyBackend(t *testing.T) {
	a := newBackend(t, "a")
	a.sick.Store(true)
	l, srv := serve(t, testConfig(a))
	l.checkRound(t.Context())
	assert.False(t, l.Status()[0].Healthy, "the first check decides directly")
	assert.ErrorContains(t, l.Ready(), "no backend in rotation yet",
		"a region whose backends are still starting is not ready for users")
	code, body := hit(t, srv.URL+"/")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Contains(t, body, "no healthy backend")

	a.sick.Store(false)
	for range testConfig(a).Rise {
		l.checkRound(t.Context())
	}
	require.NoError(t, l.Ready())
	a.sick.Store(true)
	for range testConfig(a).Fall {
		l.checkRound(t.Context())
	}
	assert.False(t, l.Status()[0].Healthy)
	assert.NoError(t, l.Ready(), "once ready, losing the backends is a failure to measure, not a start")

	empty, _ := serve(t, testConfig())
	empty.checkRound(t.Context())
	assert.NoError(t, empty.Ready(), "nothing to wait for")
}

// A backend that dies between checks costs its share of requests as 502s:
// no retry hides the failure from users.
func TestDeadBackendIsVisible(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	_, srv := start(t, time.Hour, a, b)
	b.Close()
	assert.Equal(t, map[string]int{"a": 5, "502": 5}, spread(t, srv.URL, 10))
}

func TestTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			select {
			case <-r.Context().Done():
			case <-time.After(wait):
			}
		}
	}))
	defer slow.Close()
	l, err := New(Config{Backends: []string{strings.TrimPrefix(slow.URL, "http://")}, HealthInterval: time.Hour,
		Fall: 1, Rise: 1, DialTimeout: time.Second, Timeout: 50 * time.Millisecond}, prometheus.NewRegistry())
	require.NoError(t, err)
	l.checkRound(context.Background())
	rec := httptest.NewRecorder()
	l.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
}

func TestCheckState(t *testing.T) {
	tests := []struct {
		name       string
		fall, rise int
		checks     string // '+' pass, '-' fail
		want       string // up after each check: 'U' or 'D'
	}{
		{"first pass is up", 2, 1, "+", "U"},
		{"first fail is down", 2, 1, "-", "D"},
		{"fall 2", 2, 1, "+--", "UUD"},
		{"a pass resets fall", 2, 1, "+-+-", "UUUU"},
		{"rise 1", 2, 1, "+--+", "UUDU"},
		{"rise 3", 1, 3, "+-+++", "UDDDU"},
		{"rise interrupted", 1, 2, "-+-++", "DDDDU"},
		{"fall 3", 3, 1, "+---", "UUUD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := checkState{fall: tt.fall, rise: tt.rise}
			var got strings.Builder
			for _, c := range tt.checks {
				s.observe(c == '+')
				got.WriteByte(map[bool]byte{true: 'U', false: 'D'}[s.up])
			}
			assert.Equal(t, tt.want, got.String())
		})
	}
}

func TestConfig(t *testing.T) {
	ok := Config{Backends: []string{"10.0.0.1:8080"}, HealthInterval: time.Second, Fall: 2, Rise: 1, DialTimeout: time.Second, Timeout: time.Second}
	require.NoError(t, ok.Validate())
	none := ok
	none.Backends = nil
	require.NoError(t, none.Validate(), "backends may all come through the admin API")
	bad := []func(*Config){
		func(c *Config) { c.Backends = []string{"nohost"} },
		func(c *Config) { c.Backends = []string{":8080"} },
		func(c *Config) { c.Policy = "random" },
		func(c *Config) { c.CheckTimeout = 2 * time.Second },
		func(c *Config) { c.EjectAfter = 3 },
		func(c *Config) { c.EjectAfter = -1 },
		func(c *Config) { c.DrainTimeout = -1 },
		func(c *Config) { c.HealthInterval = 0 },
		func(c *Config) { c.Fall = 0 },
		func(c *Config) { c.Rise = 0 },
		func(c *Config) { c.Timeout = 0 },
	}
	for i, mutate := range bad {
		c := ok
		mutate(&c)
		assert.Error(t, c.Validate(), "case %d", i)
	}
	assert.Equal(t, []string{"a:1", "b:2"}, splitList(" a:1, ,b:2,"))
}

func TestRunUsage(t *testing.T) {
	tests := [][]string{
		{"--nope"},
		{"--policy", "random"},
		{"--backends", "x:1", "--fall", "0"},
	}
	for _, args := range tests {
		require.ErrorIs(t, Run(context.Background(), args), nodes.ErrUsage, "%q", args)
	}
}

func FuzzSplitList(f *testing.F) {
	f.Add("10.0.0.1:8080, 10.0.0.2:8080")
	f.Add(" ,,a ,")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range splitList(s) {
			if p == "" || p != strings.TrimSpace(p) || strings.Contains(p, ",") {
				t.Fatalf("splitList(%q) gave %q", s, p)
			}
		}
	})
}
