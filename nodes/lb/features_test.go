package lb

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hold sends GET /slow through url in the background and returns the name of
// the backend it reached and a channel with the eventual answer.
func hold(t *testing.T, url string, backends ...*fakeBackend) (string, <-chan string) {
	t.Helper()
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		var b [64]byte
		n, _ := resp.Body.Read(b[:])
		answer <- http.StatusText(resp.StatusCode) + ": " + string(b[:n])
	}()
	cases := make(chan string, 1)
	var once sync.Once
	for _, b := range backends {
		go func() {
			select {
			case name := <-b.entered:
				once.Do(func() { cases <- name })
			case <-time.After(wait):
			}
		}()
	}
	select {
	case name := <-cases:
		return name, answer
	case <-time.After(wait):
		t.Fatal("slow request reached no backend")
	}
	return "", nil
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

func byName(name string, bs ...*fakeBackend) (busy, idle *fakeBackend) {
	if bs[0].name == name {
		return bs[0], bs[1]
	}
	return bs[1], bs[0]
}

func TestPolicyWithABusyBackend(t *testing.T) {
	tests := []struct {
		policy   string
		busy     int // requests the busy backend gets out of 10 while one slow request runs on it
		idleGets int
	}{
		{RoundRobin, 5, 5},
		{LeastConn, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			cfg := testConfig(a, b)
			cfg.Policy = tt.policy
			l, srv := serve(t, cfg)
			l.checkRound(context.Background())

			name, answer := hold(t, srv.URL, a, b)
			busy, idle := byName(name, a, b)
			got := spread(t, srv.URL, 10)
			assert.Equal(t, tt.busy, got[busy.name])
			assert.Equal(t, tt.idleGets, got[idle.name])
			assert.Equal(t, float64(1), value(t, l.m.bInflight.WithLabelValues(addr(busy))))
			close(busy.release)
			assert.Contains(t, <-answer, "OK: "+busy.name)
			assert.Equal(t, float64(11), value(t, l.m.requests))
		})
	}
}

func TestPassiveEjection(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	now := time.Unix(1000, 0)
	cfg := testConfig(a, b)
	cfg.EjectAfter, cfg.EjectFor = 3, time.Minute
	l, srv := serve(t, cfg, WithClock(func() time.Time { return now }))
	ctx := context.Background()
	l.checkRound(ctx)

	b.broken.Store(true)
	assert.Equal(t, map[string]int{"a": 7, "502": 3}, spread(t, srv.URL, 10),
		"three errors eject b; everything after goes to a")
	assert.Equal(t, StateEjected, stateOf(l, addr(b)))
	assert.Equal(t, float64(1), value(t, l.m.bEjections.WithLabelValues(addr(b))))
	assert.Equal(t, float64(1), value(t, l.m.bState.WithLabelValues(addr(b), StateEjected)))

	b.broken.Store(false)
	l.checkRound(ctx)
	assert.Equal(t, StateEjected, stateOf(l, addr(b)), "a passing check inside the cool-down does not return it")

	now = now.Add(time.Minute)
	b.sick.Store(true)
	l.checkRound(ctx)
	assert.Equal(t, StateEjected, stateOf(l, addr(b)), "after the cool-down it still needs a passing check")

	b.sick.Store(false)
	l.checkRound(ctx)
	assert.Equal(t, StateUp, stateOf(l, addr(b)))
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, spread(t, srv.URL, 10))
}

// The last backend in rotation is not ejected for errors: it may be only
// overloaded, and an instant 502 serves nobody. Active checks still judge it.
func TestPassiveEjectionKeepsTheLastBackend(t *testing.T) {
	a, b, l, srv := ejecting(t, 2, time.Minute)
	a.broken.Store(true)
	b.broken.Store(true)
	spread(t, srv.URL, 10)
	states := []string{stateOf(l, addr(a)), stateOf(l, addr(b))}
	require.ElementsMatch(t, []string{StateEjected, StateUp}, states, "one is ejected, the last one stays")
	last := a
	if states[1] == StateUp {
		last = b
	}

	last.sick.Store(true)
	for range l.cfg.Fall {
		l.checkRound(t.Context())
	}
	assert.Equal(t, StateDown, stateOf(l, addr(last)), "failing checks still take it out")
}

func TestKilledBackendOutWithinFallChecks(t *testing.T) {
	for _, fall := range []int{1, 2, 3} {
		t.Run(string(rune('0'+fall)), func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			cfg := testConfig(a, b)
			cfg.Fall = fall
			l, srv := serve(t, cfg)
			ctx := context.Background()
			l.checkRound(ctx)
			require.Equal(t, StateUp, stateOf(l, addr(b)))

			b.Close() // the listener is gone: connections are refused
			rounds := 0
			for stateOf(l, addr(b)) == StateUp && rounds < 10 {
				l.checkRound(ctx)
				rounds++
			}
			assert.Equal(t, fall, rounds, "a round is one health interval")
			assert.Equal(t, StateDown, stateOf(l, addr(b)))
			assert.Equal(t, map[string]int{"a": 4}, spread(t, srv.URL, 4))
		})
	}
}

