package wan

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Run is the wan role (`node wan ...`). It turns the current network
// namespace into the inter-region router and serves the control API until
// ctx ends. A container running it needs cap_add NET_ADMIN, the device
// /dev/net/tun and the sysctls net.ipv4.ip_forward=1,
// net.ipv4.conf.all.rp_filter=0 and net.ipv4.conf.default.rp_filter=0.
// Flags (the first three also read from an environment variable, so a
// compose file can configure it without a command line):
//
//	--regions  FAULTLINE_WAN_REGIONS  name=cidr,...         (required)
//	--links    FAULTLINE_WAN_LINKS    from:to:delay[:jitter[:loss[:bw]]],...
//	--listen   FAULTLINE_WAN_LISTEN   control API address   (:8080)
//	--seed     seed of loss and jitter decisions            (1)
//	--offload  pass GSO segments whole while exact per-packet loss and
//	           pacing are not needed: ~8x the throughput (true)
//	--queue    tail-drop bound of a capped link             (100ms)
//	--tun, --table, --spin                                  (wan0, 100, 1ms)
//
// The router must have an address inside every region's prefix; the
// interface holding it is found by that address, never by name.
func Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wan", flag.ContinueOnError)
	regionsFlag := fs.String("regions", os.Getenv("FAULTLINE_WAN_REGIONS"), "regions as name=cidr,...")
	linksFlag := fs.String("links", os.Getenv("FAULTLINE_WAN_LINKS"), "directed links as from:to:delay[:jitter[:loss[:bandwidth]]],...")
	listen := fs.String("listen", envOr("FAULTLINE_WAN_LISTEN", ":8080"), "control API listen address")
	tunName := fs.String("tun", "wan0", "name of the TUN device")
	table := fs.Int("table", 100, "routing table that steers forwarded packets into the TUN")
	seed := fs.Uint64("seed", 1, "seed of loss and jitter decisions")
	offload := fs.Bool("offload", true, "pass TCP segments of up to 64 KB through the TUN whole while no link has loss or a bandwidth cap")
	queue := fs.Duration("queue", 100*time.Millisecond, "longest wait for a bandwidth-capped link before a packet is tail-dropped")
	spin := fs.Duration("spin", time.Millisecond, "how long before a release the scheduler stops sleeping")
	if err := fs.Parse(args); err != nil {
		return err
	}
	regions, err := ParseRegions(*regionsFlag)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	links, err := ParseLinks(*linksFlag)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}

	rt, err := setupRouter(regions, *tunName, *table, *offload)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	defer rt.close()

	opts := []Option{WithSeed(*seed), WithSpin(*spin), WithMaxQueue(*queue)}
	if *offload {
		opts = append(opts, WithHeaderLen(vnetHdrLen), WithLinksHook(func(specs []LinkSpec) error {
			return setOffload(rt.tun, !needsPackets(specs))
		}))
	}
	eng, err := NewEngine(rt.tun, regions, opts...)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	if err := eng.SetLinks(links); err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("wan: listen %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: NewHandler(eng), ReadHeaderTimeout: 5 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			cancel()
		}
		serveErr <- err
	}()
	runErr := eng.Run(ctx)
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer shutCancel()
	shutErr := srv.Shutdown(shutCtx)
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("wan: serve %s: %w", *listen, err)
	}
	return errors.Join(runErr, shutErr)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// router is the kernel side of the emulator in one network namespace.
type router struct {
	tun   *os.File
	rules []*netlink.Rule
}

