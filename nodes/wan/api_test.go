package wan

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	e, _ := newTestEngine(t, nil)
	srv := httptest.NewServer(NewHandler(e))
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	code, body := do("GET", "/healthz", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	code, body = do("GET", "/links", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, "[]", body)

	code, _ = do("PUT", "/links", `[{"from":"a","to":"b","delay":"35ms","bandwidth":"10mbit"}]`)
	assert.Equal(t, 200, code)
	assert.Equal(t, []LinkSpec{{From: "a", To: "b", Link: Link{Delay: 35 * time.Millisecond, BandwidthBps: 10e6}}}, e.Links())

	for _, bad := range []string{`[{"from":"a","to":"nowhere"}]`, `{`, `[{"from":"a","to":"b","extra":1}]`} {
		code, _ = do("PUT", "/links", bad)
		assert.Equal(t, 400, code, bad)
	}
	assert.Len(t, e.Links(), 1, "a rejected PUT changes nothing")

	code, body = do("POST", "/partitions", `{"src":["a","10.2.0.7"],"dst":["10.2.0.0/24"]}`)
	require.Equal(t, 201, code, body)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	parts := e.Partitions()
	require.Len(t, parts, 1)
	assert.Equal(t, created.ID, parts[0].ID)
	assert.Equal(t, "10.1.0.0/24", parts[0].Src[0].String())
	assert.Equal(t, "10.2.0.7/32", parts[0].Src[1].String())

	code, _ = do("POST", "/partitions", `{"src":["mars"],"dst":["a"]}`)
	assert.Equal(t, 400, code)
	code, _ = do("POST", "/partitions", `{"src":[],"dst":["a"]}`)
	assert.Equal(t, 400, code)

	code, body = do("GET", "/partitions", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, created.ID)

	code, _ = do("DELETE", "/partitions/"+created.ID, "")
	assert.Equal(t, 204, code)
	code, _ = do("DELETE", "/partitions/"+created.ID, "")
	assert.Equal(t, 404, code)

	_, _ = do("POST", "/partitions", `{"src":["a"],"dst":["b"]}`)
	_, _ = do("POST", "/partitions", `{"src":["b"],"dst":["a"]}`)
	code, _ = do("DELETE", "/partitions", "")
	assert.Equal(t, 204, code)
	assert.Empty(t, e.Partitions())

	code, body = do("GET", "/stats", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, "[]", body)
}

func TestMetricsExposeLinkCounters(t *testing.T) {
	e, _ := newTestEngine(t, nil)
	require.NoError(t, e.SetLinks([]LinkSpec{{From: "a", To: "b", Link: Link{Delay: time.Millisecond}}}))
	srv := httptest.NewServer(NewHandler(e))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "process_cpu_seconds_total")
	// Per-link series appear once a link has carried a packet (see Stats).
	if len(e.Stats()) > 0 {
		assert.Contains(t, string(body), "wan_forwarded_packets_total")
	}
}
