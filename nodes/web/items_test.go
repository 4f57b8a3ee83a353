package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/cache"
)

// startCache runs a real cache node on loopback for the test.
func startCache(t *testing.T) string {
	t.Helper()
	store, err := cache.NewStore()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.NewServer(store).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func getItem(t *testing.T, h http.Handler, id string) Item {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ItemPath+id, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var it Item
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &it))
	return it
}

func putItem(t *testing.T, h http.Handler, id, value string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, ItemPath+id, strings.NewReader(value)))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
}

func TestItemsCacheAside(t *testing.T) {
	twoCaches := []string{startCache(t), startCache(t)}
	deadCache := func() string { // a port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		a := ln.Addr().String()
		ln.Close()
		return a
	}()
	tests := []struct {
		name    string
		caches  []string
		sources []string // of read, read, (write) read
	}{
		{"no cache: every read from the store", nil, []string{"store", "store", "store"}},
		{"cache: miss fills, hit, write invalidates", twoCaches, []string{"store", "cache", "store"}},
		{"dead cache: reads still answered from the store", []string{deadCache}, []string{"store", "store", "store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mc *memcache.Client
			if tt.caches != nil {
				sel, err := NewRingSelector(tt.caches)
				require.NoError(t, err)
				mc = memcache.NewFromSelector(sel)
			}
			h := Handler("web-1", "r1", prometheus.NewRegistry(), WithItems(NewSimStore(0), mc, time.Minute))
			id := strings.ReplaceAll(tt.name[:4], " ", "_") + "42"
			a := getItem(t, h, id)
			assert.Equal(t, "item "+id, a.Value)
			assert.Equal(t, tt.sources[0], a.Source)
			assert.Equal(t, tt.sources[1], getItem(t, h, id).Source)
			putItem(t, h, id, "new")
			c := getItem(t, h, id)
			assert.Equal(t, tt.sources[2], c.Source)
			assert.Equal(t, "new", c.Value, "a read after a write sees the write")
		})
	}
}

func TestRingSelectorSpreadsKeys(t *testing.T) {
	addrs := []string{"127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"}
	sel, err := NewRingSelector(addrs)
	require.NoError(t, err)
	seen := map[string]int{}
	for i := range 3000 {
		a, err := sel.PickServer(cacheKey(strings.Repeat("k", i%7) + string(rune('a'+i%26)) + time.Duration(i).String()))
		require.NoError(t, err)
		seen[a.String()]++
	}
	assert.Len(t, seen, 3, "every node owns some keys")
	var each []string
	require.NoError(t, sel.Each(func(a net.Addr) error { each = append(each, a.String()); return nil }))
	assert.ElementsMatch(t, addrs, each)
}

func TestItemOptionsRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		latency, ttl time.Duration
		caches       string
	}{
		{-time.Millisecond, time.Minute, ""},
		{0, 0, ""},
		{0, time.Minute, "no-port"},
	} {
		_, _, err := itemOptions(tc.caches, tc.latency, tc.ttl)
		assert.Error(t, err, "%+v", tc)
	}
}
