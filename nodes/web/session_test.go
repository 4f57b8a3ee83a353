package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	lg "github.com/faultline/faultline/loadgen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSessionRoutes(t *testing.T) {
	srv := httptest.NewServer(Handler("web-1", "r", prometheus.NewRegistry()))
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	do := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}

	steps := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", MePath, "", 401, "not logged in"},
		{"POST", LoginPath, `{"user":""}`, 400, "want"},
		{"POST", LoginPath, `{"user":"` + strings.Repeat("x", maxUserName+1) + `"}`, 400, "want"},
		{"POST", LoginPath, `nope`, 400, "want"},
		{"POST", LoginPath, `{"user":"ada"}`, 200, `{"user":"ada"}`},
		{"GET", MePath, "", 200, `{"user":"ada"}`},
		{"POST", LoginPath, `{"user":"bob"}`, 200, `{"user":"bob"}`},
		{"GET", MePath, "", 200, `{"user":"bob"}`},
		{"POST", LogoutPath, "", 204, ""},
		{"GET", MePath, "", 401, "not logged in"},
		{"POST", LogoutPath, "", 204, ""},
	}
	for i, s := range steps {
		code, body := do(s.method, s.path, s.body)
		assert.Equal(t, s.code, code, "step %d %s %s: %s", i, s.method, s.path, body)
		assert.Contains(t, body, s.want, "step %d", i)
	}

	// A token from elsewhere is no session.
	req, err := http.NewRequest("GET", srv.URL+MePath, nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: "forged"})
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
}

// The loadgen's session workload against the web role: every step of every
// session sees the user it logged in as, and sessions end with a logout.
func TestSessionWorkload(t *testing.T) {
	store := NewMemSessions()
	srv := httptest.NewServer(Handler("web-1", "r", prometheus.NewRegistry(), WithSessions(store)))
	defer srv.Close()

	var tot lg.Totals
	final, err := lg.Attack(context.Background(), lg.AttackSpec{
		Target: srv.URL, Workload: "session", Duration: time.Second,
		Users: &lg.Users{N: 20, Think: 10 * time.Millisecond, Exponential: true, Seed: 7},
	}, func(b lg.Bucket) { require.NoError(t, tot.Add(b)) })
	require.NoError(t, err)
	t.Logf("%d requests, %.0f/s, R %.1fms", final.Requests, final.Throughput, final.MeanResponse*1000)
	require.Greater(t, final.Requests, int64(100))
	assert.Zero(t, tot.Errors, "%v", tot.ErrorsByKind)
	store.mu.Lock()
	open := len(store.users)
	store.mu.Unlock()
	assert.LessOrEqual(t, open, 20, "at most one open session per user: the others logged out")
}

// A store that mixes up users is caught by the workload's checks.
type swappedSessions struct{ *MemSessions }

func (s swappedSessions) Lookup(ctx context.Context, token string) (string, error) {
	u, err := s.MemSessions.Lookup(ctx, token)
	return u + "-someone-else", err
}

func TestSessionWorkloadCatchesMixUps(t *testing.T) {
	srv := httptest.NewServer(Handler("web-1", "r", prometheus.NewRegistry(), WithSessions(swappedSessions{NewMemSessions()})))
	defer srv.Close()
	var tot lg.Totals
	_, err := lg.Attack(context.Background(), lg.AttackSpec{
		Target: srv.URL, Workload: "session", Duration: 300 * time.Millisecond,
		Users: &lg.Users{N: 2, Think: 5 * time.Millisecond},
	}, func(b lg.Bucket) { require.NoError(t, tot.Add(b)) })
	require.NoError(t, err)
	require.Positive(t, tot.Errors)
	assert.Equal(t, map[string]int64{lg.KindCheck: tot.Errors}, tot.ErrorsByKind)
}

func TestSessionPathsMatchLoadgen(t *testing.T) {
	assert.Equal(t, []string{lg.LoginPath, lg.LogoutPath, lg.MePath, lg.SessionCookie},
		[]string{LoginPath, LogoutPath, MePath, SessionCookie})
}
