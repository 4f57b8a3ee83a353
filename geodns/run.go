package geodns

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// Run is the geodns node role: it parses args, serves DNS on --dns-listen
// (UDP and TCP) and /healthz, /metrics, /geodns/state on --listen, and runs
// the health checks, until ctx ends.
func Run(ctx context.Context, args []string) error {
	cfg, dnsAddr, httpAddr, sockets, err := parseFlags(args)
	if err != nil {
		return err
	}
	s, err := NewServer(cfg)
	if err != nil {
		return err
	}
	pcs, err := ListenUDP(ctx, dnsAddr, sockets)
	if err != nil {
		return err
	}
	// TCP on the port UDP got, which matters when --dns-listen says port 0.
	host, _, _ := net.SplitHostPort(dnsAddr)
	_, port, _ := net.SplitHostPort(pcs[0].LocalAddr().String())
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		closeAll(pcs)
		return fmt.Errorf("listen tcp %s: %w", dnsAddr, err)
	}
	hln, err := lc.Listen(ctx, "tcp", httpAddr)
	if err != nil {
		closeAll(pcs)
		ln.Close()
		return fmt.Errorf("listen http %s: %w", httpAddr, err)
	}

	// Any one part failing stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, run := range []func() error{
		func() error { return s.Serve(ctx, pcs, []net.Listener{ln}) },
		func() error { return serveHTTP(ctx, hln, s.Handler()) },
		func() error { return s.RunHealthChecks(ctx) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run()
			cancel()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parseFlags builds the config from an optional JSON file overlaid with
// whatever flags were given.
func parseFlags(args []string) (cfg Config, dnsAddr, httpAddr string, sockets int, err error) {
	fs := flag.NewFlagSet("geodns", flag.ContinueOnError)
	var usage strings.Builder
	fs.SetOutput(&usage)
	var (
		path      = fs.String("config", "", "JSON config file")
		regions   listFlag
		rtts      listFlag
		nservers  listFlag
		flagsOnly Config
	)
	fs.StringVar(&dnsAddr, "dns-listen", ":53", "DNS listen address (UDP and TCP)")
	fs.IntVar(&sockets, "udp-sockets", 1, "UDP sockets bound with SO_REUSEPORT, each with its own reader (one measured fastest on 2 shared cores)")
	fs.StringVar(&httpAddr, "listen", ":8080", "HTTP listen address for /healthz, /metrics, /geodns/state")
	fs.StringVar(&flagsOnly.Zone, "zone", "", "zone (default faultline.test.)")
	fs.StringVar(&flagsOnly.Name, "name", "", "geo-routed name (default app.<zone>)")
	fs.DurationVar(&flagsOnly.TTL, "ttl", 0, "record TTL (default 5s)")
	fs.StringVar(&flagsOnly.DefaultRegion, "default-region", "", "region for clients in no known subnet (default the first)")
	fs.Var(&regions, "region", "name=R,subnet=CIDR,lb=HOST[:PORT][,addrs=IP;IP] (repeatable; replaces the file's regions)")
	fs.Var(&rtts, "rtt", "A:B=MS round-trip time between two regions (repeatable)")
	fs.Var(&nservers, "nameserver", "NAME[=IP] apex NS record (repeatable; replaces the file's)")
	fs.DurationVar(&flagsOnly.Check.Interval, "check-interval", 0, "health check interval (default 1s)")
	fs.DurationVar(&flagsOnly.Check.Timeout, "check-timeout", 0, "health probe timeout (default 500ms)")
	fs.IntVar(&flagsOnly.Check.Fall, "fall", 0, "failures before a region is down (default 3)")
	fs.IntVar(&flagsOnly.Check.Rise, "rise", 0, "successes before it is up again (default 2)")
	if err = fs.Parse(args); err != nil {
		// The flag package wrote the problem and the usage to usage.
		return Config{}, "", "", 0, fmt.Errorf("geodns flags: %w\n%s", err, usage.String())
	}
	if fs.NArg() > 0 {
		return Config{}, "", "", 0, fmt.Errorf("geodns flags: unexpected argument %q", fs.Arg(0))
	}
	if *path != "" {
		if cfg, err = LoadConfig(*path); err != nil {
			return Config{}, "", "", 0, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	overlay := []struct {
		flag string
		do   func()
	}{
		{"zone", func() { cfg.Zone = flagsOnly.Zone }},
		{"name", func() { cfg.Name = flagsOnly.Name }},
		{"ttl", func() { cfg.TTL = flagsOnly.TTL }},
		{"default-region", func() { cfg.DefaultRegion = flagsOnly.DefaultRegion }},
		{"check-interval", func() { cfg.Check.Interval = flagsOnly.Check.Interval }},
		{"check-timeout", func() { cfg.Check.Timeout = flagsOnly.Check.Timeout }},
		{"fall", func() { cfg.Check.Fall = flagsOnly.Check.Fall }},
		{"rise", func() { cfg.Check.Rise = flagsOnly.Check.Rise }},
	}
	for _, o := range overlay {
		if set[o.flag] {
			o.do()
		}
	}
	if len(regions) > 0 {
		cfg.Regions = nil
		for _, v := range regions {
			r, err := parseRegionFlag(v)
			if err != nil {
				return Config{}, "", "", 0, err
			}
			cfg.Regions = append(cfg.Regions, r)
		}
	}
	for _, v := range rtts {
		a, b, ms, err := parseRTTFlag(v)
		if err != nil {
			return Config{}, "", "", 0, err
		}
		if cfg.RTT == nil {
			cfg.RTT = map[string]map[string]float64{}
		}
		if cfg.RTT[a] == nil {
			cfg.RTT[a] = map[string]float64{}
		}
		cfg.RTT[a][b] = ms
	}
	if len(nservers) > 0 {
		cfg.Nameservers = nil
		for _, v := range nservers {
			name, ip, hasIP := strings.Cut(v, "=")
			n := Nameserver{Name: name}
			if hasIP {
				if n.Addr, err = netip.ParseAddr(ip); err != nil {
					return Config{}, "", "", 0, fmt.Errorf("--nameserver %q: %w", v, err)
				}
			}
			cfg.Nameservers = append(cfg.Nameservers, n)
		}
	}
	return cfg, dnsAddr, httpAddr, sockets, nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseRegionFlag(v string) (Region, error) {
	var r Region
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return Region{}, fmt.Errorf("--region %q: %q is not key=value", v, kv)
		}
		switch k {
		case "name":
			r.Name = val
		case "subnet":
			p, err := netip.ParsePrefix(val)
			if err != nil {
				return Region{}, fmt.Errorf("--region %q: %w", v, err)
			}
			r.Subnet = p
		case "lb":
			r.LB = val
		case "addrs":
			for _, s := range strings.Split(val, ";") {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return Region{}, fmt.Errorf("--region %q: %w", v, err)
				}
				r.Addrs = append(r.Addrs, a)
			}
		default:
			return Region{}, fmt.Errorf("--region %q: unknown key %q", v, k)
		}
	}
	return r, nil
}

func parseRTTFlag(v string) (a, b string, ms float64, err error) {
	pair, val, ok := strings.Cut(v, "=")
	a, b, ok2 := strings.Cut(pair, ":")
	if !ok || !ok2 || a == "" || b == "" {
		return "", "", 0, fmt.Errorf("--rtt %q: want A:B=MS", v)
	}
	if ms, err = strconv.ParseFloat(val, 64); err != nil {
		return "", "", 0, fmt.Errorf("--rtt %q: %w", v, err)
	}
	return a, b, ms, nil
}