// setupRouter creates the TUN, enables forwarding and steers every packet
// that arrives on a region interface into the TUN through policy routing.
// Packets the engine writes back arrive "from" the TUN, miss the rules and
// are forwarded by the main table out of the destination's interface.
func setupRouter(regions []Region, tunName string, table int, offload bool) (_ *router, err error) {
	ifaces, err := regionInterfaces(regions)
	if err != nil {
		return nil, err
	}
	// rp_filter must be off on the TUN: packets re-enter there with sources
	// that route elsewhere. The effective value is max(all, iface), and the
	// TUN takes "default" when created. In a container /proc/sys is
	// read-only, so these come from the container's sysctls instead.
	if err := writeSysctls(map[string]string{"ipv4/ip_forward": "1", "ipv4/conf/all/rp_filter": "0"}); err != nil {
		return nil, err
	}
	_ = writeSysctls(map[string]string{"ipv4/conf/default/rp_filter": "0"}) // checked on the TUN below
	mtu := 1500
	for _, l := range ifaces {
		mtu = max(mtu, l.Attrs().MTU)
	}

	tun, err := openTUN(tunName, offload)
	if err != nil {
		return nil, err
	}
	rt := &router{tun: tun}
	defer func() {
		if err != nil {
			rt.close()
		}
	}()
	// The TUN only carries forwarded IPv4; IPv6 on it would only produce
	// neighbour discovery noise. It may be absent when IPv6 is off.
	_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", tunName, "disable_ipv6"), []byte("1"), 0)
	if err := writeSysctls(map[string]string{"ipv4/conf/" + tunName + "/rp_filter": "0"}); err != nil {
		return nil, fmt.Errorf("%w (or net.ipv4.conf.default.rp_filter=0)", err)
	}
	link, err := netlink.LinkByName(tunName)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", tunName, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return nil, fmt.Errorf("set mtu of %s: %w", tunName, err)
	}
	if err := netlink.LinkSetTxQLen(link, 1000); err != nil {
		return nil, fmt.Errorf("set txqueuelen of %s: %w", tunName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", tunName, err)
	}
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Table:     table,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Scope:     netlink.SCOPE_LINK,
	}
	if err := netlink.RouteReplace(route); err != nil {
		return nil, fmt.Errorf("route default dev %s table %d: %w", tunName, table, err)
	}
	for i, l := range ifaces {
		rule := netlink.NewRule()
		rule.Family = unix.AF_INET
		rule.IifName = l.Attrs().Name
		rule.Table = table
		rule.Priority = 1000 + i
		_ = netlink.RuleDel(rule) // a leftover from a crashed run would shadow nothing but pile up
		if err := netlink.RuleAdd(rule); err != nil {
			return nil, fmt.Errorf("rule iif %s lookup %d: %w", rule.IifName, table, err)
		}
		rt.rules = append(rt.rules, rule)
	}
	return rt, nil
}

// close removes the rules, then the TUN (its route goes with it), so the
// namespace falls back to plain kernel forwarding.
func (r *router) close() error {
	var errs []error
	for _, rule := range r.rules {
		if err := netlink.RuleDel(rule); err != nil {
			errs = append(errs, fmt.Errorf("delete rule iif %s: %w", rule.IifName, err))
		}
	}
	r.rules = nil
	errs = append(errs, r.tun.Close())
	return errors.Join(errs...)
}

// regionInterfaces returns every interface holding an address inside a
// region's prefix; each region must have at least one.
func regionInterfaces(regions []Region) ([]netlink.Link, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netlink.Link
	seen := map[int]bool{}
	for _, r := range regions {
		found := false
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if !ok || !r.Prefix.Contains(ip) {
				continue
			}
			found = true
			if seen[a.LinkIndex] {
				continue
			}
			seen[a.LinkIndex] = true
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("region %s: link %d: %w", r.Name, a.LinkIndex, err)
			}
			out = append(out, l)
		}
		if !found {
			return nil, fmt.Errorf("region %s: no local address in %s", r.Name, r.Prefix)
		}
	}
	return out, nil
}

// writeSysctls sets /proc/sys/net values. A container usually mounts
// /proc/sys read-only; then the value must already be right (set through
// the container's sysctls), which is checked instead.
func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		path := filepath.Join("/proc/sys/net", k)
		werr := os.WriteFile(path, []byte(v), 0)
		if werr == nil {
			continue
		}
		cur, err := os.ReadFile(path)
		if err != nil || strings.TrimSpace(string(cur)) != v {
			return fmt.Errorf("sysctl net.%s=%s: %w (set it through the container's sysctls)",
				strings.ReplaceAll(k, "/", "."), v, werr)
		}
	}
	return nil
}
