package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/nodes/web"
)

// Stateful web nodes behind an lb with session affinity: users keep their
// sessions while their node lives; when it dies, each of its users who
// still needed the session loses it once (one 4xx), and nobody else does.
func TestSessionUsersOverAffinity(t *testing.T) {
	var nodes []*httptest.Server
	var addrs []string
	for _, name := range []string{"w1", "w2", "w3"} {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {}) // nodekit adds it in a real node
		mux.Handle("/", web.Handler(name, "r", prometheus.NewRegistry()))
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		nodes = append(nodes, s)
		addrs = append(addrs, s.Listener.Addr().String())
	}
	l, err := lb.New(lb.Config{Backends: addrs, HealthInterval: 50 * time.Millisecond, Fall: 1, Rise: 1,
		DialTimeout: time.Second, Timeout: 5 * time.Second, AffinityCookie: "pin"}, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Check(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return l.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	front := httptest.NewServer(l)
	t.Cleanup(front.Close)
	base, err := url.Parse(front.URL)
	require.NoError(t, err)

	const users = 30
	client := &http.Client{Timeout: 5 * time.Second}
	scripts := make([]script, users)
	for i := range scripts {
		scripts[i] = newSessionUser(base, i, nil)
	}
	kinds := map[string]int{}
	steps := func(n int) {
		for range n {
			for _, s := range scripts {
				if o := do(context.Background(), client, s); o.kind != "" {
					kinds[o.kind]++
				}
			}
		}
	}
	steps(12) // a few rounds: every user logged in, pinned
	require.Empty(t, kinds, "while every node lives, no session is lost")

	// Which users live on w1? Their pin names it.
	onW1 := 0
	for _, s := range scripts {
		if c := s.(*sessionUser).others["pin"]; c != nil && c.Value == addrs[0] {
			onW1++
		}
	}
	require.Positive(t, onW1)
	nodes[0].CloseClientConnections()
	nodes[0].Close()
	require.Eventually(t, func() bool {
		for _, st := range l.Status() {
			if st.Addr == addrs[0] {
				return st.State == lb.StateDown
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	steps(10) // two more rounds
	t.Logf("users on w1: %d; after its death: %v", onW1, kinds)
	assert.LessOrEqual(t, kinds[Kind4xx], onW1, "only w1's users lose sessions, each once")
	assert.Positive(t, kinds[Kind4xx])
}

// After a failed step (the node holding the session may have died) a
// session user asks who it is next instead of moving on, so a logout and a
// fresh login cannot hide the loss.
func TestSessionUserChecksItsSessionAfterAFailure(t *testing.T) {
	base, _ := url.Parse("http://app")
	u := newSessionUser(base, 1, nil).(*sessionUser)
	answer := func(code int, cookies ...*http.Cookie) *http.Response {
		r := &http.Response{StatusCode: code, Status: http.StatusText(code), Header: http.Header{}}
		for _, c := range cookies {
			r.Header.Add("Set-Cookie", c.String())
		}
		return r
	}
	_, err := u.next()
	require.NoError(t, err)
	require.NoError(t, u.check(answer(http.StatusOK, &http.Cookie{Name: SessionCookie, Value: "s1"}), nil))
	_, _ = u.next() // me
	require.NoError(t, u.check(answer(http.StatusOK), []byte(`{"user":"user-1-1"}`)))
	_, _ = u.next() // echo
	assert.Error(t, u.check(answer(http.StatusBadGateway), nil))
	assert.Equal(t, "me", sessionSteps[u.step], "a failure is followed by a session check")
	_, _ = u.next()
	assert.NoError(t, u.check(nil, nil), "no answer at all: the caller classifies the transport error")
	assert.Equal(t, "me", sessionSteps[u.step])
	_, _ = u.next()
	assert.ErrorContains(t, u.check(answer(http.StatusUnauthorized), nil), "session lost")
	assert.Equal(t, "login", sessionSteps[u.step])
}
