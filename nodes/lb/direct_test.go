package lb

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seenRequest is what a backend received.
type seenRequest struct {
	Method, RequestURI, Host string
	ContentLength            int64
	Header                   http.Header
}

// recorder is a backend that records each request but health checks,
// passes them to its handler, and counts the connections it accepted.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []seenRequest
	conns atomic.Int64
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{r.Method, r.RequestURI, r.Host, r.ContentLength, r.Header.Clone()})
		rec.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	rec.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.conns.Add(1)
		}
	}
	rec.Start()
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) last() seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.seen[len(rec.seen)-1]
}

func recorderLB(t *testing.T, rec *recorder) (*LB, *httptest.Server) {
	cfg := testConfig()
	cfg.Backends = []string{strings.TrimPrefix(rec.URL, "http://")}
	l, srv := serve(t, cfg)
	l.checkRound(context.Background())
	return l, srv
}

// The requests the lb forwards itself reach the backend as they did
// through httputil.ReverseProxy (which still forwards those with a body).
func TestDirectSendsWhatReverseProxySent(t *testing.T) {
	rec := newRecorder(t, nil)
	l, _ := recorderLB(t, rec)
	b := l.backends[0]
	tests := []struct {
		method, target string
		header         map[string]string
	}{
		{"GET", "/x", nil},
		{"GET", "/a%2Fb/c?q=1&r=%20", map[string]string{"User-Agent": "test/1", "Accept-Encoding": "br"}},
		{"GET", "/x?bad;semicolon=1&ok=2", nil},
		{"GET", "/x?", nil},
		{"HEAD", "/x", nil},
		{"DELETE", "/items/1", map[string]string{"Idempotency-Key": "k"}},
		{"OPTIONS", "/x", nil},
		{"POST", "/x", map[string]string{"Content-Length": "0"}},
		{"GET", "/x", map[string]string{
			"Connection":          "keep-alive, X-Private",
			"X-Private":           "secret",
			"Keep-Alive":          "timeout=5",
			"Proxy-Connection":    "keep-alive",
			"Proxy-Authorization": "Basic eA==",
			"Te":                  "trailers, deflate",
			"Trailer":             "X-T",
			"Forwarded":           "for=1.2.3.4",
			"X-Forwarded-For":     "1.2.3.4",
			"X-Forwarded-Host":    "evil",
			"X-Forwarded-Proto":   "https",
			"Cookie":              "a=1; b=2",
			"X-Multi":             "1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req := func() *http.Request {
				r := httptest.NewRequest(tt.method, "http://lb.example"+tt.target, nil)
				r.RemoteAddr = "10.1.2.3:4567"
				for k, v := range tt.header {
					r.Header.Set(k, v)
				}
				if tt.header["X-Multi"] != "" {
					r.Header.Add("X-Multi", "2")
				}
				return r
			}
			r := req()
			require.True(t, direct(r))
			w := httptest.NewRecorder()
			l.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			got := rec.last()

			w = httptest.NewRecorder()
			b.proxy.ServeHTTP(w, req())
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			want := rec.last()
			if _, asked := tt.header["Accept-Encoding"]; !asked && tt.method != http.MethodHead {
				// http.Transport asks for gzip (and would unzip) when the
				// client did not say; the lb passes on what the client said.
				assert.Equal(t, "gzip", want.Header.Get("Accept-Encoding"))
				want.Header.Del("Accept-Encoding")
			}
			assert.Equal(t, want, got)
			assert.Equal(t, "10.1.2.3", got.Header.Get("X-Forwarded-For"))
			assert.Equal(t, strings.TrimPrefix(rec.URL, "http://"), got.Host)
		})
	}
}

func TestDirectReusesConnections(t *testing.T) {
	rec := newRecorder(t, nil)
	_, srv := recorderLB(t, rec)
	before := rec.conns.Load() // the health check's
	for range 20 {
		code, body := hit(t, srv.URL+"/x")
		require.Equal(t, http.StatusOK, code, body)
	}
	assert.Equal(t, before+1, rec.conns.Load(), "one keep-alive connection for sequential requests")

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				code, body := hit(t, srv.URL+"/x")
				assert.Equal(t, http.StatusOK, code, body)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, rec.conns.Load(), before+8, "no more connections than concurrent requests")
}

func TestDirectClosesWhenTheBackendSaysSo(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	_, srv := recorderLB(t, rec)
	before := rec.conns.Load()
	for range 3 {
		resp, err := http.Get(srv.URL + "/x")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "bye", string(body))
		assert.False(t, resp.Close, "the backend's Connection header is hop-by-hop")
	}
	assert.Equal(t, before+3, rec.conns.Load())
}

// A backend that closed the lb's idle connections (it restarted, or timed
// them out) costs no request an error, whatever its method.
func TestDirectIdleConnectionClosedByTheBackend(t *testing.T) {
	rec := newRecorder(t, nil)
	l, srv := recorderLB(t, rec)
	b := l.backends[0]
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		code, _ := do(t, method, srv.URL+"/x", "")
		require.Equal(t, http.StatusOK, code)
		rec.CloseClientConnections()
		require.Eventually(t, func() bool { // the FIN has arrived
			b.pool.mu.Lock()
			defer b.pool.mu.Unlock()
			return len(b.pool.idle) == 1 && !b.pool.idle[0].alive()
		}, wait, time.Millisecond)
		code, body := do(t, method, srv.URL+"/x", "")
		assert.Equal(t, http.StatusOK, code, "%s: %s", method, body)
	}
	assert.Zero(t, value(t, b.m.errors))
}

