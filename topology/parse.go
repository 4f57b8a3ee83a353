package topology

import (
	_ "embed"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultFile is the name Default reports errors and File against.
const DefaultFile = "topology/default.yaml"

// Default returns the three-region topology of topology/default.yaml.
func Default() *Topology {
	t, err := Parse(DefaultFile, defaultYAML)
	if err != nil {
		// The file is embedded and tested; failing here is a build defect.
		panic(fmt.Sprintf("embedded default topology: %v", err))
	}
	return t
}

// Parse decodes and validates a topology file; errors are an *yamlx.Errors
// naming file:line:column and field for every problem found.
func Parse(file string, data []byte) (*Topology, error) {
	d := yamlx.NewDecoder(file)
	root := d.Parse(data)
	if root == nil {
		return nil, d.Err()
	}
	t, ok := Decode(d, root, "")
	if !ok {
		return nil, d.Err()
	}
	return t, nil
}

const (
	maxCount      = 64
	maxNameLen    = 63
	minPrefixBits = 16
	maxPrefixBits = 27
)

// dnsLabel is RFC 1123's label, lower case only since Docker network and
// container names derived from it are compared as written.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Decode reads a topology from n (a whole file, or a mapping inline in a
// scenario at path) and validates it, reporting problems to d. It returns
// false if any were found.
func Decode(d *yamlx.Decoder, n *yaml.Node, path string) (*Topology, bool) {
	before := d.Len()
	base := filepath.Base(d.File())
	t := &Topology{
		Name:  strings.TrimSuffix(base, filepath.Ext(base)),
		Image: DefaultImage,
		File:  d.File(),
	}
	m, ok := d.Mapping(n, path, "name", "image", "regions", "links", "dns", "stream")
	if !ok {
		return nil, false
	}
	if v, ok := m["name"]; ok {
		if s, ok := d.String(v, yamlx.Field(path, "name")); ok {
			if s == "" {
				d.Errorf(v, yamlx.Field(path, "name"), "must not be empty")
			}
			t.Name = s
		}
	}
	if v, ok := m["image"]; ok {
		if s, ok := d.String(v, yamlx.Field(path, "image")); ok {
			if s == "" {
				d.Errorf(v, yamlx.Field(path, "image"), "must not be empty")
			}
			t.Image = s
		}
	}
	regionsPath := yamlx.Field(path, "regions")
	regionNodes, seqOK := d.Seq(m["regions"], regionsPath)
	if m["regions"] == nil {
		d.Required(n, regionsPath, "a list of regions")
	} else if seqOK && len(regionNodes) == 0 {
		d.Errorf(m["regions"], regionsPath, "must list at least one region")
	}
	names := map[string]*yaml.Node{} // region name → its name node
	subnets := map[int]*yaml.Node{}  // region index → its subnet node
	for i, rn := range regionNodes {
		r, nameNode, subnetNode := decodeRegion(d, rn, yamlx.Index(regionsPath, i))
		if r.Name != "" {
			if prev, dup := names[r.Name]; dup {
				d.Errorf(nameNode, yamlx.Field(yamlx.Index(regionsPath, i), "name"), "region %q already defined on line %d", r.Name, prev.Line)
			} else {
				names[r.Name] = nameNode
			}
		}
		if r.Subnet.IsValid() {
			subnets[len(t.Regions)] = subnetNode
			for j, other := range t.Regions {
				if other.Subnet.IsValid() && other.Subnet.Overlaps(r.Subnet) {
					d.Errorf(subnetNode, yamlx.Field(yamlx.Index(regionsPath, i), "subnet"), "%s overlaps %s of region %q (line %d)", r.Subnet, other.Subnet, other.Name, subnets[j].Line)
				}
			}
		}
		t.Regions = append(t.Regions, r)
	}
	decodeLinks(d, t, m["links"], n, yamlx.Field(path, "links"), names)
	t.DNS = decodeDNS(d, m["dns"], yamlx.Field(path, "dns"))
	t.Stream = decodeStream(d, m["stream"], yamlx.Field(path, "stream"))
	checkDBVoters(d, t, orNode(m["regions"], n), regionsPath)
	return t, d.Len() == before
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func decodeRegion(d *yamlx.Decoder, n *yaml.Node, path string) (r Region, nameNode, subnetNode *yaml.Node) {
	m, ok := d.Mapping(n, path, "name", "subnet", "nodes")
	if !ok {
		return r, nil, nil
	}
	nameNode, subnetNode = m["name"], m["subnet"]
	if nameNode == nil {
		d.Required(n, yamlx.Field(path, "name"), "")
	} else if s, ok := d.String(nameNode, yamlx.Field(path, "name")); ok {
		switch {
		case !dnsLabel.MatchString(s):
			d.Errorf(nameNode, yamlx.Field(path, "name"), "%q is not a DNS label (lower-case letters, digits and inner hyphens, at most 63)", s)
		case s == "all":
			d.Errorf(nameNode, yamlx.Field(path, "name"), `"all" is reserved: scenarios use it for every region`)
		default:
			r.Name = s
		}
	}
	if subnetNode == nil {
		d.Required(n, yamlx.Field(path, "subnet"), "")
	} else if s, ok := d.String(subnetNode, yamlx.Field(path, "subnet")); ok {
		r.Subnet = checkSubnet(d, subnetNode, yamlx.Field(path, "subnet"), s)
	}
	nodesPath := yamlx.Field(path, "nodes")
	groups, _ := d.Seq(m["nodes"], nodesPath)
	roleLine := map[string]int{}
	for j, gn := range groups {
		gp := yamlx.Index(nodesPath, j)
		gm, ok := d.Mapping(gn, gp, "role", "count", "cores", "service_time", "voter")
		if !ok {
			continue
		}
		var g NodeGroup
		if rn := gm["role"]; rn == nil {
			d.Required(gn, yamlx.Field(gp, "role"), "")
		} else if s, ok := d.String(rn, yamlx.Field(gp, "role")); ok {
			switch l, dup := roleLine[s]; {
			case !slices.Contains(Roles, s):
				d.Errorf(rn, yamlx.Field(gp, "role"), "unknown role %q%s", s, yamlx.Hint(s, Roles))
			case dup:
				d.Errorf(rn, yamlx.Field(gp, "role"), "role %q already listed on line %d; use one group with a larger count", s, l)
			default:
				g.Role = s
				roleLine[s] = rn.Line
			}
		}
		if cn := gm["count"]; cn == nil {
			d.Required(gn, yamlx.Field(gp, "count"), "")
		} else if c, ok := d.Int(cn, yamlx.Field(gp, "count")); ok {
			if c < 0 || c > maxCount {
				d.Errorf(cn, yamlx.Field(gp, "count"), "must be between 0 and %d, got %d", maxCount, c)
			} else {
				g.Count = int(c)
			}
		}
		decodeCapacity(d, gm, gp, &g)
		decodeVoter(d, gm, gp, &g)
		if g.Role != "" && r.Name != "" && g.Count > 0 {
			if name := NodeName(g.Role, r.Name, g.Count); len(name) > maxNameLen {
				d.Errorf(gn, gp, "node name %q is %d characters; at most %d", name, len(name), maxNameLen)
			}
		}
		r.Nodes = append(r.Nodes, g)
	}
	if r.Subnet.IsValid() && r.NodeCount() > r.Capacity() {
		d.Errorf(subnetNode, yamlx.Field(path, "subnet"), "%s holds %d nodes (from %s to %s) but the region has %d",
			r.Subnet, r.Capacity(), offset(r.Subnet, firstNodeOffset), offset(r.Subnet, size(r.Subnet)-3), r.NodeCount())
	}
	return r, nameNode, subnetNode
}

// Capacity model bounds: a node with more cores than this, or a request
// longer than this, is a typo rather than a machine.
const (
	maxCores       = 1024
	maxServiceTime = 10 * time.Second
)

// decodeCapacity reads a group's cores and service_time (see NodeGroup).
func decodeCapacity(d *yamlx.Decoder, gm map[string]*yaml.Node, gp string, g *NodeGroup) {
	cn, sn := gm["cores"], gm["service_time"]
	if g.Role != "" && g.Role != "web" {
		for key, n := range map[string]*yaml.Node{"cores": cn, "service_time": sn} {
			if n != nil {
				d.Errorf(n, yamlx.Field(gp, key), "only web nodes have a capacity model, not %s", g.Role)
			}
		}
		return
	}
	if cn != nil {
		if c, ok := d.Int(cn, yamlx.Field(gp, "cores")); ok {
			if c < 1 || c > maxCores {
				d.Errorf(cn, yamlx.Field(gp, "cores"), "must be between 1 and %d, got %d", maxCores, c)
			} else {
				g.Cores = int(c)
			}
		}
	}
	if sn != nil {
		if v, ok := d.Duration(sn, yamlx.Field(gp, "service_time")); ok {
			switch {
			case v == 0 || v > maxServiceTime:
				d.Errorf(sn, yamlx.Field(gp, "service_time"), "must be in (0, %s], got %s", maxServiceTime, v)
			case cn == nil:
				d.Errorf(sn, yamlx.Field(gp, "service_time"), "needs cores: the requests served at once")
			default:
				g.ServiceTime = v
			}
		}
	}
}

func checkSubnet(d *yamlx.Decoder, n *yaml.Node, path, s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		d.Errorf(n, path, "%q is not a CIDR prefix like 10.201.1.0/24", s)
	case !p.Addr().Is4():
		d.Errorf(n, path, "%s is not IPv4", s)
	case p.Bits() < minPrefixBits || p.Bits() > maxPrefixBits:
		d.Errorf(n, path, "/%d is out of range: use /%d to /%d", p.Bits(), minPrefixBits, maxPrefixBits)
	case p != p.Masked():
		d.Errorf(n, path, "%s has host bits set (did you mean %s?)", s, p.Masked())
	default:
		return p
	}
	return netip.Prefix{}
}

func decodeLinks(d *yamlx.Decoder, t *Topology, n, parent *yaml.Node, path string, regions map[string]*yaml.Node) {
	items, _ := d.Seq(n, path)
	seen := map[[2]string]int{} // unordered pair → line
	for i, ln := range items {
		lp := yamlx.Index(path, i)
		m, ok := d.Mapping(ln, lp, "between", "rtt", "jitter", "loss", "bandwidth")
		if !ok {
			continue
		}
		var l Link
		valid := true
		bp := yamlx.Field(lp, "between")
		if bn := m["between"]; bn == nil {
			d.Required(ln, bp, "the two regions, like [us-east, eu-west]")
			valid = false
		} else if ends, ok := d.Strings(bn, bp); ok {
			switch {
			case len(ends) != 2:
				d.Errorf(bn, bp, "must name exactly two regions, got %d", len(ends))
				valid = false
			case ends[0] == ends[1]:
				d.Errorf(bn, bp, "a link joins two different regions, got %q twice", ends[0])
				valid = false
			default:
				for k, e := range ends {
					if _, ok := regions[e]; !ok {
						d.Errorf(bn.Content[k], yamlx.Index(bp, k), "unknown region %q%s", e, yamlx.Hint(e, mapKeys(regions)))
						valid = false
					}
				}
				l.A, l.B = ends[0], ends[1]
			}
		} else {
			valid = false
		}
		if valid {
			key := pair(l.A, l.B)
			if prev, dup := seen[key]; dup {
				d.Errorf(m["between"], bp, "%s and %s are already linked on line %d", l.A, l.B, prev)
			}
			seen[key] = m["between"].Line
		}
		rttOK := false
		if rn := m["rtt"]; rn == nil {
			d.Required(ln, yamlx.Field(lp, "rtt"), "")
		} else if v, ok := d.Duration(rn, yamlx.Field(lp, "rtt")); ok {
			l.RTT, rttOK = v, true
		}
		if jn := m["jitter"]; jn != nil {
			if v, ok := d.Duration(jn, yamlx.Field(lp, "jitter")); ok {
				if rttOK && v > l.RTT {
					d.Errorf(jn, yamlx.Field(lp, "jitter"), "%s is more than the rtt %s", v, l.RTT)
				}
				l.Jitter = v
			}
		}
		if ln2 := m["loss"]; ln2 != nil {
			if v, ok := d.Float(ln2, yamlx.Field(lp, "loss")); ok {
				if v < 0 || v > 1 {
					d.Errorf(ln2, yamlx.Field(lp, "loss"), "must be between 0 and 1, got %v", v)
				}
				l.Loss = v
			}
		}
		if bw := m["bandwidth"]; bw != nil {
			if s, ok := d.String(bw, yamlx.Field(lp, "bandwidth")); ok {
				v, err := ParseBandwidth(s)
				if err != nil {
					d.Errorf(bw, yamlx.Field(lp, "bandwidth"), "%v", err)
				}
				l.BandwidthBps = v
			}
		}
		t.Links = append(t.Links, l)
	}
	// Only complain about missing pairs between regions that are themselves
	// valid, so one typo in a name gives one error, not a cascade.
	for i, a := range t.Regions {
		for _, b := range t.Regions[i+1:] {
			if a.Name == "" || b.Name == "" || a.Name == b.Name {
				continue
			}
			if _, ok := seen[pair(a.Name, b.Name)]; !ok {
				d.Errorf(orNode(n, parent), path, "no link between %s and %s: every pair of regions needs one, like {between: [%s, %s], rtt: 50ms}", a.Name, b.Name, a.Name, b.Name)
			}
		}
	}
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

func mapKeys(m map[string]*yaml.Node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var bandwidthRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)bit$`)

// ParseBandwidth reads "0" or a rate like "500kbit", "10mbit", "1gbit"
// (decimal multiples, bits per second).
func ParseBandwidth(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	m := bandwidthRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf(`%q is not a bandwidth like "10mbit", "500kbit" or 0 for unlimited`, s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	v *= map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m[2]]
	if v > 1e12 {
		return 0, fmt.Errorf("%q is over the 1000gbit this emulator can mean", s)
	}
	return int64(math.Round(v)), nil
}
