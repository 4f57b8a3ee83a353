package nodekit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/faultline/faultline/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlags(t *testing.T) {
	t.Setenv(EnvNode, "web-us-east-1")
	t.Setenv(EnvRegion, "us-east")
	tests := []struct {
		name    string
		args    []string
		want    Flags
		wantErr bool
	}{
		{"env defaults", nil, Flags{":8080", "web-us-east-1", "us-east"}, false},
		{"flags override", []string{"--listen", "127.0.0.1:9", "--node", "n", "--region", "r"}, Flags{"127.0.0.1:9", "n", "r"}, false},
		{"unknown flag", []string{"--nope"}, Flags{}, true},
		{"help", []string{"-h"}, Flags{}, true},
		{"stray arg", []string{"extra"}, Flags{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Flags
			err := Parse(NewFlagSet("test", &f), tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, nodes.ErrUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f)
		})
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestServeLifecycle(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	role := http.NewServeMux()
	role.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	var warm atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer("", role, NewRegistry(), WithListener(ln), WithReadiness(func() error {
		if !warm.Load() {
			return errors.New("warming up")
		}
		return nil
	}))

	code, _ := get(t, srv.Handler(), "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not serving yet")

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "readiness check fails")

	warm.Store(true)
	resp, err = http.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", string(body))

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "go_goroutines")
	assert.Contains(t, string(body), "process_cpu_seconds_total")

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-entered
	cancel()
	require.Eventually(t, func() bool {
		code, _ := get(t, srv.Handler(), "/healthz")
		return code == http.StatusServiceUnavailable
	}, testWait, pollEvery, "healthz must report draining")
	close(release)
	assert.Equal(t, "done", <-slow, "in-flight request drains")
	require.NoError(t, <-served)
}

func TestServeListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = Serve(context.Background(), NewServer(ln.Addr().String(), http.NotFoundHandler(), NewRegistry()))
	require.ErrorContains(t, err, "listen")
}

func TestHTTPMetrics(t *testing.T) {
	reg := NewRegistry()
	m := NewHTTPMetrics(reg, "test")
	h := m.Wrap("teapot", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for range 3 {
		get(t, h, "/x")
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var found bool
	for _, mf := range mfs {
		if mf.GetName() == "test_http_requests_total" {
			found = true
			require.Len(t, mf.GetMetric(), 1)
			assert.Equal(t, 3.0, mf.GetMetric()[0].GetCounter().GetValue())
			labels := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			assert.Equal(t, map[string]string{"route": "teapot", "code": "418"}, labels)
		}
	}
	assert.True(t, found)
}
