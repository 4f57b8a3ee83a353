package geodns

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleJSON = `{
  "zone": "Example.TEST",
  "ttl": "10s",
  "default_region": "b",
  "regions": [
    {"name": "a", "subnet": "10.1.0.0/16", "lb": "10.1.0.10:8080"},
    {"name": "b", "subnet": "10.2.0.0/16", "lb": "lb-b:80", "addrs": ["10.2.0.10", "10.2.0.11"]}
  ],
  "rtt_ms": {"a": {"b": 70}},
  "nameservers": [{"name": "ns.example.test", "addr": "10.1.0.53"}],
  "check": {"interval": "250ms", "timeout": "100ms", "fall": 4, "rise": 1}
}`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(sampleJSON))
	require.NoError(t, err)
	c = c.WithDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, "example.test.", c.Zone)
	assert.Equal(t, "app.example.test.", c.Name)
	assert.Equal(t, 10*time.Second, c.TTL)
	assert.Equal(t, "b", c.DefaultRegion)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.1.0.10")}, c.Regions[0].Addrs, "addrs default to the LB host")
	assert.Len(t, c.Regions[1].Addrs, 2)
	assert.Equal(t, HealthCheck{Interval: 250 * time.Millisecond, Timeout: 100 * time.Millisecond, Fall: 4, Rise: 1}, c.Check)
	assert.Equal(t, []Nameserver{{Name: "ns.example.test.", Addr: netip.MustParseAddr("10.1.0.53")}}, c.Nameservers)

	for name, bad := range map[string]string{
		"unknown field":  `{"zone": "x.", "colour": "red"}`,
		"bad subnet":     `{"regions": [{"name": "a", "subnet": "10.1.0.0/99"}]}`,
		"bad duration":   `{"ttl": "5 parsecs"}`,
		"trailing data":  `{} {}`,
		"not an object":  `[1, 2]`,
		"wrong type rtt": `{"rtt_ms": {"a": {"b": "far"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(bad))
			assert.Error(t, err)
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		errSub string
	}{
		{"ok", func(*Config) {}, ""},
		{"no regions", func(c *Config) { c.Regions = nil }, "no regions"},
		{"duplicate region", func(c *Config) { c.Regions[1].Name = "us-east" }, "duplicate"},
		{"host bits", func(c *Config) { c.Regions[0].Subnet = netip.MustParsePrefix("10.1.0.1/16") }, "host bits"},
		{"lb is a name without addrs", func(c *Config) { c.Regions[0].LB = "lb-us:80" }, "not an IPv4 address"},
		{"ipv6 answer", func(c *Config) { c.Regions[0].Addrs = []netip.Addr{netip.MustParseAddr("fd00::1")} }, "not IPv4"},
		{"missing rtt pair", func(c *Config) { delete(c.RTT["us-east"], "ap-south") }, "rtt us-east-ap-south: missing"},
		{"rtt for unknown region", func(c *Config) { c.RTT["mars"] = map[string]float64{"us-east": 1} }, "unknown region"},
		{"negative rtt", func(c *Config) { c.RTT["eu-west"]["ap-south"] = -1 }, "non-negative"},
		{"unknown default", func(c *Config) { c.DefaultRegion = "mars" }, "default region"},
		{"name outside zone", func(c *Config) { c.Name = "app.example.com." }, "inside zone"},
		{"sub-second ttl", func(c *Config) { c.TTL = time.Millisecond }, "ttl"},
		{"negative fall", func(c *Config) { c.Check.Fall = -1 }, "fall"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.mutate(&c)
			err := c.WithDefaults().Validate()
			if tc.errSub == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errSub)
		})
	}
}

func TestParseFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geodns.json")
	require.NoError(t, os.WriteFile(path, []byte(sampleJSON), 0o600))

	cfg, dnsAddr, httpAddr, sockets, err := parseFlags([]string{
		"--config", path, "--ttl", "3s", "--dns-listen", "127.0.0.1:5353", "--fall", "2",
		"--rtt", "a:b=80", "--udp-sockets", "3",
	})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5353", dnsAddr)
	assert.Equal(t, ":8080", httpAddr)
	assert.Equal(t, 3, sockets)
	assert.Equal(t, 3*time.Second, cfg.TTL, "flag overrides file")
	assert.Equal(t, 2, cfg.Check.Fall, "flag overrides file")
	assert.Equal(t, 1, cfg.Check.Rise, "file value kept")
	assert.Equal(t, 80.0, cfg.RTT["a"]["b"])
	assert.Len(t, cfg.Regions, 2)

	cfg, _, _, _, err = parseFlags([]string{
		"--region", "name=x,subnet=10.8.0.0/16,lb=10.8.0.10:8080",
		"--region", "name=y,subnet=10.9.0.0/16,lb=lb-y,addrs=10.9.0.10;10.9.0.11",
		"--rtt", "x:y=12.5",
		"--nameserver", "ns1.faultline.test.=10.8.0.53",
	})
	require.NoError(t, err)
	require.NoError(t, cfg.WithDefaults().Validate())
	assert.Equal(t, "y", cfg.Regions[1].Name)
	assert.Len(t, cfg.Regions[1].Addrs, 2)
	assert.Equal(t, 12.5, cfg.RTT["x"]["y"])

	for _, bad := range [][]string{
		{"--region", "name=x,colour=red"},
		{"--region", "name"},
		{"--region", "subnet=nope"},
		{"--rtt", "x-y=1"},
		{"--rtt", "x:y=far"},
		{"--nameserver", "ns.=not-an-ip"},
		{"--no-such-flag"},
		{"stray"},
		{"--config", filepath.Join(t.TempDir(), "missing.json")},
	} {
		_, _, _, _, err := parseFlags(bad)
		assert.Error(t, err, "%v", bad)
	}
}
