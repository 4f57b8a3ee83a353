package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// second makes one second's bucket: n requests due and sent, errs of them
// failed, all at latency lat.
func second(sec, n, errs int64, lat time.Duration) Bucket {
	h := NewHistogram()
	_ = h.RecordValues(lat.Microseconds(), n)
	b := Bucket{Second: sec, Requests: n, Target: n, Errors: errs, Latency: compact(h.Export())}
	if errs > 0 {
		b.ErrorsByKind = map[string]int64{Kind5xx: errs}
	}
	return b
}

func TestMaxSustainableRate(t *testing.T) {
	spec := AttackSpec{Target: "http://127.0.0.1:1", Workload: "api", Duration: 10 * time.Second,
		Step: &Step{From: 10, By: 10, Max: 50, Every: 2 * time.Second}}
	start := time.Unix(1000, 0)
	slo := SLO{P99: 100 * time.Millisecond}
	// healthy: step i covers seconds 1000+2i and 1001+2i at 10(i+1) req/s.
	healthy := func() []Bucket {
		var bs []Bucket
		for s := int64(0); s < 10; s++ {
			bs = append(bs, second(1000+s, 10*(s/2+1), 0, 10*time.Millisecond))
		}
		return bs
	}
	with := func(i int, b Bucket) []Bucket {
		bs := healthy()
		bs[i] = b
		return bs
	}
	tests := []struct {
		name    string
		start   time.Time
		buckets []Bucket
		rate    float64
		steps   int
		broke   string
	}{
		{"every step holds", start, healthy(), 50, 5, ""},
		{"slow second in step 3", start, with(7, second(1007, 40, 0, 500*time.Millisecond)), 30, 3, "step 3 (40 req/s), second 7: p99 500.2"},
		{"errors in step 1", start, with(2, second(1002, 20, 1, time.Millisecond)), 10, 1, "error rate 5.00% > 1.00%"},
		{"first step breaks", start, with(1, second(1001, 10, 0, time.Second)), 0, 0, "step 0"},
		{"a second with no results", start, with(4, Bucket{Second: 1004, Target: 30}), 20, 2, "no requests"},
		{"loadgen fell short", start, with(4, func() Bucket { b := second(1004, 20, 0, time.Millisecond); b.Target = 30; return b }()), 20, 2, "loadgen sent 20 of 30"},
		// Started half a second in, step 0 holds one full second (1001);
		// the slow second 1000 is step 0's partial first second, not judged.
		{"partial seconds are not judged", start.Add(500 * time.Millisecond), with(0, second(1000, 5, 0, time.Second)), 50, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Deltas of one second may arrive split; split every bucket in two.
			var split []Bucket
			for _, b := range tt.buckets {
				split = append(split, b, Bucket{Second: b.Second})
			}
			c, err := MaxSustainableRate(spec, tt.start, split, slo)
			require.NoError(t, err)
			assert.Equal(t, tt.rate, c.Rate)
			assert.Equal(t, tt.steps, c.Steps)
			if tt.broke == "" {
				assert.Empty(t, c.Broke)
			} else {
				assert.Contains(t, c.Broke, tt.broke)
			}
		})
	}

	_, err := MaxSustainableRate(AttackSpec{Rate: 5, Duration: time.Second}, start, nil, slo)
	require.ErrorContains(t, err, "not a step attack")
	fast := spec
	fast.Step = &Step{From: 1, By: 1, Max: 2, Every: 500 * time.Millisecond}
	_, err = MaxSustainableRate(fast, start, nil, slo)
	require.ErrorContains(t, err, "no full second")
	_, err = MaxSustainableRate(spec, start, nil, SLO{})
	require.ErrorContains(t, err, "p99")
}

func TestGeneratorLimited(t *testing.T) {
	tests := []struct {
		name string
		t    Totals
		secs float64
		want string
	}{
		{"kept up", Totals{Requests: 100, Target: 100, CPU: 0.3}, 1, ""},
		{"busy generator", Totals{Requests: 100, Target: 100, CPU: 0.9}, 1, "0.90 cores"},
		{"busy over a whole run", Totals{Requests: 1000, Target: 1000, CPU: 9}, 10, "0.90 cores"},
		{"fell short", Totals{Requests: 94, Target: 100}, 1, "94 of 100"},
		{"closed model has no target", Totals{Requests: 10}, 1, ""},
	}
	for _, tt := range tests {
		got := tt.t.GeneratorLimited(tt.secs)
		if tt.want == "" {
			assert.Empty(t, got, tt.name)
		} else {
			assert.Contains(t, got, tt.want, tt.name)
		}
	}
}
