package topology

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

func TestDefaultMatchesFile(t *testing.T) {
	fromDisk, err := Load("default.yaml")
	require.NoError(t, err)
	def := Default()
	fromDisk.File = def.File
	assert.Equal(t, def, fromDisk)

	assert.Equal(t, "default", def.Name)
	assert.Equal(t, DefaultImage, def.Image)
	require.Len(t, def.Regions, 3)
	assert.Equal(t, Region{Name: "us-east", Subnet: netip.MustParsePrefix("10.201.1.0/24"),
		Nodes: []NodeGroup{{Role: "lb", Count: 1}, {Role: "web", Count: 2}, {Role: "loadgen", Count: 1}}}, def.Regions[0])
	assert.Equal(t, []Link{
		{A: "us-east", B: "eu-west", RTT: 70 * time.Millisecond},
		{A: "eu-west", B: "ap-south", RTT: 120 * time.Millisecond},
		{A: "us-east", B: "ap-south", RTT: 190 * time.Millisecond},
	}, def.Links)
}

func TestLinkAndRTT(t *testing.T) {
	top := Default()
	l, ok := top.Link("ap-south", "us-east")
	require.True(t, ok)
	assert.Equal(t, Link{A: "ap-south", B: "us-east", RTT: 190 * time.Millisecond}, l)
	_, ok = top.Link("us-east", "mars")
	assert.False(t, ok)

	for _, tc := range []struct {
		a, b string
		want time.Duration
	}{
		{"us-east", "eu-west", 70 * time.Millisecond},
		{"eu-west", "us-east", 70 * time.Millisecond},
		{"ap-south", "eu-west", 120 * time.Millisecond},
		{"us-east", "us-east", 0},
		{"us-east", "mars", 0},
	} {
		assert.Equal(t, tc.want, top.RTT(tc.a, tc.b), "%s-%s", tc.a, tc.b)
	}
}

