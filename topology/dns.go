package topology

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

// DNS configures the topology's geodns nodes, where it has any: the zone
// they serve, the TTL of their answers and how they health-check each
// region's entry. Zero fields take geodns's defaults (zone faultline.test,
// TTL 5 s, a check every 1 s with a 500 ms timeout, down after 3 failures,
// up after 2 successes). A region's clients notice a dead region within
// about CheckInterval × Fall + TTL.
type DNS struct {
	Zone          string
	TTL           time.Duration
	CheckInterval time.Duration
	CheckTimeout  time.Duration
	Fall, Rise    int
}

// AppName is the name clients resolve to reach the application.
func (d DNS) AppName() string {
	zone := d.Zone
	if zone == "" {
		zone = "faultline.test"
	}
	return "app." + zone
}

// HasRole says whether any region places nodes of role.
func (t *Topology) HasRole(role string) bool {
	for _, r := range t.Regions {
		for _, g := range r.Nodes {
			if g.Role == role && g.Count > 0 {
				return true
			}
		}
	}
	return false
}

// Bounds past which a DNS setting is a typo: a TTL over an hour would make
// a failover invisible within any run, a check interval under 50 ms would
// load every region's entry more than the clients do.
const (
	maxTTL           = time.Hour
	minCheckInterval = 50 * time.Millisecond
	maxCheckInterval = time.Minute
	maxFallRise      = 100
)

func decodeDNS(d *yamlx.Decoder, n *yaml.Node, path string) DNS {
	var out DNS
	if n == nil {
		return out
	}
	m, ok := d.Mapping(n, path, "zone", "ttl", "check_interval", "check_timeout", "fall", "rise")
	if !ok {
		return out
	}
	if zn := m["zone"]; zn != nil {
		if s, ok := d.String(zn, yamlx.Field(path, "zone")); ok {
			if !validZone(s) {
				d.Errorf(zn, yamlx.Field(path, "zone"), "%q is not a domain name of DNS labels (like faultline.test)", s)
			}
			out.Zone = s
		}
	}
	durations := []struct {
		key      string
		min, max time.Duration
		dst      *time.Duration
	}{
		{"ttl", time.Second, maxTTL, &out.TTL},
		{"check_interval", minCheckInterval, maxCheckInterval, &out.CheckInterval},
		{"check_timeout", 10 * time.Millisecond, maxCheckInterval, &out.CheckTimeout},
	}
	for _, f := range durations {
		vn := m[f.key]
		if vn == nil {
			continue
		}
		if v, ok := d.Duration(vn, yamlx.Field(path, f.key)); ok {
			if v < f.min || v > f.max {
				d.Errorf(vn, yamlx.Field(path, f.key), "must be between %s and %s, got %s", f.min, f.max, v)
			}
			*f.dst = v
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"fall", &out.Fall}, {"rise", &out.Rise}} {
		key, dst := f.key, f.dst
		vn := m[key]
		if vn == nil {
			continue
		}
		if v, ok := d.Int(vn, yamlx.Field(path, key)); ok {
			if v < 1 || v > maxFallRise {
				d.Errorf(vn, yamlx.Field(path, key), "must be between 1 and %d, got %d", maxFallRise, v)
			}
			*dst = int(v)
		}
	}
	return out
}

func validZone(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !dnsLabel.MatchString(s[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}
