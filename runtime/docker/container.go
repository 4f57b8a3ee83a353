package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/faultline/faultline/runtime"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// Health check defaults where the spec leaves a field zero. Docker's own
// default interval (30 s) would make every start take half a minute.
const (
	defaultHealthInterval = time.Second
	defaultHealthTimeout  = 3 * time.Second
)

// Create makes the container on its first network and connects the others
// before it starts: API 1.41 accepts one endpoint at create.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	cfg, host, netcfg, err := containerConfig(spec)
	if err != nil {
		return fmt.Errorf("create %s: %w", spec.Name, err)
	}
	// Engine 20.10 accepts missing networks at create and connect, and
	// fails only at start.
	for _, a := range spec.Networks {
		if _, err := r.cli.NetworkInspect(ctx, a.Network, client.NetworkInspectOptions{}); err != nil {
			return wrap("create "+spec.Name+": network", a.Network, err)
		}
	}
	var more []runtime.Attachment
	if len(spec.Networks) > 0 {
		more = spec.Networks[1:]
	}
	eps := make([]*network.EndpointSettings, len(more))
	for i, a := range more {
		if eps[i], err = endpoint(a); err != nil {
			return fmt.Errorf("create %s: %w", spec.Name, err)
		}
	}
	if _, err := r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: spec.Name, Config: cfg, HostConfig: host, NetworkingConfig: netcfg,
	}); err != nil {
		return wrap("create", spec.Name, err)
	}
	for i, a := range more {
		if _, err := r.cli.NetworkConnect(ctx, a.Network, client.NetworkConnectOptions{Container: spec.Name, EndpointConfig: eps[i]}); err != nil {
			return errors.Join(wrap("create "+spec.Name+": connect", a.Network, err), r.Remove(ctx, spec.Name))
		}
	}
	return nil
}

func containerConfig(spec runtime.ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image:        spec.Image,
		Cmd:          spec.Cmd,
		Labels:       maps.Clone(spec.Labels),
		ExposedPorts: network.PortSet{},
	}
	if h := spec.Health; h != nil && h.HTTPPort > 0 {
		// Kept on the container so any process (not just the creator) can
		// probe readiness the same way.
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[labelHealthHTTP] = fmt.Sprintf("%d%s", h.HTTPPort, h.HTTPPath)
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cfg.Env = append(cfg.Env, k+"="+spec.Env[k])
	}
	if h := spec.Health; h != nil {
		test := h.Cmd
		if len(test) > 0 && !slices.Contains([]string{"CMD", "CMD-SHELL", "NONE"}, test[0]) {
			test = append([]string{"CMD"}, test...) // exec form: scratch images have no shell
		}
		cfg.Healthcheck = &container.HealthConfig{
			Test:     test,
			Interval: cmp.Or(h.Interval, defaultHealthInterval),
			Timeout:  cmp.Or(h.Timeout, defaultHealthTimeout),
			Retries:  h.Retries,
		}
	}
	host := &container.HostConfig{
		PortBindings: network.PortMap{},
		CapAdd:       spec.CapAdd,
		Sysctls:      spec.Sysctls,
	}
	for _, p := range spec.Ports {
		port, ok := network.PortFrom(uint16(p), network.TCP)
		if !ok || p <= 0 || p > math.MaxUint16 {
			return nil, nil, nil, fmt.Errorf("bad port %d", p)
		}
		cfg.ExposedPorts[port] = struct{}{}
		host.PortBindings[port] = []network.PortBinding{{HostIP: loopback}}
	}
	for _, d := range spec.Devices {
		host.Devices = append(host.Devices, container.DeviceMapping{PathOnHost: d, PathInContainer: d, CgroupPermissions: "rwm"})
	}
	var netcfg *network.NetworkingConfig
	if len(spec.Networks) > 0 {
		first := spec.Networks[0]
		ep, err := endpoint(first)
		if err != nil {
			return nil, nil, nil, err
		}
		host.NetworkMode = container.NetworkMode(first.Network)
		netcfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first.Network: ep}}
	}
	return cfg, host, netcfg, nil
}

