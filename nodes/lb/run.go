package lb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/nodekit"
)

// Run runs the lb role until ctx ends.
func Run(ctx context.Context, args []string) error {
	var f nodekit.Flags
	fs := nodekit.NewFlagSet("lb", &f)
	var cfg Config
	var backends string
	fs.StringVar(&backends, "backends", "", "comma-separated host:port of the backends (more can be added through PUT/POST /lb/backends)")
	fs.StringVar(&cfg.Policy, "policy", RoundRobin, "balancing policy: "+RoundRobin+" or "+LeastConn)
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 500*time.Millisecond, "time between health checks of a backend")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 0, "one health check's timeout (0: 4/5 of the interval)")
	fs.IntVar(&cfg.Fall, "fall", 2, "consecutive failed checks that take a backend out")
	fs.IntVar(&cfg.Rise, "rise", 1, "consecutive passed checks that bring a backend back")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 500*time.Millisecond, "backend connect timeout")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "proxied request timeout")
	fs.IntVar(&cfg.EjectAfter, "eject-after", 3, "consecutive proxy errors that eject a backend (0: no passive ejection)")
	fs.DurationVar(&cfg.EjectFor, "eject-for", 5*time.Second, "ejection cool-down before a passing check may return a backend")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 10*time.Second, "how long a removed backend's in-flight requests may finish")
	fs.BoolVar(&cfg.RetryRefused, "retry-refused", false, "retry a GET/HEAD once on another backend when the connection is refused")
	fs.StringVar(&cfg.AffinityCookie, "affinity-cookie", "", "pin each client to a backend with a cookie of this name (empty: no session affinity)")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	cfg.Backends = splitList(backends)
	reg := nodekit.NewRegistry()
	l, err := New(cfg, reg)
	if err != nil {
		return fmt.Errorf("%w: lb: %v", nodes.ErrUsage, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checks := make(chan struct{})
	go func() { defer close(checks); l.Check(ctx) }()
	err = nodekit.Serve(ctx, nodekit.NewServer(f.Listen, l, reg, nodekit.WithReadiness(l.Ready)))
	cancel() // Serve can also end by failing to listen
	<-checks
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
