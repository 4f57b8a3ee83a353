package results

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Three regions polled every second; b dies at t=10 (its geodns with it)
// and comes back at t=20; a's geodns marks it down at t=11.7 and c's at
// 12.6 (the polls see that at 12 and 13). The injection took a while: a's
// geodns still saw b alive in its round at 10.4.
func TestBuildGeoDNSFailover(t *testing.T) {
	var polls []DNSPoll
	count := map[string]map[string]map[string]uint64{} // server → client → served
	for ts := 0; ts < 30; ts++ {
		for _, srv := range []struct{ name, region string }{{"geodns-a-1", "a"}, {"geodns-b-1", "b"}, {"geodns-c-1", "c"}} {
			if srv.region == "b" && ts >= 10 && ts < 20 {
				continue // dead: no poll
			}
			if count[srv.name] == nil {
				count[srv.name] = map[string]map[string]uint64{}
			}
			servedB := "b"
			if (srv.region == "a" && ts >= 12 && ts < 21) || (srv.region == "c" && ts >= 13 && ts < 22) {
				servedB = "a"
			}
			if srv.region == "b" && ts == 20 {
				count[srv.name] = map[string]map[string]uint64{} // restarted: counters from zero
			}
			for _, client := range []string{"a", "b", "c"} {
				served := client
				if client == "b" {
					served = servedB
				}
				if count[srv.name][client] == nil {
					count[srv.name][client] = map[string]uint64{}
				}
				count[srv.name][client][served] += 10
			}
			snap := map[string]map[string]uint64{}
			for c, row := range count[srv.name] {
				snap[c] = map[string]uint64{}
				for s, n := range row {
					snap[c][s] = n
				}
			}
			polls = append(polls, DNSPoll{T: float64(ts), Server: srv.name, Region: srv.region,
				Mapping: map[string]string{"a": "a", "b": servedB, "c": "c"}, Answers: snap, Rcodes: map[string]uint64{"NOERROR": 1}})
		}
	}
	var series []Second
	for ts := 0; ts < 30; ts++ {
		pt := Second{T: ts, RPS: 50}
		if ts >= 10 && ts < 14 {
			pt.Errors = 20
		}
		series = append(series, pt)
	}
	faults := []Fault{{Kind: "region-down", Targets: []string{"b"}, InjectedAt: 10, HealedAt: 20},
		{Kind: "kill", Targets: []string{"web-a-1"}, InjectedAt: 25, HealedAt: 26}}
	health := []DNSHealth{
		{T: 11.7, Server: "geodns-a-1", Region: "b", LastOK: 10.4},
		{T: 12.6, Server: "geodns-c-1", Region: "b", LastOK: 10.2},
		{T: 19, Server: "geodns-c-1", Region: "b", LastOK: 18},   // a later flap
		{T: 12.5, Server: "geodns-b-1", Region: "b", LastOK: 11}, // b's own: no witness
		{T: 4, Server: "geodns-a-1", Region: "b", LastOK: 3.5},   // before the fault
		{T: 21, Server: "geodns-a-1", Region: "b", Healthy: true, LastOK: -1},
	}
	g := BuildGeoDNS(polls, health, faults, []string{"a", "b", "c"}, map[string]Region{"b": {Series: series}}, 3.5)

	require.Len(t, g.Failovers, 1, "a node kill takes no region away")
	f := g.Failovers[0]
	assert.Equal(t, "b", f.Region)
	assert.Equal(t, 10.4, f.AliveAt, "a's geodns saw b alive at 10.4")
	assert.InDelta(t, 2.2, f.FailoverS, 1e-9, "the last server outside b moved its clients at t=12.6")
	assert.Equal(t, "a", f.MovedTo)
	assert.Equal(t, 100.0, f.ExcludedPct, "after 10+3.5 s no answer named b")
	assert.Equal(t, 4.0, f.ClientsOKS, "errors until t=13, clean from t=14")
	assert.Equal(t, 100.0, f.OthersUnchangedPct)
	assert.Equal(t, 2.0, f.BackS, "c answered b again at t=22")
	assert.InDelta(t, 2.2, g.FailoverS["b"], 1e-9)
	assert.Zero(t, g.ServFail)
	// 30 polls × 10 answers to a's clients from a and c, 20 from b (10
	// before the fault, 10 after its restart, counted from zero again).
	assert.Equal(t, uint64(30*10*2+20*10), g.Answers["a"]["a"])

	s := &Summary{GeoDNS: g}
	v, err := metrics["dns_failover_s"](s, "")
	require.NoError(t, err)
	assert.InDelta(t, 2.2, v, 1e-9)
	v, err = metrics["dns_excluded_pct"](s, "b")
	require.NoError(t, err)
	assert.Equal(t, 100.0, v)
	_, err = metrics["dns_failover_s"](s, "c")
	assert.ErrorContains(t, err, `no fault took region "c" away`)
	_, err = metrics["dns_servfail"](&Summary{}, "")
	assert.ErrorContains(t, err, "no geodns")

	var md bytes.Buffer
	require.NoError(t, Markdown(&md, s))
	assert.Contains(t, md.String(), "## DNS failover")
	assert.Contains(t, md.String(), "| b | region-down | 10 | 10.4 | 2.20 | a | 100.00% | 4 | 100.00% | 2 |")
	var html bytes.Buffer
	require.NoError(t, HTML(&html, s))
	assert.Contains(t, html.String(), "<h2>DNS answers</h2>")
}

func TestDNSFaultRegions(t *testing.T) {
	regions := []string{"a", "b"}
	for _, tc := range []struct {
		f    Fault
		want []string
	}{
		{Fault{Kind: "region-down", Targets: []string{"a"}}, []string{"a"}},
		{Fault{Kind: "region-isolate", Targets: []string{"b"}}, []string{"b"}},
		{Fault{Kind: "partition", Targets: []string{"a"}}, []string{"a"}},
		{Fault{Kind: "partition", Targets: []string{"a"}, OneWay: true}, nil},
		{Fault{Kind: "partition", Targets: []string{"a"}, Peers: []string{"b"}}, nil},
		{Fault{Kind: "partition", Targets: []string{"web-a-1"}}, nil},
		{Fault{Kind: "kill", Targets: []string{"web-a-1"}}, nil},
	} {
		assert.Equal(t, tc.want, DNSFaultRegions(tc.f, regions), "%+v", tc.f)
	}
}