func endpoint(a runtime.Attachment) (*network.EndpointSettings, error) {
	ep := &network.EndpointSettings{}
	if a.IP != "" {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			return nil, fmt.Errorf("address on %s: %w", a.Network, err)
		}
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	}
	return ep, nil
}

// Start retries a start whose published port Docker picked but could not
// bind: its allocator does not know the host's own sockets, so a port in
// use by another program (a benchmark's thousands of client connections)
// fails the start, and the next attempt gets another port.
func (r *Runtime) Start(ctx context.Context, name string) error {
	var err error
	for range startAttempts {
		if _, err = r.cli.ContainerStart(ctx, name, client.ContainerStartOptions{}); err == nil || !portTaken(err) {
			break
		}
	}
	return wrap("start", name, err)
}

const startAttempts = 3

func portTaken(err error) bool {
	return strings.Contains(err.Error(), "address already in use")
}

// Stop rounds grace up to whole seconds, the engine's unit.
func (r *Runtime) Stop(ctx context.Context, name string, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	_, err := r.cli.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &secs})
	return wrap("stop", name, err)
}

// Kill returns once the container has exited, so a following Inspect sees it.
func (r *Runtime) Kill(ctx context.Context, name string) error {
	if _, err := r.cli.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return wrap("kill", name, err)
	}
	wait := r.cli.ContainerWait(ctx, name, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return wrap("kill: wait for exit", name, err)
	}
}

func (r *Runtime) Pause(ctx context.Context, name string) error {
	_, err := r.cli.ContainerPause(ctx, name, client.ContainerPauseOptions{})
	return wrap("pause", name, err)
}

func (r *Runtime) Unpause(ctx context.Context, name string) error {
	_, err := r.cli.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
	return wrap("unpause", name, err)
}

func (r *Runtime) Restart(ctx context.Context, name string) error {
	secs := int(math.Ceil(r.cfg.restartGrace.Seconds()))
	_, err := r.cli.ContainerRestart(ctx, name, client.ContainerRestartOptions{Timeout: &secs})
	return wrap("restart", name, err)
}

// Remove removes the container whatever its state. It stops it first rather
// than `rm -f`: engine 20.10 can leave stale network endpoints behind when
// running containers are force-removed in parallel.
func (r *Runtime) Remove(ctx context.Context, name string) error {
	zero := 0
	if _, err := r.cli.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &zero}); err != nil && !cerrdefs.IsConflict(err) {
		return wrap("remove: stop", name, err)
	}
	_, err := r.cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && strings.Contains(err.Error(), "already in progress") {
		// Another controller (a second run sweeping the same orphans) is
		// removing it: it is removed once it is gone.
		return r.waitGone(ctx, name)
	}
	return wrap("remove", name, err)
}

// waitGone waits, bounded, until the engine no longer knows the container.
func (r *Runtime) waitGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return wrap("remove: wait for the removal in progress", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Runtime) Inspect(ctx context.Context, name string) (runtime.ContainerInfo, error) {
	res, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.ContainerInfo{}, wrap("inspect", name, err)
	}
	return info(res.Container), nil
}

func info(c container.InspectResponse) runtime.ContainerInfo {
	out := runtime.ContainerInfo{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		out.Labels = c.Config.Labels
	}
	if c.State == nil {
		return out
	}
	out.State = state(c.State)
	live := out.State == runtime.StateRunning || out.State == runtime.StatePaused
	if !live {
		return out
	}
	out.Pid = c.State.Pid
	out.Healthy = c.State.Health == nil || c.State.Health.Status == container.Healthy
	if ns := c.NetworkSettings; ns != nil {
		out.IPs = map[string]string{}
		for name, ep := range ns.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				out.IPs[name] = ep.IPAddress.String()
			}
		}
		out.Ports = map[int]string{}
		for port, bindings := range ns.Ports {
			for _, b := range bindings {
				if b.HostIP == loopback && b.HostPort != "" {
					out.Ports[int(port.Num())] = b.HostIP.String() + ":" + b.HostPort
				}
			}
		}
	}
	return out
}

// state maps the engine's seven states onto the runtime's four.
func state(s *container.State) runtime.State {
	switch s.Status {
	case container.StateCreated:
		return runtime.StateCreated
	case container.StatePaused:
		return runtime.StatePaused
	case container.StateRunning, container.StateRestarting:
		return runtime.StateRunning
	default: // exited, dead, removing
		return runtime.StateExited
	}
}

