package lb

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionBackend answers with its name; /login also sets a session
// cookie, as the web role does.
func sessionBackend(t *testing.T, name string) *fakeBackend {
	b := newBackend(t, name)
	inner := b.Config.Handler
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: name})
		}
		inner.ServeHTTP(w, r)
	})
	return b
}

// hitWith sends GET path with client and returns the backend's name.
func hitWith(t *testing.T, client *http.Client, url string, path ...string) string {
	t.Helper()
	p := "/x"
	if len(path) > 0 {
		p = path[0]
	}
	resp, err := client.Get(url + p)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return strings.Fields(string(body))[0]
}

func TestAffinityCookie(t *testing.T) {
	tests := []struct {
		name   string
		cookie string
		// distinct backends 6 requests of one client reach
		want int
	}{
		{"off: round robin over all", "", 3},
		{"on: one client stays on the backend that started its session", "pin", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := sessionBackend(t, "a"), sessionBackend(t, "b"), sessionBackend(t, "c")
			cfg := testConfig(a, b, c)
			cfg.AffinityCookie = tt.cookie
			l, srv := serve(t, cfg)
			l.checkRound(context.Background())
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			client := &http.Client{Jar: jar}
			seen := map[string]bool{hitWith(t, client, srv.URL, "/login"): true}
			for range 5 {
				seen[hitWith(t, client, srv.URL)] = true
			}
			assert.Len(t, seen, tt.want)
		})
	}
}

// A pinned backend that leaves the rotation loses its clients to the
// others, which they are then pinned to: the stateful web tier's failure.
func TestAffinityMovesOffADownBackend(t *testing.T) {
	a, b := sessionBackend(t, "a"), sessionBackend(t, "b")
	cfg := testConfig(a, b)
	cfg.AffinityCookie = "pin"
	l, srv := serve(t, cfg)
	ctx := context.Background()
	l.checkRound(ctx)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	first := hitWith(t, client, srv.URL, "/login")
	require.Equal(t, first, hitWith(t, client, srv.URL))
	sick := map[string]*fakeBackend{"a": a, "b": b}[first]
	sick.sick.Store(true)
	for range cfg.Fall {
		l.checkRound(ctx)
	}
	require.Equal(t, StateDown, stateOf(l, addr(sick)))
	moved := hitWith(t, client, srv.URL, "/login") // the user logs in again elsewhere
	assert.NotEqual(t, first, moved)
	sick.sick.Store(false)
	l.checkRound(ctx)
	require.Equal(t, StateUp, stateOf(l, addr(sick)))
	assert.Equal(t, moved, hitWith(t, client, srv.URL), "re-pinned: the recovered backend does not get the client back")
}

// Answers that start no session carry no pin, so a CDN may cache them.
func TestAffinityLeavesCacheableAnswersAlone(t *testing.T) {
	a := sessionBackend(t, "a")
	cfg := testConfig(a)
	cfg.AffinityCookie = "pin"
	l, srv := serve(t, cfg)
	l.checkRound(context.Background())
	for _, tc := range []struct {
		path string
		want int // Set-Cookie headers
	}{{"/static/app.css", 0}, {"/login", 2}} {
		resp, err := http.Get(srv.URL + tc.path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Len(t, resp.Header.Values("Set-Cookie"), tc.want, tc.path)
	}
}
