package geodns

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubnetLookup(t *testing.T) {
	regions := []Region{
		{Name: "wide", Subnet: netip.MustParsePrefix("10.0.0.0/8")},
		{Name: "narrow", Subnet: netip.MustParsePrefix("10.1.2.0/24")},
		{Name: "mid", Subnet: netip.MustParsePrefix("10.1.0.0/16")},
		{Name: "v6", Subnet: netip.MustParsePrefix("fd00:1::/64")},
	}
	tbl := newSubnetTable(regions)
	for _, tc := range []struct {
		addr   string
		region string // "" = no match
		bits   int
	}{
		{"10.1.2.3", "narrow", 24},
		{"10.1.3.3", "mid", 16},
		{"10.9.9.9", "wide", 8},
		{"::ffff:10.1.2.200", "narrow", 24},
		{"fd00:1::5", "v6", 64},
		{"fd00:2::5", "", 0},
		{"192.168.1.1", "", 0},
		{"127.0.0.1", "", 0},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			i, bits, ok := tbl.lookup(netip.MustParseAddr(tc.addr))
			if tc.region == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tc.region, regions[i].Name)
			assert.Equal(t, tc.bits, bits)
		})
	}
	_, _, ok := tbl.lookup(netip.Addr{})
	assert.False(t, ok, "the zero address matches nothing")
}

func TestRoutes(t *testing.T) {
	cfg := testConfig().WithDefaults()
	tie := Config{
		Regions: []Region{{Name: "b"}, {Name: "c"}, {Name: "a"}},
		RTT:     map[string]map[string]float64{"b": {"c": 50, "a": 50}, "c": {"a": 10}},
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		healthy []bool
		want    []string
	}{
		{"all healthy", cfg, []bool{true, true, true}, []string{"us-east", "eu-west", "ap-south"}},
		{"us-east down", cfg, []bool{false, true, true}, []string{"eu-west", "eu-west", "ap-south"}},
		{"eu-west down", cfg, []bool{true, false, true}, []string{"us-east", "us-east", "ap-south"}},
		{"ap-south down", cfg, []bool{true, true, false}, []string{"us-east", "eu-west", "eu-west"}},
		{"only ap-south up", cfg, []bool{false, false, true}, []string{"ap-south", "ap-south", "ap-south"}},
		{"none healthy keeps own", cfg, []bool{false, false, false}, []string{"us-east", "eu-west", "ap-south"}},
		{"tie broken by name", tie, []bool{false, true, true}, []string{"a", "c", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, i := range routes(tc.cfg, tc.healthy) {
				got = append(got, tc.cfg.Regions[i].Name)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
