// Package geodns is faultline's authoritative GeoDNS server. It answers the
// testbed's application name with the load balancer of the client's region,
// actively health-checks each region's entry and, while a region is down,
// sends its clients to the nearest healthy region by the topology's RTT
// matrix.
package geodns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config is everything a GeoDNS server needs. Zero fields take the defaults
// documented on each field (see WithDefaults).
type Config struct {
	Zone string        // default "faultline.test."
	Name string        // the geo-routed name; default "app." + Zone
	TTL  time.Duration // TTL of every record and the SOA minimum; default 5s

	Regions []Region
	// RTT holds round-trip times in milliseconds between regions. One
	// direction per pair is enough; the matrix is taken as symmetric.
	RTT map[string]map[string]float64
	// DefaultRegion answers clients that match no region subnet; default the
	// first region.
	DefaultRegion string

	// Nameservers are the zone apex NS records; default one "ns1." + Zone.
	Nameservers []Nameserver
	Check       HealthCheck
}

// Region is one region as GeoDNS sees it.
type Region struct {
	Name   string
	Subnet netip.Prefix
	// LB is the region's entry, "host" or "host:port"; it is health checked
	// with GET http://<LB>/healthz.
	LB string
	// Addrs are the A records answered for the region; default LB's host,
	// which must then be an IPv4 address.
	Addrs []netip.Addr
}

// Nameserver is one NS record of the zone apex. Addr, when set and Name is
// inside the zone, is also served as the name's A record (glue).
type Nameserver struct {
	Name string
	Addr netip.Addr
}

// HealthCheck configures the active checks of each region's LB.
type HealthCheck struct {
	Interval time.Duration // default 1s
	Timeout  time.Duration // per probe; default 500ms
	Fall     int           // consecutive failures before a region is down; default 3
	Rise     int           // consecutive successes before it is up again; default 2
}

// WithDefaults returns a copy of c with defaults filled in and names made
// fully qualified and lower case.
func (c Config) WithDefaults() Config {
	if c.Zone == "" {
		c.Zone = "faultline.test."
	}
	c.Zone = canonical(c.Zone)
	if c.Name == "" {
		c.Name = "app." + c.Zone
	}
	c.Name = canonical(c.Name)
	if c.TTL == 0 {
		c.TTL = 5 * time.Second
	}
	if c.DefaultRegion == "" && len(c.Regions) > 0 {
		c.DefaultRegion = c.Regions[0].Name
	}
	if len(c.Nameservers) == 0 {
		c.Nameservers = []Nameserver{{Name: "ns1." + c.Zone}}
	}
	ns := make([]Nameserver, len(c.Nameservers))
	for i, n := range c.Nameservers {
		ns[i] = Nameserver{Name: canonical(n.Name), Addr: n.Addr}
	}
	c.Nameservers = ns
	regions := make([]Region, len(c.Regions))
	for i, r := range c.Regions {
		if len(r.Addrs) == 0 {
			if a, err := netip.ParseAddr(lbHost(r.LB)); err == nil {
				r.Addrs = []netip.Addr{a}
			}
		}
		regions[i] = r
	}
	c.Regions = regions
	if c.Check.Interval == 0 {
		c.Check.Interval = time.Second
	}
	if c.Check.Timeout == 0 {
		c.Check.Timeout = 500 * time.Millisecond
	}
	if c.Check.Fall == 0 {
		c.Check.Fall = 3
	}
	if c.Check.Rise == 0 {
		c.Check.Rise = 2
	}
	return c
}