func TestNearestHealthy(t *testing.T) {
	top := Default()
	// A fourth region as far from us-east as eu-west, to exercise the tie-break.
	top.Regions = append(top.Regions, Region{Name: "ca-central"})
	top.Links = append(top.Links, Link{A: "ca-central", B: "us-east", RTT: 70 * time.Millisecond})
	only := func(up ...string) func(string) bool {
		return func(r string) bool {
			for _, u := range up {
				if u == r {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name, from string
		healthy    func(string) bool
		want       string
		ok         bool
	}{
		{"self when healthy", "us-east", only("us-east", "eu-west"), "us-east", true},
		{"closest other", "us-east", only("eu-west", "ap-south"), "eu-west", true},
		{"tie broken by name", "us-east", only("eu-west", "ca-central", "ap-south"), "ca-central", true},
		{"far one when only one", "us-east", only("ap-south"), "ap-south", true},
		{"from ap-south", "ap-south", only("us-east", "eu-west"), "eu-west", true},
		{"none healthy", "us-east", only(), "", false},
		{"unknown origin", "mars", only("us-east"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := top.NearestHealthy(tc.from, tc.healthy)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
	assert.Equal(t, []string{"us-east", "ca-central", "eu-west", "ap-south"}, top.ByDistance("us-east"))
	assert.Equal(t, []string{"ap-south", "ca-central", "eu-west", "us-east"}, top.ByDistance("ap-south"), "no link counts as 0 RTT")
}

func TestPlan(t *testing.T) {
	top := Default()
	plan := top.Plan("r1")
	require.Len(t, plan, 12)
	want := []NodePlan{
		{"lb-us-east-1", "lb", "us-east", 1, netip.MustParseAddr("10.201.1.10"), "fl-r1-us-east", 0, 0},
		{"web-us-east-1", "web", "us-east", 1, netip.MustParseAddr("10.201.1.11"), "fl-r1-us-east", 0, 0},
		{"web-us-east-2", "web", "us-east", 2, netip.MustParseAddr("10.201.1.12"), "fl-r1-us-east", 0, 0},
		{"loadgen-us-east-1", "loadgen", "us-east", 1, netip.MustParseAddr("10.201.1.13"), "fl-r1-us-east", 0, 0},
		{"lb-eu-west-1", "lb", "eu-west", 1, netip.MustParseAddr("10.201.2.10"), "fl-r1-eu-west", 0, 0},
	}
	assert.Equal(t, want, plan[:5])
	assert.Equal(t, NodePlan{"loadgen-ap-south-1", "loadgen", "ap-south", 1, netip.MustParseAddr("10.201.3.13"), "fl-r1-ap-south", 0, 0}, plan[11])
	assert.Equal(t, plan, top.Plan("r1"), "deterministic")

	names := map[string]bool{}
	for _, p := range plan {
		assert.False(t, names[p.Name], "duplicate %s", p.Name)
		names[p.Name] = true
		region, ok := top.RegionOf(p.IP)
		require.True(t, ok)
		assert.Equal(t, p.Region, region)
	}
	_, ok := top.RegionOf(netip.MustParseAddr("10.201.4.1"))
	assert.False(t, ok)

	r := top.Regions[0]
	assert.Equal(t, netip.MustParseAddr("10.201.1.1"), r.Gateway())
	assert.Equal(t, netip.MustParseAddr("10.201.1.254"), r.RouterIP())
	assert.Equal(t, 244, r.Capacity())
}

func TestPlanSmallSubnetFillsToRouter(t *testing.T) {
	// A /27 has .0-.31: nodes .10-.29, router .30, broadcast .31.
	top, err := Parse("t.yaml", []byte(`
regions:
  - {name: a, subnet: 10.0.0.32/27, nodes: [{role: web, count: 20}]}
`))
	require.NoError(t, err)
	plan := top.Plan("x")
	require.Len(t, plan, 20)
	assert.Equal(t, netip.MustParseAddr("10.0.0.42"), plan[0].IP)
	assert.Equal(t, netip.MustParseAddr("10.0.0.61"), plan[19].IP)
	assert.Equal(t, netip.MustParseAddr("10.0.0.62"), top.Regions[0].RouterIP())
	assert.Equal(t, "t", top.Name, "name defaults to the file's base name")
}

func TestParseBandwidth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"10mbit", 10_000_000, false},
		{"1gbit", 1_000_000_000, false},
		{"500kbit", 500_000, false},
		{"1.5Mbit", 1_500_000, false},
		{"64bit", 64, false},
		{"10", 0, true},
		{"10mb", 0, true},
		{"-1mbit", 0, true},
		{"2000gbit", 0, true},
		{"", 0, true},
	} {
		got, err := ParseBandwidth(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

const validTwo = `name: two
regions:
  - name: a
    subnet: 10.0.1.0/24
    nodes:
      - {role: web, count: 2}
  - name: b
    subnet: 10.0.2.0/24
    nodes:
      - {role: web, count: 1}
links:
  - {between: [a, b], rtt: 10ms, jitter: 1ms, loss: 0.01, bandwidth: 10mbit}
`

func TestParseValidLink(t *testing.T) {
	top, err := Parse("two.yaml", []byte(validTwo))
	require.NoError(t, err)
	assert.Equal(t, []Link{{A: "a", B: "b", RTT: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, BandwidthBps: 10_000_000}}, top.Links)
}

// TestParseErrors holds one case per validation rule, each with the exact
// file:line:column: field: message the user sees.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"syntax", "regions: [", []string{"t.yaml:1: invalid YAML: did not find expected node content"}},
		{"empty", "", []string{"t.yaml: empty document"}},
		{"no regions", "name: x\n", []string{"t.yaml:1:1: regions: required: a list of regions"}},
		{"empty regions", "regions: []\n", []string{"t.yaml:1:10: regions: must list at least one region"}},
		{"not a mapping", "- a\n", []string{`t.yaml:1:1: must be a mapping, not a list`}},
		{"unknown top field with hint", "name: x\nregoins: []\n", []string{
			`t.yaml:2:1: regoins: unknown field (did you mean "regions"?)`,
		}},
		{"unknown field without hint", "regions:\n  - {name: a, subnet: 10.0.0.0/24, zzz: 1}\n", []string{
			`t.yaml:2:36: regions[0].zzz: unknown field (known: name, subnet, nodes)`,
		}},
		{"repeated field", "regions:\n  - {name: a, subnet: 10.0.0.0/24, name: b}\n", []string{
			`t.yaml:2:36: regions[0].name: repeated field (first set on line 2)`,
		}},
		{"dns typos and bounds", "regions:\n  - {name: a, subnet: 10.0.0.0/24}\ndns: {zone: Bad_Zone, ttl: 0s, check_interval: 10ms, fall: 0, rize: 2}\n", []string{
			`t.yaml:3:13: dns.zone: "Bad_Zone" is not a domain name of DNS labels (like faultline.test)`,
			`t.yaml:3:28: dns.ttl: must be between 1s and 1h0m0s, got 0s`,
			`t.yaml:3:48: dns.check_interval: must be between 50ms and 1m0s, got 10ms`,
			`t.yaml:3:60: dns.fall: must be between 1 and 100, got 0`,
			`t.yaml:3:63: dns.rize: unknown field (did you mean "rise"?)`,
		}},
		{"stream bounds", "regions:\n  - {name: a, subnet: 10.0.0.0/24}\nstream: {sentences_per_spout: 0, rate: -1, fail_rate: 1, state: disk, source: kafka, sink: file}\n", []string{
			`t.yaml:3:31: stream.sentences_per_spout: must be between 1 and 100000000, got 0`,
			`t.yaml:3:40: stream.rate: must be between 0 and 10000000, got -1`,
			`t.yaml:3:55: stream.fail_rate: must be in [0, 1), got 1`,
			`t.yaml:3:65: stream.state: must be "memory" (the master's) or "db" (the topology's db nodes), got "disk"`,
			`t.yaml:3:79: stream.source: must be "generator" (sentences made by the spouts) or "broker" (a topic on the topology's brokers), got "kafka"`,
			`t.yaml:3:92: stream.sink: must be "none", "console" (the workers' output) or "db" (a key per word in the topology's db), got "file"`,
		}},
		{"missing name and subnet", "regions:\n  - nodes: []\n", []string{
			`t.yaml:2:5: regions[0].name: required`,
			`t.yaml:2:5: regions[0].subnet: required`,
		}},
		{"bad region name", "regions:\n  - {name: US_East, subnet: 10.0.0.0/24}\n", []string{
			`t.yaml:2:12: regions[0].name: "US_East" is not a DNS label (lower-case letters, digits and inner hyphens, at most 63)`,
		}},
		{"reserved name", "regions:\n  - {name: all, subnet: 10.0.0.0/24}\n", []string{
			`t.yaml:2:12: regions[0].name: "all" is reserved: scenarios use it for every region`,
		}},
		{"duplicate region", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\n  - {name: a, subnet: 10.0.2.0/24}\n", []string{
			`t.yaml:3:12: regions[1].name: region "a" already defined on line 2`,
		}},
		{"subnet not cidr", "regions:\n  - {name: a, subnet: 10.0.0.0}\n", []string{
			`t.yaml:2:23: regions[0].subnet: "10.0.0.0" is not a CIDR prefix like 10.201.1.0/24`,
		}},
		{"subnet ipv6", "regions:\n  - {name: a, subnet: 'fd00::/64'}\n", []string{
			`t.yaml:2:23: regions[0].subnet: fd00::/64 is not IPv4`,
		}},
		{"subnet too small", "regions:\n  - {name: a, subnet: 10.0.0.0/28}\n", []string{
			`t.yaml:2:23: regions[0].subnet: /28 is out of range: use /16 to /27`,
		}},
		{"subnet too big", "regions:\n  - {name: a, subnet: 10.0.0.0/8}\n", []string{
			`t.yaml:2:23: regions[0].subnet: /8 is out of range: use /16 to /27`,
		}},
		{"host bits", "regions:\n  - {name: a, subnet: 10.0.0.5/24}\n", []string{
			`t.yaml:2:23: regions[0].subnet: 10.0.0.5/24 has host bits set (did you mean 10.0.0.0/24?)`,
		}},
		{"overlap", "regions:\n  - {name: a, subnet: 10.0.0.0/16}\n  - {name: b, subnet: 10.0.3.0/24}\nlinks: [{between: [a, b], rtt: 1ms}]\n", []string{
			`t.yaml:3:23: regions[1].subnet: 10.0.3.0/24 overlaps 10.0.0.0/16 of region "a" (line 2)`,
		}},
		{"unknown role", "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes: [{role: wbe, count: 1}]\n", []string{
			`t.yaml:4:20: regions[0].nodes[0].role: unknown role "wbe" (did you mean "web"?)`,
		}},
		{"repeated role", "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes:\n      - {role: web, count: 1}\n      - {role: web, count: 1}\n", []string{
			`t.yaml:6:16: regions[0].nodes[1].role: role "web" already listed on line 5; use one group with a larger count`,
		}},
		{"count range", "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes: [{role: web, count: 65}, {role: db, count: -1}]\n", []string{
			`t.yaml:4:32: regions[0].nodes[0].count: must be between 0 and 64, got 65`,
			`t.yaml:4:55: regions[0].nodes[1].count: must be between 0 and 64, got -1`,
		}},
		{"count not int", "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes: [{role: web, count: two}]\n", []string{
			`t.yaml:4:32: regions[0].nodes[0].count: must be an integer, not "two"`,
		}},
		{"missing role and count", "regions:\n  - name: a\n    subnet: 10.0.0.0/24\n    nodes: [{}]\n", []string{
			`t.yaml:4:13: regions[0].nodes[0].role: required`,
			`t.yaml:4:13: regions[0].nodes[0].count: required`,
		}},
		{"subnet too small for nodes", "regions:\n  - name: a\n    subnet: 10.0.0.0/27\n    nodes: [{role: web, count: 15}, {role: db, count: 6}]\n", []string{
			`t.yaml:3:13: regions[0].subnet: 10.0.0.0/27 holds 20 nodes (from 10.0.0.10 to 10.0.0.29) but the region has 21`,
		}},
		{"node name too long", "regions:\n  - name: " + long(60) + "\n    subnet: 10.0.0.0/24\n    nodes: [{role: web, count: 1}]\n", []string{
			`t.yaml:4:13: regions[0].nodes[0]: node name "web-` + long(60) + `-1" is 66 characters; at most 63`,
		}},
		{"missing link", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\n  - {name: b, subnet: 10.0.2.0/24}\n  - {name: c, subnet: 10.0.3.0/24}\nlinks:\n  - {between: [a, b], rtt: 1ms}\n", []string{
			`t.yaml:6:3: links: no link between a and c: every pair of regions needs one, like {between: [a, c], rtt: 50ms}`,
			`t.yaml:6:3: links: no link between b and c: every pair of regions needs one, like {between: [b, c], rtt: 50ms}`,
		}},
		{"no links at all", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\n  - {name: b, subnet: 10.0.2.0/24}\n", []string{
			`t.yaml:1:1: links: no link between a and b: every pair of regions needs one, like {between: [a, b], rtt: 50ms}`,
		}},
		{"duplicate link", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\n  - {name: b, subnet: 10.0.2.0/24}\nlinks:\n  - {between: [a, b], rtt: 1ms}\n  - {between: [b, a], rtt: 2ms}\n", []string{
			`t.yaml:6:15: links[1].between: b and a are already linked on line 5`,
		}},
		{"link to unknown region", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\n  - {name: b, subnet: 10.0.2.0/24}\nlinks:\n  - {between: [a, b], rtt: 1ms}\n  - {between: [a, bb], rtt: 1ms}\n", []string{
			`t.yaml:6:19: links[1].between[1]: unknown region "bb" (known: a, b)`,
		}},
		{"link ends", "regions:\n  - {name: a, subnet: 10.0.1.0/24}\nlinks:\n  - {between: [a], rtt: 1ms}\n  - {between: [a, a], rtt: 1ms}\n  - {rtt: 1ms}\n", []string{
			`t.yaml:4:15: links[0].between: must name exactly two regions, got 1`,
			`t.yaml:5:15: links[1].between: a link joins two different regions, got "a" twice`,
			`t.yaml:6:5: links[2].between: required: the two regions, like [us-east, eu-west]`,
		}},
		{"link values", validTwoLink("{between: [a, b], rtt: -5ms, jitter: 2ms, loss: 1.5, bandwidth: 10mb}"), []string{
			`t.yaml:12:28: links[0].rtt: must not be negative, got -5ms`,
			`t.yaml:12:53: links[0].loss: must be between 0 and 1, got 1.5`,
			`t.yaml:12:69: links[0].bandwidth: "10mb" is not a bandwidth like "10mbit", "500kbit" or 0 for unlimited`,
		}},
		{"rtt required and not a duration", validTwoLink("{between: [a, b], jitter: 5}"), []string{
			`t.yaml:12:5: links[0].rtt: required`,
			`t.yaml:12:31: links[0].jitter: must be a duration like "45s" or "70ms", not "5"`,
		}},
		{"jitter over rtt", validTwoLink("{between: [a, b], rtt: 1ms, jitter: 2ms}"), []string{
			`t.yaml:12:41: links[0].jitter: 2ms is more than the rtt 1ms`,
		}},
		{"loss not number", validTwoLink("{between: [a, b], rtt: 1ms, loss: lots}"), []string{
			`t.yaml:12:39: links[0].loss: must be a finite number, not "lots"`,
		}},
		{"wrong kinds", "name: [x]\nimage: ''\nregions: {a: 1}\nlinks: 3\n", []string{
			`t.yaml:1:7: name: must be a string, not a list`,
			`t.yaml:2:8: image: must not be empty`,
			`t.yaml:3:10: regions: must be a list, not a mapping`,
			`t.yaml:4:8: links: must be a list, not "3"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse("t.yaml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Nil(t, top)
			var list *yamlx.Errors
			require.True(t, errors.As(err, &list))
			got := make([]string, len(list.List))
			for i, e := range list.List {
				got[i] = e.Error()
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func validTwoLink(link string) string {
	return validTwo[:len(validTwo)-len("  - {between: [a, b], rtt: 10ms, jitter: 1ms, loss: 0.01, bandwidth: 10mbit}\n")] + "  - " + link + "\n"
}

func long(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestLoadRejectsNonRegularFiles(t *testing.T) {
	_, err := Load(os.DevNull)
	require.ErrorContains(t, err, "not a regular file")
	_, err = Load("does-not-exist.yaml")
	require.ErrorContains(t, err, "does-not-exist.yaml")
}

func FuzzParseTopology(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte(validTwo))
	f.Add([]byte("regions: [&r {name: a, subnet: 10.0.0.0/24}, *r]\nlinks: [{between: [a, a]}]"))
	f.Add([]byte("regions:\n  - {name: a, subnet: 10.0.0.0/16, nodes: [{role: web, count: 64}]}"))
	f.Add([]byte(withCapacity))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("fuzz.yaml", data)
		if err != nil {
			assert.Nil(t, top)
			return
		}
		// Whatever parses must plan uniquely named nodes inside their subnets.
		seen := map[string]bool{}
		for _, p := range top.Plan("f") {
			require.False(t, seen[p.Name])
			seen[p.Name] = true
			r, ok := top.RegionOf(p.IP)
			require.True(t, ok)
			require.Equal(t, p.Region, r)
			require.LessOrEqual(t, len(p.Name), 63)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	two, err := Parse("two.yaml", []byte(validTwo))
	require.NoError(t, err)
	geo, err := Load("geo.yaml")
	require.NoError(t, err)
	assert.Equal(t, DNS{TTL: 2 * time.Second, CheckInterval: 500 * time.Millisecond, CheckTimeout: 400 * time.Millisecond, Fall: 3, Rise: 2}, geo.DNS)
	assert.Equal(t, "app.faultline.test", geo.DNS.AppName())
	assert.True(t, geo.HasRole("geodns"))
	assert.False(t, two.HasRole("geodns"))
	stream, err := Load("stream.yaml")
	require.NoError(t, err)
	assert.Equal(t, Stream{SentencesPerSpout: 10000, Rate: 200, Sink: "console"}, stream.Stream)
	fed, err := Load("stream-broker.yaml")
	require.NoError(t, err)
	assert.Equal(t, Stream{SentencesPerSpout: 10000, Rate: 200, StateInDB: true, FromBroker: true, Sink: "db"}, fed.Stream)
	for _, top := range []*Topology{Default(), two, geo, stream, fed} {
		data, err := yaml.Marshal(top)
		require.NoError(t, err)
		again, err := Parse(top.File, data)
		require.NoError(t, err, "%s", data)
		assert.Equal(t, top, again)
	}
}

func TestFormatBandwidth(t *testing.T) {
	for bps, want := range map[int64]string{0: "", 64: "64bit", 500_000: "500kbit", 1_500_000: "1500kbit", 10_000_000: "10mbit", 2_000_000_000: "2gbit"} {
		assert.Equal(t, want, FormatBandwidth(bps))
		if bps > 0 {
			back, err := ParseBandwidth(want)
			require.NoError(t, err)
			assert.Equal(t, bps, back)
		}
	}
}
