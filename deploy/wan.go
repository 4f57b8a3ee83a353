package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

// WANNode is the node name of a run's inter-region router. It belongs to no
// region and is not in Deployment.Nodes, so a scenario can never pick it as
// a fault target.
const WANNode = "wan"

// wanSpec is the router between a multi-region topology's networks: one
// leg on every region network at the region's RouterIP, the topology's links
// as its initial configuration, and its control API published on 127.0.0.1
// for the controller's link and partition faults.
func wanSpec(top *topology.Topology, runID string, labels func(map[string]string) runtime.Labels) runtime.ContainerSpec {
	var regions []string
	var nets []runtime.Attachment
	for _, r := range top.Regions {
		regions = append(regions, r.Name+"="+r.Subnet.String())
		nets = append(nets, runtime.Attachment{Network: topology.NetworkName(runID, r.Name), IP: r.RouterIP().String()})
	}
	return runtime.ContainerSpec{
		Name:     ContainerName(runID, WANNode),
		Image:    top.Image,
		Cmd:      []string{"wan", "--regions", strings.Join(regions, ","), "--links", WANLinks(top.Links)},
		Env:      map[string]string{"FAULTLINE_NODE": WANNode, "FAULTLINE_ROLE": "wan"},
		Labels:   labels(map[string]string{runtime.LabelRole: "wan", runtime.LabelNode: WANNode}),
		Networks: nets,
		Ports:    []int{Port},
		// What a userspace router needs: a TUN device, the right to
		// configure routes and rules, and forwarding without reverse-path
		// checks (packets re-enter from the TUN with foreign sources).
		CapAdd:  []string{"NET_ADMIN"},
		Devices: []string{"/dev/net/tun"},
		Sysctls: map[string]string{
			"net.ipv4.ip_forward":             "1",
			"net.ipv4.conf.all.rp_filter":     "0",
			"net.ipv4.conf.default.rp_filter": "0",
		},
		Health: &runtime.HealthCheck{
			Cmd:      []string{"/node", "health"},
			Interval: 5 * time.Second,
			Timeout:  3 * time.Second,
			Retries:  3,
			HTTPPort: Port,
			HTTPPath: "/healthz",
		},
	}
}

// WANLinks renders topology links in the wan role's --links syntax, one item
// per direction: the one-way delay is half the round trip; jitter, loss and
// bandwidth apply to each direction as given.
func WANLinks(links []topology.Link) string {
	var items []string
	for _, l := range links {
		for _, dir := range [][2]string{{l.A, l.B}, {l.B, l.A}} {
			items = append(items, fmt.Sprintf("%s:%s:%s:%s:%s:%d", dir[0], dir[1],
				l.RTT/2, l.Jitter, strconv.FormatFloat(l.Loss, 'g', -1, 64), l.BandwidthBps))
		}
	}
	return strings.Join(items, ",")
}
