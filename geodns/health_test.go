package geodns

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// steppingClock advances one second per reading so event times are known.
func steppingClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

// servedFor asks over UDP which LB a client in ecs gets.
func servedFor(t *testing.T, addr, ecs string) string {
	t.Helper()
	r := exchange(t, "udp", addr, withECS(newQuery("app.faultline.test.", dns.TypeA), ecs))
	require.Equal(t, dns.RcodeSuccess, r.Rcode, "never SERVFAIL")
	got := answerAddrs(r)
	require.Len(t, got, 1)
	return got[0]
}

func TestFailoverAndFailback(t *testing.T) {
	p := newFakeProber()
	s, err := NewServer(testConfig(), WithProber(p), WithClock(steppingClock()))
	require.NoError(t, err)
	addr := startServer(t, s)
	ctx := context.Background()
	clients := map[string]string{"us-east": "10.1.0.0/24", "eu-west": "10.2.0.0/24", "ap-south": "10.3.0.0/24"}
	expect := func(step string, want map[string]string) {
		t.Helper()
		for client, ecs := range clients {
			assert.Equal(t, lbOf[want[client]], servedFor(t, addr, ecs), "%s: client %s", step, client)
		}
	}
	own := map[string]string{"us-east": "us-east", "eu-west": "eu-west", "ap-south": "ap-south"}

	expect("start", own)
	s.CheckNow(ctx)
	expect("all pass", own)

	for _, tc := range []struct {
		down string
		want map[string]string
	}{
		{"us-east", map[string]string{"us-east": "eu-west", "eu-west": "eu-west", "ap-south": "ap-south"}},
		{"eu-west", map[string]string{"us-east": "us-east", "eu-west": "us-east", "ap-south": "ap-south"}},
		{"ap-south", map[string]string{"us-east": "us-east", "eu-west": "eu-west", "ap-south": "eu-west"}},
	} {
		t.Run(tc.down, func(t *testing.T) {
			p.set(tc.down, true)
			s.CheckNow(ctx)
			expect("one failure is below fall=2", own)
			s.CheckNow(ctx)
			expect("down after fall=2", tc.want)
			assert.Equal(t, 0.0, gaugeValue(t, s.metrics.healthy.WithLabelValues(tc.down)))

			p.set(tc.down, false)
			s.CheckNow(ctx)
			expect("one success is below rise=2", tc.want)
			s.CheckNow(ctx)
			expect("back after rise=2", own)
			assert.Equal(t, 1.0, gaugeValue(t, s.metrics.healthy.WithLabelValues(tc.down)))
			assert.Equal(t, 1.0, counterValue(s.metrics.healthChanges.WithLabelValues(tc.down, "down")))
			assert.Equal(t, 1.0, counterValue(s.metrics.healthChanges.WithLabelValues(tc.down, "up")))
		})
	}

	st := s.State()
	require.Len(t, st.Events, 6)
	for i, e := range st.Events {
		assert.Equal(t, i%2 == 1, e.Healthy, "events alternate down/up")
		if i > 0 {
			assert.True(t, e.Time.After(st.Events[i-1].Time), "events in time order")
		}
		if e.Healthy {
			assert.True(t, e.LastOK.IsZero(), "only a down event says when the region was last seen alive")
			continue
		}
		// Two rounds failed (fall=2) after the round that last passed.
		assert.True(t, e.LastOK.Before(e.Time), "alive before it went down")
		if i > 1 {
			assert.True(t, e.LastOK.After(st.Events[i-2].Time), "the region passed rounds after the previous down")
		}
	}
	assert.Equal(t, "us-east", st.Events[0].Region)
	assert.Contains(t, st.Events[0].Reason, "connection refused")
}

func TestAllUnhealthyAnswersOwnRegion(t *testing.T) {
	p := newFakeProber()
	s, err := NewServer(testConfig(), WithProber(p))
	require.NoError(t, err)
	addr := startServer(t, s)
	for _, r := range []string{"us-east", "eu-west", "ap-south"} {
		p.set(r, true)
	}
	for range 2 {
		s.CheckNow(context.Background())
	}
	for _, r := range s.State().Regions {
		require.False(t, r.Healthy)
	}
	assert.Equal(t, lbOf["us-east"], servedFor(t, addr, "10.1.0.0/24"))
	assert.Equal(t, lbOf["eu-west"], servedFor(t, addr, "10.2.0.0/24"))
	assert.Equal(t, lbOf["ap-south"], servedFor(t, addr, "10.3.0.0/24"))
	assert.Equal(t, lbOf["us-east"], servedFor(t, addr, "192.0.2.0/24"), "unknown clients: the default region")
}

func TestHTTPProber(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	region := Region{Name: "r", LB: strings.TrimPrefix(srv.URL, "http://")}
	p := NewHTTPProber()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, p.Probe(ctx, region))
	status.Store(http.StatusServiceUnavailable)
	err := p.Probe(ctx, region)
	require.ErrorContains(t, err, "503")

	srv.Close()
	require.Error(t, p.Probe(ctx, region), "nothing listening")
}

func TestRunHealthChecksStopsWithContext(t *testing.T) {
	p := newFakeProber()
	cfg := testConfig()
	cfg.Check.Interval = time.Millisecond
	s, err := NewServer(cfg, WithProber(p))
	require.NoError(t, err)
	p.set("eu-west", true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunHealthChecks(ctx) }()
	require.Eventually(t, func() bool { return !s.State().Regions[1].Healthy }, 30*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestHTTPEndpoints(t *testing.T) {
	p := newFakeProber()
	s, err := NewServer(testConfig(), WithProber(p))
	require.NoError(t, err)
	p.set("ap-south", true)
	s.CheckNow(context.Background())
	s.CheckNow(context.Background())
	// One query so that the answer counters have a sample.
	w := &fakeWriter{remote: udpFrom("10.3.1.1")}
	s.ServeDNS(w, newQuery("app.faultline.test.", dns.TypeA))

	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code)

	code, body := get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `geodns_answers_total{client_region="ap-south",served_region="eu-west"} 1`)
	assert.Contains(t, body, `geodns_region_healthy{region="ap-south"} 0`)
	assert.Contains(t, body, `geodns_health_changes_total{region="ap-south",to="down"} 1`)
	assert.Contains(t, body, `geodns_queries_total{qtype="A",rcode="NOERROR"} 1`)

	code, body = get("/geodns/state")
	assert.Equal(t, http.StatusOK, code)
	var st State
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, map[string]string{"us-east": "us-east", "eu-west": "eu-west", "ap-south": "eu-west", "unknown": "us-east"}, st.Mapping)
	require.Len(t, st.Events, 1)
	assert.Equal(t, "ap-south", st.Events[0].Region)
	assert.False(t, st.Events[0].Healthy)
	assert.False(t, st.Events[0].Time.IsZero())
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}
