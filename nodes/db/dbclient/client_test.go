package dbclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorded is what the fake server saw of the last request.
type recorded struct {
	method, path, rawQuery, body string
}

func serve(t *testing.T, code int, header http.Header, body string) (*Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*rec = recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL + "/"), rec
}

func TestGetDecodesEntryAndHeaders(t *testing.T) {
	hdr := http.Header{HeaderServedBy: {"n2"}, HeaderForwardedBy: {"n1"}, HeaderStaleness: {"1500"}}
	c, rec := serve(t, 200, hdr, `{"key":"a/b","value":"v","version":7}`)
	got, err := c.Get(context.Background(), "a/b", Stale, MaxStaleness(2*time.Second))
	require.NoError(t, err)
	require.Equal(t, ReadResult{
		Entry: Entry{Key: "a/b", Value: "v", Version: 7}, Staleness: 1500 * time.Millisecond,
		ServedBy: "n2", ForwardedBy: "n1",
	}, got)
	require.Equal(t, recorded{"GET", "/kv/a%2Fb", "consistency=stale&max_staleness=2s", ""}, *rec)
}

func TestWritesSendTheAPIShapes(t *testing.T) {
	one := uint64(1)
	tests := []struct {
		name string
		call func(c *Client) (uint64, error)
		want recorded
	}{
		{"put", func(c *Client) (uint64, error) { return c.Put(context.Background(), "k", "raw body") },
			recorded{"PUT", "/kv/k", "", "raw body"}},
		{"delete", func(c *Client) (uint64, error) { return c.Delete(context.Background(), "k") },
			recorded{"DELETE", "/kv/k", "", ""}},
		{"cas", func(c *Client) (uint64, error) {
			return c.CAS(context.Background(), "k", CASRequest{ExpectedVersion: &one, Value: "x"})
		}, recorded{"POST", "/kv/k/cas", "", `{"expected_version":1,"value":"x"}`}},
		{"batch", func(c *Client) (uint64, error) {
			return c.Batch(context.Background(), []Op{{Op: OpPut, Key: "a", Value: "1"}, {Op: OpDelete, Key: "b"}})
		}, recorded{"POST", "/batch", "", `{"ops":[{"op":"put","key":"a","value":"1"},{"op":"delete","key":"b"}]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := serve(t, 200, nil, `{"ok":true,"version":42}`)
			v, err := tt.call(c)
			require.NoError(t, err)
			require.EqualValues(t, 42, v)
			require.Equal(t, tt.want, *rec)
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		code       int
		body       string
		check      func(t *testing.T, err error)
		indefinite bool
	}{
		{"missing key", "GET", 404, `{"error":"key \"k\" not found"}`,
			func(t *testing.T, err error) { require.ErrorIs(t, err, ErrNotFound) }, false},
		{"cas conflict", "CAS", 409, `{"ok":false,"conflict":{"key":"k","value":"cur","version":3}}`,
			func(t *testing.T, err error) {
				var ce *ConflictError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, Entry{Key: "k", Value: "cur", Version: 3}, ce.Current)
			}, false},
		{"definite 503", "PUT", 503, `{"error":"no leader known to n1"}`,
			func(t *testing.T, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, 503, se.Code)
				require.Contains(t, se.Error(), "no leader known")
			}, false},
		{"indefinite 503", "PUT", 503, `{"error":"leadership lost","indefinite":true}`, nil, true},
		{"foreign error page on a write", "PUT", 502, `<html>bad gateway</html>`, nil, true},
		{"foreign error page on a read", "GET", 502, `<html>bad gateway</html>`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := serve(t, tt.code, nil, tt.body)
			var err error
			switch tt.method {
			case "GET":
				_, err = c.Get(context.Background(), "k", Linearizable)
			case "PUT":
				_, err = c.Put(context.Background(), "k", "v")
			case "CAS":
				_, err = c.CAS(context.Background(), "k", CASRequest{Value: "v"})
			}
			require.Error(t, err)
			if tt.check != nil {
				tt.check(t, err)
			}
			if tt.method != "GET" {
				require.Equal(t, tt.indefinite, Indefinite(err))
			}
		})
	}
}

func TestNoAnswerIsIndefinite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL
	srv.Close()
	_, err := New(url).Put(context.Background(), "k", "v")
	require.Error(t, err)
	require.True(t, Indefinite(err))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = New(url).Put(ctx, "k", "v")
	require.True(t, errors.Is(err, context.Canceled))
	require.True(t, Indefinite(err))
}

func TestStatusAndJoin(t *testing.T) {
	want := Status{ID: "n1", Role: "follower", Voter: true, LeaderID: "n0", Term: 3, LastContactMs: 12}
	body, err := json.Marshal(want)
	require.NoError(t, err)
	c, _ := serve(t, 200, nil, string(body))
	got, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, got)

	c, rec := serve(t, 200, nil, "")
	require.NoError(t, c.Join(context.Background(), JoinRequest{ID: "n3", RaftAddr: "h:1"}))
	require.Equal(t, recorded{"POST", "/join", "", `{"id":"n3","raft_addr":"h:1","voter":false}`}, *rec)
}