func TestRetryRefused(t *testing.T) {
	tests := []struct {
		retry   bool
		method  string
		wantA   int
		wantErr int
	}{
		{false, http.MethodGet, 5, 5},
		{true, http.MethodGet, 10, 0},
		{true, http.MethodPost, 5, 5}, // never replay a write
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			cfg := testConfig(a, b)
			cfg.RetryRefused = tt.retry
			l, srv := serve(t, cfg)
			l.checkRound(context.Background())
			b.Close()
			var gotA, gotErr int
			for range 10 {
				body := ""
				if tt.method == http.MethodPost {
					body = "{}"
				}
				code, body := do(t, tt.method, srv.URL+"/x", body)
				switch {
				case code == http.StatusOK && body[0] == 'a':
					gotA++
				case code == http.StatusBadGateway:
					gotErr++
				}
			}
			assert.Equal(t, tt.wantA, gotA)
			assert.Equal(t, tt.wantErr, gotErr)
			refused := value(t, l.m.bErrors.WithLabelValues(addr(b)))
			assert.Positive(t, refused)
			if tt.retry && tt.method == http.MethodGet {
				assert.Equal(t, refused, value(t, l.m.retries), "every refused GET is retried once")
			} else {
				assert.Zero(t, value(t, l.m.retries))
			}
		})
	}
}

func status(t *testing.T, url string) map[string]BackendStatus {
	code, body := hit(t, url+"/lb/backends")
	require.Equal(t, http.StatusOK, code)
	var st []BackendStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	out := map[string]BackendStatus{}
	for _, s := range st {
		out[s.Addr] = s
	}
	return out
}

func TestAdminAddRemove(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	l, srv := start(t, time.Hour, a)
	assert.Equal(t, map[string]int{"a": 4}, spread(t, srv.URL, 4))

	code, _ := do(t, http.MethodPost, srv.URL+"/lb/backends/"+addr(b), "")
	require.Equal(t, http.StatusCreated, code)
	code, _ = do(t, http.MethodPost, srv.URL+"/lb/backends/"+addr(b), "")
	assert.Equal(t, http.StatusOK, code, "adding twice is a no-op")
	// The add asks for a check round at once: no waiting out the hour.
	require.Eventually(t, func() bool { return stateOf(l, addr(b)) == StateUp }, wait, 5*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 4, "b": 4}, spread(t, srv.URL, 8))

	code, _ = do(t, http.MethodDelete, srv.URL+"/lb/backends/"+addr(a), "")
	require.Equal(t, http.StatusAccepted, code)
	assert.Equal(t, map[string]int{"b": 4}, spread(t, srv.URL, 4))
	assert.NotContains(t, status(t, srv.URL), addr(a), "an idle backend drains at once")

	code, body := do(t, http.MethodPut, srv.URL+"/lb/backends", `["`+addr(a)+`","`+addr(c)+`"]`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"added":["`+addr(a)+`","`+addr(c)+`"],"draining":["`+addr(b)+`"]}`, body)
	require.Eventually(t, func() bool {
		st := status(t, srv.URL)
		return len(st) == 2 && st[addr(a)].Healthy && st[addr(c)].Healthy
	}, wait, 5*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 3, "c": 3}, spread(t, srv.URL, 6))

	bad := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodDelete, "/lb/backends/" + addr(b), "", http.StatusNotFound},
		{http.MethodPost, "/lb/backends/nohost", "", http.StatusBadRequest},
		{http.MethodPut, "/lb/backends", `{"a":1}`, http.StatusBadRequest},
		{http.MethodPut, "/lb/backends", `["nohost"]`, http.StatusBadRequest},
	}
	for _, tt := range bad {
		code, body := do(t, tt.method, srv.URL+tt.path, tt.body)
		assert.Equal(t, tt.want, code, "%s %s: %s", tt.method, tt.path, body)
	}
	assert.Len(t, status(t, srv.URL), 2, "bad requests change nothing")
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name         string
		drainTimeout time.Duration
		release      bool
		want         string
	}{
		{"in-flight finishes", wait, true, "OK: "},
		{"drain timeout cuts it", time.Millisecond, false, "Service Unavailable: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			cfg := testConfig(a, b)
			cfg.DrainTimeout = tt.drainTimeout
			l, srv := serve(t, cfg)
			l.checkRound(context.Background())
			name, answer := hold(t, srv.URL, a, b)
			busy, idle := byName(name, a, b)

			require.True(t, l.remove(addr(busy)))
			if tt.release {
				st := status(t, srv.URL)[addr(busy)]
				assert.Equal(t, StateDraining, st.State)
				assert.Equal(t, int64(1), st.InFlight)
				assert.False(t, st.Healthy)
				assert.Equal(t, map[string]int{idle.name: 6}, spread(t, srv.URL, 6), "nothing new to a draining backend")
				close(busy.release)
			}
			assert.Contains(t, <-answer, tt.want)
			require.Eventually(t, func() bool { return stateOf(l, addr(busy)) == "absent" }, wait, 5*time.Millisecond)
			assert.Equal(t, len(states), count(l.m.bState), "only the remaining backend's state series are left")
		})
	}
}
