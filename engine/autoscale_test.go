package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseEdgeResults(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]int64
	}{
		{"samples", "# HELP edge_requests_total Requests by X-Cache result.\n# TYPE edge_requests_total counter\n" +
			"edge_requests_total{result=\"HIT\"} 1490\nedge_requests_total{result=\"MISS\"} 10\nedge_requests_total{result=\"PASS\"} 3\n" +
			"edge_hit_ratio 0.993\n", map[string]int64{"HIT": 1490, "MISS": 10, "PASS": 3}},
		{"exponent form", "edge_requests_total{result=\"HIT\"} 1.5e+06\n", map[string]int64{"HIT": 1500000}},
		{"nothing", "other_metric 1\n", map[string]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, parseEdgeResults(tt.text))
		})
	}
}
