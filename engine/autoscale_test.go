package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/scenarios"
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

func TestDecide(t *testing.T) {
	pol := scenarios.Autoscale{Region: "east", Min: 1, Max: 4, P95: 200 * time.Millisecond, Utilization: 0.6, Cooldown: 5 * time.Second}
	now := time.Unix(1000, 0)
	calm := now.Add(-6 * time.Second) // calm for longer than the cooldown
	tests := []struct {
		name      string
		pol       scenarios.Autoscale
		in        reading
		cooled    bool
		calmSince time.Time
		want      decision
	}{
		{"p95 over the SLO: proportional, at most doubling", pol,
			reading{nodes: 2, p95: 900, requests: 100, util: 0.5}, true, time.Time{},
			decision{add: 2, reason: "p95 900 ms > SLO 200 ms"}},
		{"utilisation over target: sized to bring it under", pol,
			reading{nodes: 1, p95: 60, requests: 100, util: 1.5}, true, time.Time{},
			decision{add: 2, reason: "utilisation 1.50 > 0.60"}},
		{"never past max", pol,
			reading{nodes: 3, p95: 900, requests: 100, util: 30}, true, time.Time{},
			decision{add: 1, reason: "p95 900 ms > SLO 200 ms, utilisation 30.00 > 0.60"}},
		{"at max: nothing", pol,
			reading{nodes: 4, p95: 900, requests: 100, util: 3}, true, time.Time{}, decision{}},
		{"in cooldown: nothing", pol,
			reading{nodes: 2, p95: 900, requests: 100}, false, time.Time{}, decision{}},
		{"no requests: p95 is no signal", scenarios.Autoscale{Min: 1, Max: 4, P95: time.Second, Cooldown: time.Second},
			reading{nodes: 2, p95: 5000}, true, time.Time{}, decision{}},
		{"calm starts the clock", pol,
			reading{nodes: 3, p95: 50, requests: 100, util: 0.2}, true, time.Time{}, decision{calm: now}},
		{"calm for a cooldown: remove one", pol,
			reading{nodes: 3, p95: 50, requests: 100, util: 0.2}, true, calm,
			decision{remove: true, reason: "p95 50 ms, utilisation 0.20 with 3 nodes"}},
		{"the nodes left would be too busy: stay", pol,
			reading{nodes: 3, p95: 50, requests: 100, util: 0.5}, true, calm, decision{}},
		{"p95 not well under the SLO: stay", pol,
			reading{nodes: 3, p95: 150, requests: 100, util: 0.1}, true, calm, decision{}},
		{"failing fast: a breach, however low p95 is", pol,
			reading{nodes: 1, p95: 20, requests: 200, errors: 200, util: 0.1}, true, time.Time{},
			decision{add: 1, reason: "100% of requests failed"}},
		{"failing fast in a cooldown: nothing, and no scale-in", pol,
			reading{nodes: 3, p95: 20, requests: 200, errors: 20, util: 0.1}, false, calm, decision{}},
		{"a few failures: p95 decides", pol,
			reading{nodes: 3, p95: 50, requests: 200, errors: 2, util: 0.2}, true, calm,
			decision{remove: true, reason: "p95 50 ms, utilisation 0.20 with 3 nodes"}},
		{"at min: stay", pol,
			reading{nodes: 1, p95: 50, requests: 100, util: 0.1}, true, calm, decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, decide(tt.pol, tt.in, tt.cooled, tt.calmSince, now))
		})
	}
}
