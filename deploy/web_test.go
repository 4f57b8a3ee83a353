package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/topology"
)

// The web tier's wiring: web nodes get their region's cache nodes, edges
// their origin (the first region with an lb), and each region's load enters
// at its lb, else its edge, else the origin's lb.
func TestWebTierWiring(t *testing.T) {
	top, err := topology.Parse("t.yaml", []byte(`
regions:
  - name: origin
    subnet: 10.0.1.0/24
    nodes:
      - {role: cache, count: 2}
      - {role: lb, count: 1}
      - {role: web, count: 1}
      - {role: loadgen, count: 1}
  - name: edgy
    subnet: 10.0.2.0/24
    nodes:
      - {role: edge, count: 1}
      - {role: loadgen, count: 1}
  - name: bare
    subnet: 10.0.3.0/24
    nodes:
      - {role: loadgen, count: 1}
links:
  - {between: [origin, edgy], rtt: 100ms}
  - {between: [origin, bare], rtt: 100ms}
  - {between: [edgy, bare], rtt: 10ms}
`))
	require.NoError(t, err)
	d, err := Plan(top, "r", nil)
	require.NoError(t, err)
	cmd := map[string][]string{}
	for _, c := range d.Containers {
		cmd[c.Env["FAULTLINE_NODE"]] = c.Cmd
	}
	assert.Equal(t, []string{"cache", "--cache-listen", ":11211"}, cmd["cache-origin-1"])
	assert.Equal(t, []string{"web", "--cache", "10.0.1.10:11211,10.0.1.11:11211"}, cmd["web-origin-1"])
	assert.Equal(t, []string{"edge", "--origin", "http://10.0.1.12:8080"}, cmd["edge-edgy-1"])

	tests := []struct{ region, want string }{
		{"origin", "http://10.0.1.12:8080"},
		{"edgy", "http://10.0.2.10:8080"},
		{"bare", "http://10.0.1.12:8080"},
	}
	for _, tt := range tests {
		got, ok := d.EntryURL(tt.region)
		assert.True(t, ok, tt.region)
		assert.Equal(t, tt.want, got, tt.region)
	}
	_, ok := d.EntryURL("nowhere")
	assert.False(t, ok)

	order := map[string]int{}
	for i, c := range d.Containers {
		order[c.Env["FAULTLINE_NODE"]] = i
	}
	assert.Less(t, order["cache-origin-1"], order["web-origin-1"], "caches start before the webs that use them")
	assert.Less(t, order["lb-origin-1"], order["edge-edgy-1"], "the origin's lb starts before the edges")
}
