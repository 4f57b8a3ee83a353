package ring

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const keys = 20_000

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cache-us-east-%d:11211", i+1)
	}
	return out
}

func owners(r *Ring) []string {
	out := make([]string, keys)
	for i := range out {
		out[i], _ = r.Get(fmt.Sprintf("user:%d", i))
	}
	return out
}

func TestEmptyRing(t *testing.T) {
	r := New(nil)
	_, ok := r.Get("k")
	assert.False(t, ok)
	r.Add("a")
	n, ok := r.Get("k")
	assert.True(t, ok)
	assert.Equal(t, "a", n)
	r.Remove("a")
	_, ok = r.Get("k")
	assert.False(t, ok)
}

func TestBalance(t *testing.T) {
	for _, n := range []int{2, 3, 5, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			count := map[string]int{}
			for _, o := range owners(New(nodes(n))) {
				count[o]++
			}
			require.Len(t, count, n)
			fair := float64(keys) / float64(n)
			for node, c := range count {
				assert.InDelta(t, fair, float64(c), 0.25*fair, node)
			}
		})
	}
}

// TestMinimalMovement checks the point of consistent hashing: a change in
// membership moves about 1/n of the keys, and only to or from the changed node.
func TestMinimalMovement(t *testing.T) {
	tests := []struct {
		name   string
		before int
		change func(r *Ring) string
	}{
		{"add a sixth node", 5, func(r *Ring) string { r.Add("cache-us-east-6:11211"); return "cache-us-east-6:11211" }},
		{"remove one of six", 6, func(r *Ring) string { r.Remove("cache-us-east-3:11211"); return "cache-us-east-3:11211" }},
		{"add a second node", 1, func(r *Ring) string { r.Add("cache-us-east-2:11211"); return "cache-us-east-2:11211" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(nodes(tc.before))
			before := owners(r)
			changed := tc.change(r)
			after := owners(r)
			n := max(len(r.Nodes()), tc.before)
			moved := 0
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				moved++
				require.True(t, before[i] == changed || after[i] == changed,
					"key %d moved %s -> %s, neither is %s", i, before[i], after[i], changed)
			}
			frac := float64(moved) / keys
			assert.InDelta(t, 1/float64(n), frac, 0.5/float64(n), "moved %.3f of keys", frac)
		})
	}
}

func TestSameMembershipSameMapping(t *testing.T) {
	a := New([]string{"x", "y", "z"})
	b := New([]string{"z", "x"})
	b.Add("y")
	b.Add("y")
	assert.Equal(t, a.Nodes(), b.Nodes())
	assert.Equal(t, owners(a), owners(b))
}

func TestConcurrentUse(t *testing.T) {
	r := New(nodes(3), WithVirtualNodes(20))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if w == 0 && i%20 == 0 {
					r.Add(fmt.Sprintf("extra-%d", i))
				}
				_, ok := r.Get(fmt.Sprint(i))
				assert.True(t, ok)
			}
		}()
	}
	wg.Wait()
	assert.Len(t, r.Nodes(), 13)
}

func BenchmarkGet(b *testing.B) {
	r := New(nodes(5))
	for b.Loop() {
		r.Get("user:12345")
	}
}
