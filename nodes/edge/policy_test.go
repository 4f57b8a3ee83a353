package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreshness(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		cc   string
		life time.Duration
		ok   bool
	}{
		{"max-age=60", time.Minute, true},
		{"public, max-age=60", time.Minute, true},
		{`max-age="60"`, time.Minute, true},
		{"MAX-AGE=60", time.Minute, true},
		{"max-age=60, s-maxage=5", 5 * time.Second, true},
		{"max-age=abc", 0, false},
		{"max-age=-1", 0, false},
		{"max-age=99999999999999999999", 0, false},
		{"max-age=60, no-store", 0, false},
		{"no-cache", 0, false},
		{"private, s-maxage=60", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{"Cache-Control": {tt.cc}}
		life, ok := freshness(h, now)
		assert.Equal(t, tt.ok, ok, tt.cc)
		assert.Equal(t, tt.life, life, tt.cc)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"64m", 64 << 20}, {"64M", 64 << 20}, {"64MiB", 64 << 20},
		{"512k", 512 << 10}, {"1g", 1 << 30}, {" 2kb ", 2 << 10},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"", "m", "0", "-1m", "1t", "9999999999999g", "1.5m"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64m", "1", "1g", "kb", "-0", "99999999999999999g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseSize(%q) = %d without an error", s, n)
		}
	})
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", "s-maxage=1, private", `max-age="", no-store`, ",,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := parseCacheControl(http.Header{"Cache-Control": {s}})
		if cc.maxAge < 0 || cc.sMaxAge < 0 {
			t.Fatalf("%q: negative lifetime %+v", s, cc)
		}
		if life, ok := freshness(http.Header{"Cache-Control": {s}}, time.Now()); ok && life <= 0 {
			t.Fatalf("%q: storable with lifetime %v", s, life)
		}
	})
}
