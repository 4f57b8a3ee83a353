package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The interactive response-time law X = N/(R+Z): 50 users thinking 1 s
// against a 100 ms handler. Z is the mean of the think times the users drew,
// which is what the law relates; with exponential draws it varies by a few
// percent from 1 s between seeds, and X with it.
func TestClosedModelResponseTimeLaw(t *testing.T) {
	for _, exp := range []bool{true, false} {
		t.Run(fmt.Sprintf("exponential=%v", exp), func(t *testing.T) { testResponseTimeLaw(t, exp) })
	}
}

func testResponseTimeLaw(t *testing.T, exponential bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		_, _ = io.Copy(w, r.Body) // echo for the api workload's writes
	}))
	defer srv.Close()

	const n, dur = 50, 7 * time.Second
	tot, buckets, final, err := collect(t, context.Background(), AttackSpec{
		Target: srv.URL, Workload: "api", Duration: dur,
		Users: &Users{N: n, Think: time.Second, Exponential: exponential, Seed: 1},
	})
	require.NoError(t, err)
	x, r, z := final.Throughput, final.MeanResponse, final.MeanThink
	law := n / (r + z)
	t.Logf("N=%d X=%.2f/s R=%.1fms Z=%.3fs N/(R+Z)=%.2f/s (%+.1f%%), cpu %.2fs", n, x, r*1000, z, law, (x/law-1)*100, final.CPUSeconds)
	assert.InEpsilon(t, law, x, 0.05, "X ≈ N/(R+Z)")
	assert.InDelta(t, 1.0, z, 0.25, "think times drawn around 1 s")
	assert.GreaterOrEqual(t, r, 0.1, "no response beats the handler")
	assert.Zero(t, tot.Errors, "%v", tot.ErrorsByKind)
	assert.Equal(t, final.Requests, tot.Requests)
	assert.Equal(t, n, final.Users)
	assert.InDelta(t, float64(final.Requests)/dur.Seconds(), x, 1e-9)
	assert.Zero(t, tot.Target, "the closed model has no target rate")

	users := map[int64]int{}
	for _, b := range buckets {
		users[b.Second] = max(users[b.Second], b.Users)
	}
	active := 0
	for _, u := range users {
		if u == n {
			active++
		}
	}
	assert.Contains(t, []int{7, 8}, active, "every second of the run reports its users: %v", users)
}

func TestUserScripts(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<link rel="stylesheet" href="/static/app.css"><script src="static/app.js"></script>`+
				`<img alt="x" src="http://elsewhere.invalid/x.png"><a href="/not-an-asset">`)
		case "/api/echo":
			if r.Header.Get("X-Break") == "" {
				_, _ = io.Copy(w, r.Body)
			}
		}
	}))
	defer srv.Close()

	tests := []struct {
		workload string
		want     []string
	}{
		{"browse", []string{"GET /", "GET /static/app.css", "GET /static/app.js"}},
		{"api", []string{"GET /api/hello", "POST /api/echo"}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			clear(seen)
			tot, _, final, err := collect(t, context.Background(), AttackSpec{
				Target: srv.URL, Workload: tt.workload, Duration: 300 * time.Millisecond,
				Users: &Users{N: 2, Think: 10 * time.Millisecond},
			})
			require.NoError(t, err)
			require.Positive(t, final.Requests)
			assert.Zero(t, tot.Errors, "%v", tot.ErrorsByKind)
			mu.Lock()
			defer mu.Unlock()
			assert.ElementsMatch(t, tt.want, keys(seen), "only the page's own assets, on its own host")
		})
	}
}

// A wrong answer is an error of kind check, not a success.
func TestCheckFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"seq":-1}`)
	}))
	defer srv.Close()
	tot, _, _, err := collect(t, context.Background(), AttackSpec{
		Target: srv.URL, Workload: "api", Duration: 300 * time.Millisecond,
		Users: &Users{N: 1, Think: 5 * time.Millisecond},
	})
	require.NoError(t, err)
	require.Positive(t, tot.Errors)
	assert.Equal(t, map[string]int64{KindCheck: tot.Errors}, tot.ErrorsByKind)
	assert.InDelta(t, tot.Requests/(apiReadsPerWrite+1), tot.Errors, 1, "every echo, no read")
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
