package deploy

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/faultline/faultline/topology"
)

// DNSPort is where geodns nodes answer, over UDP and TCP.
const DNSPort = 53

func init() {
	// After the balancers it health-checks, before the clients that ask it.
	register("geodns", role{order: 30, args: geodnsArgs})
}

// geodnsArgs gives every geodns node the same view: each region's subnet
// and entry (its first lb), the RTT between every pair of regions (the
// failover order), the topology's DNS settings, and every geodns node as a
// nameserver of the zone. So any of them answers any client alike, and a
// region's clients can fall back to another region's server.
func geodnsArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	dns := p.top.DNS
	args := []string{"--dns-listen", ":" + strconv.Itoa(DNSPort), "--listen", ":" + strconv.Itoa(Port)}
	if dns.Zone != "" {
		args = append(args, "--zone", dns.Zone)
	}
	for _, f := range []struct {
		flag string
		set  bool
		val  string
	}{
		{"--ttl", dns.TTL > 0, dns.TTL.String()},
		{"--check-interval", dns.CheckInterval > 0, dns.CheckInterval.String()},
		{"--check-timeout", dns.CheckTimeout > 0, dns.CheckTimeout.String()},
		{"--fall", dns.Fall > 0, strconv.Itoa(dns.Fall)},
		{"--rise", dns.Rise > 0, strconv.Itoa(dns.Rise)},
	} {
		if f.set {
			args = append(args, f.flag, f.val)
		}
	}
	for _, r := range p.top.Regions {
		lbs := p.in(r.Name, "lb")
		if len(lbs) == 0 {
			return nil, fmt.Errorf("geodns %s: region %s has no lb to send its clients to", n.Name, r.Name)
		}
		args = append(args, "--region", fmt.Sprintf("name=%s,subnet=%s,lb=%s", r.Name, r.Subnet, hostPort(lbs[0].IP)))
	}
	for i, a := range p.top.Regions {
		for _, b := range p.top.Regions[i+1:] {
			ms := float64(p.top.RTT(a.Name, b.Name).Microseconds()) / 1000
			args = append(args, "--rtt", fmt.Sprintf("%s:%s=%s", a.Name, b.Name, strconv.FormatFloat(ms, 'f', -1, 64)))
		}
	}
	for _, ns := range p.all("geodns") {
		args = append(args, "--nameserver", "ns-"+ns.Region+"."+zoneOf(dns)+"="+ns.IP.String())
	}
	return args, nil
}

func zoneOf(d topology.DNS) string {
	if d.Zone == "" {
		return "faultline.test"
	}
	return d.Zone
}

// Resolvers lists the DNS servers a client in region should ask, in order:
// its own region's geodns first, then the others' from the nearest region
// out, so losing a region breaks no one else's DNS. Empty when the
// topology has no geodns.
func (d *Deployment) Resolvers(top *topology.Topology, region string) []string {
	var out []string
	for _, r := range top.ByDistance(region) {
		for _, n := range d.NodesOf("geodns", r) {
			out = append(out, netip.AddrPortFrom(n.IP, DNSPort).String())
		}
	}
	return out
}
