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

// hitWith sends GET /x with client and returns the backend's name.
func hitWith(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url + "/x")
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
		{"on: one client stays on one backend", "pin", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
			cfg := testConfig(a, b, c)
			cfg.AffinityCookie = tt.cookie
			l, srv := serve(t, cfg)
			l.checkRound(context.Background())
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			client := &http.Client{Jar: jar}
			seen := map[string]bool{}
			for range 6 {
				seen[hitWith(t, client, srv.URL)] = true
			}
			assert.Len(t, seen, tt.want)
		})
	}
}

// A pinned backend that leaves the rotation loses its clients to the
// others, which they are then pinned to: the stateful web tier's failure.
func TestAffinityMovesOffADownBackend(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := testConfig(a, b)
	cfg.AffinityCookie = "pin"
	l, srv := serve(t, cfg)
	ctx := context.Background()
	l.checkRound(ctx)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	first := hitWith(t, client, srv.URL)
	sick := map[string]*fakeBackend{"a": a, "b": b}[first]
	sick.sick.Store(true)
	for range cfg.Fall {
		l.checkRound(ctx)
	}
	require.Equal(t, StateDown, stateOf(l, addr(sick)))
	moved := hitWith(t, client, srv.URL)
	assert.NotEqual(t, first, moved)
	sick.sick.Store(false)
	l.checkRound(ctx)
	require.Equal(t, StateUp, stateOf(l, addr(sick)))
	assert.Equal(t, moved, hitWith(t, client, srv.URL), "re-pinned: the recovered backend does not get the client back")
}
