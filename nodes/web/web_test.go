package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(Handler("web-eu-west-1", "eu-west", reg))
	defer srv.Close()

	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantType                 string
		wantBody                 []string
		wantHeader               map[string]string
	}{
		{name: "index", method: "GET", path: "/", wantCode: 200, wantType: "text/html; charset=utf-8",
			wantBody: []string{"<title>faultline — web-eu-west-1</title>", "eu-west", `href="/static/app.css"`}},
		{name: "css", method: "GET", path: "/static/app.css", wantCode: 200, wantType: "text/css; charset=utf-8",
			wantBody: []string{"font-family"}, wantHeader: map[string]string{"Cache-Control": "public, max-age=60"}},
		{name: "hello", method: "GET", path: "/api/hello", wantCode: 200, wantType: "application/json",
			wantBody: []string{`"node":"web-eu-west-1"`, `"region":"eu-west"`}},
		{name: "echo", method: "POST", path: "/api/echo", body: `{"a":[1,2,"x"]}`, wantCode: 200,
			wantType: "application/json", wantBody: []string{`{"a":[1,2,"x"]}`}},
		{name: "echo not json", method: "POST", path: "/api/echo", body: `{"a":`, wantCode: 400},
		{name: "echo too big", method: "POST", path: "/api/echo", body: `"` + strings.Repeat("x", maxEchoBody) + `"`, wantCode: 413},
		{name: "echo wrong method", method: "GET", path: "/api/echo", wantCode: 405},
		{name: "hello wrong method", method: "POST", path: "/api/hello", wantCode: 405},
		{name: "unknown", method: "GET", path: "/nope", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, resp.StatusCode, string(body))
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, resp.Header.Get("Content-Type"))
			}
			for _, want := range tt.wantBody {
				assert.Contains(t, string(body), want)
			}
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, resp.Header.Get(k))
			}
		})
	}

	resp, err := srv.Client().Get(srv.URL + "/api/hello")
	require.NoError(t, err)
	var h Hello
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	resp.Body.Close()
	assert.WithinDuration(t, time.Now(), h.Time, time.Minute)

	assert.Equal(t, 2.0, counter(t, reg, "hello", "200"))
	assert.Equal(t, 1.0, counter(t, reg, "echo", "400"))
}

// counter finds web_http_requests_total{route,code} in reg.
func counter(t *testing.T, reg *prometheus.Registry, route, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "web_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["route"] == route && l["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no web_http_requests_total{route=%q,code=%q}", route, code)
	return 0
}

func TestRunBadFlags(t *testing.T) {
	err := Run(context.Background(), []string{"--bogus"})
	require.ErrorIs(t, err, nodes.ErrUsage)
}
