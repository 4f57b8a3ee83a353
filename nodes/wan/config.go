// Package wan is the router role of faultline: a userspace WAN emulator that
// sits between region networks, reads every forwarded IPv4 packet from a TUN
// device, and delays, drops, paces or partitions it before handing it back to
// the kernel for forwarding. The kernel here has no netem, so this is where
// inter-region latency, jitter, loss, bandwidth and partitions come from.
package wan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Region is a named set of addresses; packets are classified by the region
// whose prefix contains their source and destination.
type Region struct {
	Name   string       `json:"name"`
	Prefix netip.Prefix `json:"prefix"`
}

// Pair names a directed region pair.
type Pair struct {
	From, To string
}

func (p Pair) String() string { return p.From + "->" + p.To }

// Link is how one direction between two regions behaves.
type Link struct {
	Delay  time.Duration // one-way propagation delay
	Jitter time.Duration // uniform in [-Jitter, +Jitter] around Delay
	Loss   float64       // probability in [0,1] that a packet is dropped
	// BandwidthBps caps the link in bits per second; 0 means unlimited.
	BandwidthBps int64
}

// Validate reports values that cannot describe a link.
func (l Link) Validate() error {
	switch {
	case l.Delay < 0:
		return fmt.Errorf("negative delay %v", l.Delay)
	case l.Jitter < 0:
		return fmt.Errorf("negative jitter %v", l.Jitter)
	case l.Loss < 0 || l.Loss > 1:
		return fmt.Errorf("loss %v outside [0,1]", l.Loss)
	case l.BandwidthBps < 0:
		return fmt.Errorf("negative bandwidth %d", l.BandwidthBps)
	}
	return nil
}

// LinkSpec is a Link with its direction; it is also the JSON shape of the
// control API: {"from":"us-east","to":"eu-west","delay":"35ms","jitter":"2ms",
// "loss":0.01,"bandwidth":"10mbit"}. bandwidth may also be a number of bits/s.
type LinkSpec struct {
	From string
	To   string
	Link
}

type linkSpecJSON struct {
	From      string          `json:"from"`
	To        string          `json:"to"`
	Delay     string          `json:"delay,omitempty"`
	Jitter    string          `json:"jitter,omitempty"`
	Loss      float64         `json:"loss,omitempty"`
	Bandwidth json.RawMessage `json:"bandwidth,omitempty"`
}

// MarshalJSON writes durations as Go duration strings and bandwidth in bits/s.
func (s LinkSpec) MarshalJSON() ([]byte, error) {
	j := linkSpecJSON{From: s.From, To: s.To, Delay: s.Delay.String(), Loss: s.Loss}
	if s.Jitter != 0 {
		j.Jitter = s.Jitter.String()
	}
	if s.BandwidthBps != 0 {
		j.Bandwidth = json.RawMessage(strconv.FormatInt(s.BandwidthBps, 10))
	}
	return json.Marshal(j)
}

// UnmarshalJSON accepts the shape described on LinkSpec and rejects unknown fields.
func (s *LinkSpec) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var j linkSpecJSON
	if err := dec.Decode(&j); err != nil {
		return err
	}
	out := LinkSpec{From: j.From, To: j.To, Link: Link{Loss: j.Loss}}
	var err error
	if j.Delay != "" {
		if out.Delay, err = time.ParseDuration(j.Delay); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
	}
	if j.Jitter != "" {
		if out.Jitter, err = time.ParseDuration(j.Jitter); err != nil {
			return fmt.Errorf("jitter: %w", err)
		}
	}
	if len(j.Bandwidth) > 0 {
		var str string
		if json.Unmarshal(j.Bandwidth, &str) == nil {
			out.BandwidthBps, err = ParseBandwidth(str)
		} else {
			err = json.Unmarshal(j.Bandwidth, &out.BandwidthBps)
		}
		if err != nil {
			return fmt.Errorf("bandwidth: %w", err)
		}
	}
	*s = out
	return nil
}

// ParseRegions parses "name=cidr,name=cidr".
func ParseRegions(s string) ([]Region, error) {
	var regions []Region
	seen := map[string]bool{}
	for _, item := range splitList(s) {
		name, cidr, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("region %q: want name=cidr", item)
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("region %q: %w", name, err)
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("region %q: %s is not IPv4", name, p)
		}
		if seen[name] {
			return nil, fmt.Errorf("region %q: duplicate", name)
		}
		seen[name] = true
		regions = append(regions, Region{Name: name, Prefix: p.Masked()})
	}
	if len(regions) == 0 {
		return nil, errors.New("no regions")
	}
	return regions, nil
}

// ParseLinks parses "from:to:delay[:jitter[:loss[:bandwidth]]],..."; each
// item is one direction. Example: "us-east:eu-west:35ms:1ms:0.01:10mbit".
func ParseLinks(s string) ([]LinkSpec, error) {
	var out []LinkSpec
	for _, item := range splitList(s) {
		f := strings.Split(item, ":")
		if len(f) < 3 || len(f) > 6 {
			return nil, fmt.Errorf("link %q: want from:to:delay[:jitter[:loss[:bandwidth]]]", item)
		}
		spec := LinkSpec{From: f[0], To: f[1]}
		var err error
		if spec.Delay, err = time.ParseDuration(f[2]); err != nil {
			return nil, fmt.Errorf("link %q: delay: %w", item, err)
		}
		if len(f) > 3 && f[3] != "" {
			if spec.Jitter, err = time.ParseDuration(f[3]); err != nil {
				return nil, fmt.Errorf("link %q: jitter: %w", item, err)
			}
		}
		if len(f) > 4 && f[4] != "" {
			if spec.Loss, err = parseLoss(f[4]); err != nil {
				return nil, fmt.Errorf("link %q: loss: %w", item, err)
			}
		}
		if len(f) > 5 && f[5] != "" {
			if spec.BandwidthBps, err = ParseBandwidth(f[5]); err != nil {
				return nil, fmt.Errorf("link %q: %w", item, err)
			}
		}
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("link %q: %w", item, err)
		}
		out = append(out, spec)
	}
	return out, nil
}

// parseLoss accepts a fraction ("0.1") or a percentage ("10%").
func parseLoss(s string) (float64, error) {
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		return v / 100, err
	}
	return strconv.ParseFloat(s, 64)
}

// ParseBandwidth parses bits per second with an optional decimal suffix:
// "10mbit", "1gbit", "512kbit", "1000" (bits/s). "0" means unlimited.
func ParseBandwidth(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*float64(mult) > 1e15 {
		return 0, fmt.Errorf("bad bandwidth %q", s)
	}
	return int64(v * float64(mult)), nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