// When the backend closes a reused connection after the peek, a GET is sent
// again on a new connection; the failure is not the backend's error.
func TestDirectReplaysAGetOnAStaleConnection(t *testing.T) {
	var n atomic.Int64
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 { // the second request: drop the connection unanswered
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	})
	l, srv := recorderLB(t, rec)
	code, _ := hit(t, srv.URL+"/x")
	require.Equal(t, http.StatusOK, code)
	code, body := hit(t, srv.URL+"/x")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, int64(3), n.Load())
	assert.Zero(t, value(t, l.backends[0].m.errors))

	// Not a POST: the backend may have acted on it.
	n.Store(0)
	code, _ = do(t, http.MethodPost, srv.URL+"/x", "")
	require.Equal(t, http.StatusOK, code)
	code, _ = do(t, http.MethodPost, srv.URL+"/x", "")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Equal(t, int64(2), n.Load())
	assert.Equal(t, float64(1), value(t, l.backends[0].m.errors))
}

func TestDirectAnswers(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "final")
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set("Connection", "X-Hop")
			w.Header().Set("X-Hop", "1")
			w.Header().Set("Keep-Alive", "timeout=1")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	})
	_, srv := recorderLB(t, rec)

	var hints []int
	ctx := withEarlyHints(context.Background(), &hints)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hints", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "final", string(body))
	assert.Equal(t, []int{http.StatusEarlyHints}, hints)

	resp, err = http.Get(srv.URL + "/trailers")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "body", string(body))
	assert.Equal(t, "42", resp.Trailer.Get("X-Sum"))
	assert.Empty(t, resp.Header.Get("X-Hop"), "named by Connection")
	assert.Empty(t, resp.Header.Get("Keep-Alive"))

	resp, err = http.Head(srv.URL + "/x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, int64(5), resp.ContentLength)

	code, body2 := hit(t, srv.URL+"/nocontent")
	assert.Equal(t, http.StatusNoContent, code)
	assert.Empty(t, body2)
}

func withEarlyHints(ctx context.Context, codes *[]int) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			*codes = append(*codes, code)
			return nil
		},
	})
}

// A body of unknown length reaches the client as it comes, not when the
// backend is done.
func TestDirectStreams(t *testing.T) {
	release := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	_, srv := recorderLB(t, rec)
	resp, err := http.Get(srv.URL + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "first\n", line)
	close(release)
}

// A client that leaves ends its request at the backend too, and it is not
// the backend's error.
func TestDirectClientGone(t *testing.T) {
	gone := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(gone)
		case <-time.After(wait):
		}
	})
	l, srv := recorderLB(t, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	_, err := http.DefaultClient.Do(req)
	require.Error(t, err)
	select {
	case <-gone:
	case <-time.After(wait):
		t.Fatal("the backend's request was not cancelled")
	}
	b := l.backends[0]
	require.Eventually(t, func() bool { return b.inflight.Load() == 0 }, wait, time.Millisecond)
	assert.Zero(t, value(t, b.m.errors))
	assert.Zero(t, value(t, b.m.ejections))
}

// Requests with a body still go through ReverseProxy, body and all.
func TestBodiesGoThroughReverseProxy(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	_, srv := recorderLB(t, rec)
	code, body := do(t, http.MethodPost, srv.URL+"/echo", "payload")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "payload", body)
	assert.Equal(t, int64(7), rec.last().ContentLength)
	assert.False(t, direct(httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))))
	up := httptest.NewRequest(http.MethodGet, "/ws", nil)
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "websocket")
	assert.False(t, direct(up))
}

func TestPoolExpire(t *testing.T) {
	p := newPool()
	var conns []*bconn
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c2.Close() })
		pc, ok := p.add(c1)
		require.True(t, ok)
		pc.lastUsed = t0.Add(time.Duration(i) * time.Second)
		p.idle = append(p.idle, pc)
		conns = append(conns, pc)
	}
	p.expire(t0.Add(1500 * time.Millisecond))
	assert.Equal(t, []*bconn{conns[2]}, p.idle)
	assert.Len(t, p.open, 1)
	p.shut()
	assert.Empty(t, p.idle)
	pc, ok := p.add(nopConn{})
	assert.True(t, ok, "a finished backend still serves late requests")
	p.put(pc)
	assert.Empty(t, p.idle, "but pools nothing")
	p.cut()
	_, ok = p.add(nopConn{})
	assert.False(t, ok, "a cut one serves nothing")
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// An answer whose head never ends is cut off at maxResponseHeader.
func TestDirectBoundsTheAnswersHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.URL.Path == "/healthz" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
				for range (maxResponseHeader / len(line)) + 10 {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	cfg := testConfig()
	cfg.Backends = []string{ln.Addr().String()}
	l, srv := serve(t, cfg)
	l.checkRound(context.Background())
	code, body := hit(t, srv.URL+"/x")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Contains(t, body, "head over")
}
