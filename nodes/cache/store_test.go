package cache

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpiry(t *testing.T) {
	type check struct {
		after time.Duration // since the item was set
		live  bool
	}
	start := newFakeClock().Now().Unix()
	tests := []struct {
		name    string
		exptime int64
		// touch, if set, is applied (as a relative exptime) touchAfter into the test.
		touch      int64
		touchAfter time.Duration
		checks     []check
	}{
		{name: "zero never expires", exptime: 0, checks: []check{{time.Hour * 24 * 365, true}}},
		{name: "relative seconds", exptime: 10, checks: []check{{9 * time.Second, true}, {10 * time.Second, false}}},
		{name: "thirty days is still relative", exptime: maxRelativeExptime, checks: []check{
			{maxRelativeExptime*time.Second - time.Second, true}, {maxRelativeExptime * time.Second, false}}},
		{name: "absolute unix time", exptime: start + 100, checks: []check{{99 * time.Second, true}, {100 * time.Second, false}}},
		{name: "absolute time in the past", exptime: start - 1, checks: []check{{0, false}}},
		{name: "just past thirty days is absolute and long gone", exptime: maxRelativeExptime + 1, checks: []check{{0, false}}},
		{name: "negative", exptime: -1, checks: []check{{0, false}}},
		{name: "touch extends", exptime: 10, touch: 100, touchAfter: 5 * time.Second, checks: []check{
			{50 * time.Second, true}, {105 * time.Second, false}}},
		{name: "touch with negative expires", exptime: 0, touch: -1, touchAfter: time.Second, checks: []check{{time.Second, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s, err := NewStore(clock.opt())
			require.NoError(t, err)
			key := []byte("k")
			require.Equal(t, stored, s.store(modeSet, key, []byte("v"), 0, tc.exptime, 0))
			elapsed := time.Duration(0)
			for _, c := range tc.checks {
				if tc.touchAfter > 0 && elapsed <= tc.touchAfter && tc.touchAfter <= c.after {
					clock.Advance(tc.touchAfter - elapsed)
					elapsed = tc.touchAfter
					s.touch(key, tc.touch)
				}
				clock.Advance(c.after - elapsed)
				elapsed = c.after
				_, ok := s.get(key)
				require.Equal(t, c.live, ok, "after %s", c.after)
			}
		})
	}
}

func TestExpiredItemsAreInvisibleToEveryCommand(t *testing.T) {
	clock := newFakeClock()
	s, err := NewStore(clock.opt())
	require.NoError(t, err)
	set := func() { require.Equal(t, stored, s.store(modeSet, []byte("k"), []byte("1"), 0, 5, 0)) }
	expire := func() { clock.Advance(5 * time.Second) }

	set()
	expire()
	assert.Equal(t, stored, s.store(modeAdd, []byte("k"), []byte("2"), 0, 0, 0), "add over an expired item")
	set()
	expire()
	assert.Equal(t, notStored, s.store(modeReplace, []byte("k"), []byte("2"), 0, 0, 0))
	set()
	expire()
	_, found, err := s.delta([]byte("k"), true, 1)
	require.NoError(t, err)
	assert.False(t, found)
	set()
	expire()
	assert.False(t, s.delete([]byte("k")))
	assert.Zero(t, s.Stats().CurrItems)
}

func TestFlushWithDelay(t *testing.T) {
	clock := newFakeClock()
	s, err := NewStore(clock.opt())
	require.NoError(t, err)
	require.Equal(t, stored, s.store(modeSet, []byte("old"), []byte("v"), 0, 0, 0))
	s.flush(10)
	clock.Advance(9 * time.Second)
	_, ok := s.get([]byte("old"))
	assert.True(t, ok, "still there before the delay ends")
	clock.Advance(time.Second)
	_, ok = s.get([]byte("old"))
	assert.False(t, ok, "gone once the delay ends")
	clock.Advance(time.Second)
	require.Equal(t, stored, s.store(modeSet, []byte("new"), []byte("v"), 0, 0, 0))
	_, ok = s.get([]byte("new"))
	assert.True(t, ok, "items stored after the flush time live")
}

func TestLRUEviction(t *testing.T) {
	const valueLen = 300
	itemSize := int64(len("k0") + valueLen + entryOverhead)
	s, err := NewStore(WithShards(1), WithMaxItemSize(1000), WithMemory(10*itemSize))
	require.NoError(t, err)
	value := make([]byte, valueLen)
	for i := range 10 {
		require.Equal(t, stored, s.store(modeSet, []byte("k"+strconv.Itoa(i)), value, 0, 0, 0))
	}
	require.Zero(t, s.Stats().Evictions)
	_, ok := s.get([]byte("k0")) // now most recently used; k1 is the oldest
	require.True(t, ok)
	require.Equal(t, stored, s.store(modeSet, []byte("kA"), value, 0, 0, 0))

	_, ok = s.get([]byte("k1"))
	assert.False(t, ok, "least recently used was evicted")
	for _, k := range []string{"k0", "k2", "k9", "kA"} {
		_, ok = s.get([]byte(k))
		assert.True(t, ok, k)
	}
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Evictions)
	assert.Equal(t, uint64(10), st.CurrItems)
	assert.LessOrEqual(t, st.Bytes, st.LimitMaxBytes)
}

