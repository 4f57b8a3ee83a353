package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lg "github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type target struct {
	*httptest.Server
	hits atomic.Int64
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		_, _ = io.Copy(w, r.Body) // the api workload checks its echoes
	}))
	t.Cleanup(tg.Close)
	return tg
}

func newRole(t *testing.T, stop context.Context) (*lg.Client, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(Handler(stop, reg))
	t.Cleanup(srv.Close)
	return &lg.Client{BaseURL: srv.URL, HTTP: srv.Client()}, reg
}

func TestRoundTrip(t *testing.T) {
	tg := newTarget(t)
	client, reg := newRole(t, context.Background())

	var tot lg.Totals
	final, err := client.Attack(context.Background(),
		lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 50, Duration: 1500 * time.Millisecond},
		func(b lg.Bucket) { require.NoError(t, tot.Add(b)) })
	require.NoError(t, err)
	assert.EqualValues(t, 75, final.Requests)
	assert.Equal(t, final.Requests, tot.Requests, "streamed buckets add up to the final count")
	assert.Equal(t, final.Requests, tg.hits.Load())
	assert.Equal(t, tot.Requests, tot.Latency.TotalCount())
	assert.Positive(t, final.CPUSeconds)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "loadgen_requests_total" {
			assert.EqualValues(t, 75, mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
}

// Canceling the controller's context must stop the remote attack, not just
// the stream: the target stops receiving requests long before the minute.
func TestCancelStopsRemoteAttack(t *testing.T) {
	tg := newTarget(t)
	client, reg := newRole(t, context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	_, err := client.Attack(ctx, lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 100, Duration: time.Minute},
		func(lg.Bucket) { cancel() })
	require.ErrorIs(t, err, context.Canceled)

	require.Eventually(t, func() bool { return gauge(t, reg, "loadgen_attack_running") == 0 },
		10*time.Second, 10*time.Millisecond, "remote attack ends")
	stopped := tg.hits.Load()
	assert.Less(t, stopped, int64(6000))
	// With the attack over, a second one is accepted (no 409).
	final, err := client.Attack(context.Background(), lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 10, Duration: 200 * time.Millisecond}, func(lg.Bucket) {})
	require.NoError(t, err)
	assert.EqualValues(t, 2, final.Requests)
	assert.Equal(t, stopped+2, tg.hits.Load(), "nothing more from the canceled attack")
}

func TestRoleShutdownEndsAttack(t *testing.T) {
	tg := newTarget(t)
	stop, shutdown := context.WithCancel(context.Background())
	client, _ := newRole(t, stop)
	final, err := client.Attack(context.Background(), lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 100, Duration: time.Minute},
		func(lg.Bucket) { shutdown() })
	require.Error(t, err)
	assert.Contains(t, final.Error, "stopped early")
	assert.Less(t, final.Requests, int64(6000))
}

func TestRejects(t *testing.T) {
	tg := newTarget(t)
	client, _ := newRole(t, context.Background())

	_, err := client.Attack(context.Background(), lg.AttackSpec{Target: tg.URL, Workload: "nope", Rate: 1, Duration: time.Second}, func(lg.Bucket) {})
	require.ErrorContains(t, err, "400")

	resp, err := http.Post(client.BaseURL+lg.AttackPath, "application/json", strings.NewReader(`{"Target":"http://x","Bogus":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "unknown fields are rejected")

	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var once atomic.Bool
		_, err := client.Attack(ctx, lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 10, Duration: time.Minute}, func(lg.Bucket) {
			if once.CompareAndSwap(false, true) {
				close(started)
			}
		})
		done <- err
	}()
	<-started
	_, err = client.Attack(context.Background(), lg.AttackSpec{Target: tg.URL, Workload: "api", Rate: 1, Duration: time.Second}, func(lg.Bucket) {})
	require.ErrorContains(t, err, "409")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestRunBadFlags(t *testing.T) {
	require.ErrorIs(t, Run(context.Background(), []string{"--nope"}), nodes.ErrUsage)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
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

// The closed model's figures and the per-second users and targets survive
// the trip through the role's stream.
func TestRoundTripModels(t *testing.T) {
	tg := newTarget(t)
	client, _ := newRole(t, context.Background())
	tests := []struct {
		name  string
		spec  lg.AttackSpec
		check func(t *testing.T, f lg.Final, tot lg.Totals)
	}{
		{"step", lg.AttackSpec{Step: &lg.Step{From: 20, By: 20, Max: 60, Every: 500 * time.Millisecond}}, func(t *testing.T, f lg.Final, tot lg.Totals) {
			assert.EqualValues(t, 10+20+30, f.Target)
			assert.Equal(t, f.Target, tot.Target)
			assert.Equal(t, f.Target, f.Requests)
		}},
		{"ramp", lg.AttackSpec{Ramp: &lg.Ramp{From: 0, To: 80}}, func(t *testing.T, f lg.Final, tot lg.Totals) {
			assert.EqualValues(t, 60, f.Target)
			assert.Equal(t, f.Target, tot.Target)
		}},
		{"users", lg.AttackSpec{Users: &lg.Users{N: 3, Think: 50 * time.Millisecond, Exponential: true, Seed: 1}}, func(t *testing.T, f lg.Final, tot lg.Totals) {
			assert.Equal(t, 3, f.Users)
			assert.Equal(t, 3, tot.Users)
			assert.Positive(t, f.Throughput)
			assert.Positive(t, f.MeanThink)
			assert.Zero(t, tot.Target)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Target, spec.Workload, spec.Duration = tg.URL, "api", 1500*time.Millisecond
			var tot lg.Totals
			final, err := client.Attack(context.Background(), spec, func(b lg.Bucket) { require.NoError(t, tot.Add(b)) })
			require.NoError(t, err)
			assert.Equal(t, final.Requests, tot.Requests)
			assert.Zero(t, tot.Errors)
			tt.check(t, final, tot)
		})
	}
}