// Validate reports the first problem that would make the server answer
// wrongly. Call it on a config that went through WithDefaults.
func (c Config) Validate() error {
	if _, ok := dns.IsDomainName(c.Zone); !ok {
		return fmt.Errorf("zone %q: not a domain name", c.Zone)
	}
	if _, ok := dns.IsDomainName(c.Name); !ok || !dns.IsSubDomain(c.Zone, c.Name) {
		return fmt.Errorf("name %q: not a domain name inside zone %q", c.Name, c.Zone)
	}
	if c.TTL < time.Second || c.TTL > math.MaxInt32*time.Second {
		return fmt.Errorf("ttl %s: must be between 1s and 2^31-1 s", c.TTL)
	}
	if len(c.Regions) == 0 {
		return errors.New("no regions")
	}
	seen := make(map[string]bool, len(c.Regions))
	for _, r := range c.Regions {
		if r.Name == "" {
			return errors.New("region without a name")
		}
		if seen[r.Name] {
			return fmt.Errorf("region %q: duplicate name", r.Name)
		}
		seen[r.Name] = true
		if !r.Subnet.IsValid() {
			return fmt.Errorf("region %q: missing subnet", r.Name)
		}
		if r.Subnet != r.Subnet.Masked() {
			return fmt.Errorf("region %q: subnet %s has host bits set", r.Name, r.Subnet)
		}
		if r.LB == "" {
			return fmt.Errorf("region %q: missing lb", r.Name)
		}
		if len(r.Addrs) == 0 {
			return fmt.Errorf("region %q: lb %q is not an IPv4 address and no addrs given", r.Name, r.LB)
		}
		for _, a := range r.Addrs {
			if !a.Unmap().Is4() {
				return fmt.Errorf("region %q: answer address %s is not IPv4", r.Name, a)
			}
		}
	}
	if !seen[c.DefaultRegion] {
		return fmt.Errorf("default region %q: no such region", c.DefaultRegion)
	}
	for a, row := range c.RTT {
		for b, ms := range row {
			if !seen[a] || !seen[b] {
				return fmt.Errorf("rtt %s-%s: unknown region", a, b)
			}
			if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
				return fmt.Errorf("rtt %s-%s: %v ms is not a finite non-negative number", a, b, ms)
			}
		}
	}
	// Failover order comes from the matrix, so a missing pair would silently
	// pick the wrong region.
	for i, a := range c.Regions {
		for _, b := range c.Regions[i+1:] {
			if _, ok := c.rtt(a.Name, b.Name); !ok {
				return fmt.Errorf("rtt %s-%s: missing", a.Name, b.Name)
			}
		}
	}
	for _, n := range c.Nameservers {
		if _, ok := dns.IsDomainName(n.Name); !ok {
			return fmt.Errorf("nameserver %q: not a domain name", n.Name)
		}
		if n.Addr.IsValid() && !n.Addr.Unmap().Is4() {
			return fmt.Errorf("nameserver %q: address %s is not IPv4", n.Name, n.Addr)
		}
		if strings.EqualFold(n.Name, c.Name) {
			return fmt.Errorf("nameserver %q: same as the geo-routed name", n.Name)
		}
	}
	ch := c.Check
	if ch.Interval <= 0 || ch.Timeout <= 0 || ch.Fall < 1 || ch.Rise < 1 {
		return fmt.Errorf("health check: interval and timeout must be > 0, fall and rise >= 1 (got %+v)", ch)
	}
	return nil
}

// rtt looks the pair up in either direction.
func (c Config) rtt(a, b string) (float64, bool) {
	if a == b {
		return 0, true
	}
	if ms, ok := c.RTT[a][b]; ok {
		return ms, true
	}
	ms, ok := c.RTT[b][a]
	return ms, ok
}

// jsonConfig is the file format: Config with durations as strings ("5s").
type jsonConfig struct {
	Zone          string                        `json:"zone"`
	Name          string                        `json:"name"`
	TTL           string                        `json:"ttl"`
	Regions       []jsonRegion                  `json:"regions"`
	RTT           map[string]map[string]float64 `json:"rtt_ms"`
	DefaultRegion string                        `json:"default_region"`
	Nameservers   []jsonNameserver              `json:"nameservers"`
	Check         struct {
		Interval string `json:"interval"`
		Timeout  string `json:"timeout"`
		Fall     int    `json:"fall"`
		Rise     int    `json:"rise"`
	} `json:"check"`
}

type jsonRegion struct {
	Name   string       `json:"name"`
	Subnet netip.Prefix `json:"subnet"`
	LB     string       `json:"lb"`
	Addrs  []netip.Addr `json:"addrs"`
}

type jsonNameserver struct {
	Name string     `json:"name"`
	Addr netip.Addr `json:"addr"`
}

// ParseConfig decodes a JSON config strictly (unknown fields are errors). The
// result has no defaults applied.
func ParseConfig(data []byte) (Config, error) {
	var j jsonConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Config{}, fmt.Errorf("decode config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("decode config: trailing data after the JSON object")
	}
	c := Config{Zone: j.Zone, Name: j.Name, RTT: j.RTT, DefaultRegion: j.DefaultRegion}
	var err error
	for _, d := range []struct {
		field string
		src   string
		dst   *time.Duration
	}{
		{"ttl", j.TTL, &c.TTL},
		{"check.interval", j.Check.Interval, &c.Check.Interval},
		{"check.timeout", j.Check.Timeout, &c.Check.Timeout},
	} {
		if d.src == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(d.src); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", d.field, err)
		}
	}
	c.Check.Fall, c.Check.Rise = j.Check.Fall, j.Check.Rise
	for _, r := range j.Regions {
		c.Regions = append(c.Regions, Region(r))
	}
	for _, n := range j.Nameservers {
		c.Nameservers = append(c.Nameservers, Nameserver(n))
	}
	return c, nil
}

// LoadConfig reads and decodes a JSON config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// lbHost strips an optional port from an LB address.
func lbHost(lb string) string {
	if h, _, err := net.SplitHostPort(lb); err == nil {
		return h
	}
	return lb
}