func TestMemoryBoundAcrossShards(t *testing.T) {
	s, err := NewStore(WithMemory(1<<20), WithMaxItemSize(16<<10))
	require.NoError(t, err)
	require.Greater(t, len(s.shards), 1)
	value := make([]byte, 1024)
	const n = 4000
	for i := range n {
		require.Equal(t, stored, s.store(modeSet, fmt.Appendf(nil, "key-%d", i), value, 0, 0, 0))
		require.LessOrEqual(t, s.Stats().Bytes, uint64(1<<20))
	}
	st := s.Stats()
	assert.Positive(t, st.Evictions)
	assert.Equal(t, uint64(n), st.CurrItems+st.Evictions)
	// The newest keys are a small fraction of any shard's room, so they all survive.
	for i := n - 50; i < n; i++ {
		_, ok := s.get(fmt.Appendf(nil, "key-%d", i))
		assert.True(t, ok, i)
	}
}

func TestNewStoreRejectsImpossibleSizes(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{"memory below one item", []Option{WithMemory(1000), WithMaxItemSize(1 << 20)}},
		{"too many shards", []Option{WithMemory(1 << 20), WithMaxItemSize(1 << 19), WithShards(4)}},
		{"zero memory", []Option{WithMemory(0)}},
		{"negative item", []Option{WithMaxItemSize(-1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStore(tc.opts...)
			assert.Error(t, err)
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64m", 64 << 20, true}, {"64M", 64 << 20, true}, {"1k", 1024, true}, {"2g", 2 << 30, true},
		{"4096", 4096, true}, {"", 0, false}, {"m", 0, false}, {"-1m", 0, false}, {"0", 0, false},
		{"+5", 0, false}, {"1.5m", 0, false}, {"64mb", 0, false}, {"99999999999999g", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64m", "1k", "0", "-3g", "+1", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && (n <= 0 || n > 1<<62) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseUint(f *testing.F) {
	for _, s := range []string{"0", "18446744073709551615", "18446744073709551616", "-1", "+1", " 1", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUint([]byte(s), 64)
		want, err := strconv.ParseUint(s, 10, 64)
		digitsOnly := len(s) > 0
		for _, c := range s {
			digitsOnly = digitsOnly && c >= '0' && c <= '9'
		}
		wantOK := err == nil && digitsOnly && len(s) <= 20
		require.Equal(t, wantOK, ok, s)
		if ok {
			require.Equal(t, want, got, s)
		}
	})
}
