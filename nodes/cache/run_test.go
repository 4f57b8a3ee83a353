package cache

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := [][]string{
		{"--memory", "lots"},
		{"--max-item-size", "0"},
		{"--memory", "1m", "--max-item-size", "1m"},
		{"--no-such-flag"},
		{"--cache-listen", "127.0.0.1:-1"},
	}
	for _, args := range tests {
		err := Run(context.Background(), args)
		assert.Error(t, err, args)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--listen", "127.0.0.1:0", "--cache-listen", "127.0.0.1:0", "--memory", "8m"})
	}()
	cancel()
	require.NoError(t, <-done)
}

func TestHTTPAndShutdown(t *testing.T) {
	store, err := NewStore()
	require.NoError(t, err)
	srv := NewServer(store)
	cacheLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, srv, cacheLn, httpLn) }()

	mc := newClient(cacheLn.Addr().String())
	require.NoError(t, mc.Set(&memcache.Item{Key: "k", Value: []byte("v")}))
	_, err = mc.Get("k")
	require.NoError(t, err)
	_, err = mc.Get("absent")
	require.ErrorIs(t, err, memcache.ErrCacheMiss)

	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://" + httpLn.Addr().String() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body := get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		"faultline_cache_items 1\n", "faultline_cache_get_hits_total 1\n", "faultline_cache_get_misses_total 1\n",
		"faultline_cache_set_total 1\n", "faultline_cache_connections 1\n", "faultline_cache_evictions_total 0\n",
	} {
		assert.Contains(t, body, want)
	}

	// An idle client connection must not keep the server up.
	idle, err := net.Dial("tcp", cacheLn.Addr().String())
	require.NoError(t, err)
	defer idle.Close()
	require.NoError(t, idle.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = io.WriteString(idle, "version\r\n")
	require.NoError(t, err)
	_, err = io.ReadFull(idle, make([]byte, len("VERSION "+Version+"\r\n")))
	require.NoError(t, err)

	cancel()
	require.NoError(t, <-done)
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "server closed the connection")
}