// List inspects each matching container, so Healthy and Pid are as exact as
// Inspect's; a container removed meanwhile is left out.
func (r *Runtime) List(ctx context.Context, selector runtime.Labels) ([]runtime.ContainerInfo, error) {
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(selector)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]runtime.ContainerInfo, 0, len(res.Items))
	for _, s := range res.Items {
		ins, err := r.cli.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			return nil, wrap("list: inspect", s.ID, err)
		}
		out = append(out, info(ins.Container))
	}
	slices.SortFunc(out, func(a, b runtime.ContainerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WaitHealthy polls Inspect. It gives up at once on an exited container
// and, when ctx ends, reports the last state and health check output seen.
func (r *Runtime) WaitHealthy(ctx context.Context, name string) error {
	t := time.NewTicker(r.cfg.pollInterval)
	defer t.Stop()
	last := "not inspected yet"
	for {
		res, err := r.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if ctx.Err() != nil {
			return fmt.Errorf("wait healthy %s (%s): %w", name, last, ctx.Err())
		}
		if err != nil {
			return wrap("wait healthy", name, err)
		}
		c := res.Container
		i := info(c)
		switch {
		case i.State == runtime.StateRunning && i.Healthy:
			return nil
		case i.State == runtime.StateRunning && r.probeHTTP(ctx, i):
			return nil
		case i.State == runtime.StateExited:
			return fmt.Errorf("wait healthy %s: container exited with code %d%s", name, c.State.ExitCode, detail(c.State))
		}
		last = "state " + string(i.State) + detail(c.State)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait healthy %s (%s): %w", name, last, ctx.Err())
		case <-t.C:
		}
	}
}

// detail is the engine's error and the last health check's output, if any.
func detail(s *container.State) string {
	var b strings.Builder
	if s.Error != "" {
		fmt.Fprintf(&b, ": %s", s.Error)
	}
	if h := s.Health; h != nil {
		fmt.Fprintf(&b, ", health %s", h.Status)
		if n := len(h.Log); n > 0 {
			last := h.Log[n-1]
			fmt.Fprintf(&b, " (last check exit %d: %q)", last.ExitCode, strings.TrimSpace(last.Output))
		}
	}
	return b.String()
}

// removeParallel bounds concurrent engine calls; beyond a few the engine
// only queues them, on 2 cores.
const removeParallel = 6

// RemoveByLabel stops every matching container, removes them, and then
// removes the matching networks. An empty selector is refused: it would
// match everything on the engine.
func (r *Runtime) RemoveByLabel(ctx context.Context, selector runtime.Labels) error {
	if len(selector) == 0 {
		return fmt.Errorf("remove by label: empty selector")
	}
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(selector)})
	if err != nil {
		return fmt.Errorf("remove by label: list containers: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, removeParallel)
	)
	for _, c := range res.Items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := r.Remove(ctx, c.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("remove by label: %w", errors.Join(errs...))
	}
	nets, err := r.ListNetworks(ctx, selector)
	if err != nil {
		return fmt.Errorf("remove by label: %w", err)
	}
	for _, n := range nets {
		if err := r.removeNetworkStale(ctx, n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove by label: %w", errors.Join(errs...))
	}
	return nil
}

// labelHealthHTTP records a container's HTTP readiness endpoint as "port/path".
const labelHealthHTTP = "faultline.health-http"

// probeHTTP asks the container's HTTP readiness endpoint directly, on its
// network address. Docker runs the exec-form check only every interval, and
// each run is a docker exec that can take seconds on a busy machine; one GET
// from the host costs a millisecond.
func (r *Runtime) probeHTTP(ctx context.Context, i runtime.ContainerInfo) bool {
	spec, ok := i.Labels[labelHealthHTTP]
	if !ok {
		return false
	}
	port, path, _ := strings.Cut(spec, "/")
	for _, ip := range i.IPs {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, port)+"/"+path, nil)
		if err != nil {
			cancel()
			return false
		}
		resp, err := r.probe.Do(req)
		cancel()
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	return false
}
