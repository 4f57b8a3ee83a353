// Package memory is an in-memory runtime.Runtime: the same state machine and
// errors as the Docker engine, with no processes, so the scenario engine can
// be tested in milliseconds. Every state change is recorded in an event log.
package memory

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/runtime"
)

// Event is one successful state change, in the order it happened.
type Event struct {
	At   time.Time
	Op   string // create-network, remove-network, create, start, crash, stop, kill, pause, unpause, restart, remove
	Name string // container or network name
}

func (e Event) String() string { return e.Op + " " + e.Name }

// Option configures a Runtime.
type Option func(*Runtime)

// WithHealthDelay makes a container with a health check report healthy only
// d after each start, as a real node needs time to come up.
func WithHealthDelay(d time.Duration) Option {
	return func(r *Runtime) { r.healthDelay = d }
}

// WithFailStart makes every start of the named containers fail the way a
// crashing binary does: Start returns an error and the container is exited.
func WithFailStart(names ...string) Option {
	return func(r *Runtime) {
		for _, n := range names {
			r.failStart[n] = true
		}
	}
}

// Runtime is safe for concurrent use.
type Runtime struct {
	healthDelay time.Duration
	failStart   map[string]bool

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	networks   map[string]*network
	containers map[string]*container
	events     []Event
	nextID     int
	nextPid    int
	nextPort   int
	closed     bool
}

type network struct {
	id     string
	name   string
	subnet netip.Prefix
	labels runtime.Labels
}

type container struct {
	id        string
	spec      runtime.ContainerSpec
	state     runtime.State
	pid       int
	healthyAt time.Time
	ips       map[string]string
	ports     map[int]string
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns an empty runtime.
func New(opts ...Option) *Runtime {
	r := &Runtime{
		failStart:  map[string]bool{},
		changed:    make(chan struct{}),
		networks:   map[string]*network{},
		containers: map[string]*container{},
		nextPid:    10000,
		nextPort:   40000,
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Events returns a copy of the event log.
func (r *Runtime) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// record logs a state change and wakes waiters; r.mu must be held.
func (r *Runtime) record(op, name string) {
	r.events = append(r.events, Event{At: time.Now(), Op: op, Name: name})
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Runtime) newID() string {
	r.nextID++
	return fmt.Sprintf("mem%08d", r.nextID)
}

// lock takes r.mu unless the runtime is closed or ctx is done.
func (r *Runtime) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("memory runtime is closed")
	}
	return nil
}

func (r *Runtime) CreateNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	subnet, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return fmt.Errorf("create network %s: subnet: %w", spec.Name, err)
	}
	subnet = subnet.Masked()
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if _, ok := r.networks[spec.Name]; ok {
		return fmt.Errorf("create network %s: network with name %s already exists", spec.Name, spec.Name)
	}
	for _, n := range r.networks {
		if n.subnet.Overlaps(subnet) {
			return fmt.Errorf("create network %s: pool %s overlaps with network %s (%s)", spec.Name, subnet, n.name, n.subnet)
		}
	}
	r.networks[spec.Name] = &network{id: r.newID(), name: spec.Name, subnet: subnet, labels: maps.Clone(spec.Labels)}
	r.record("create-network", spec.Name)
	return nil
}

// RemoveNetwork fails while a running or paused container is attached; like
// Docker, created and exited containers hold no endpoint.
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if _, ok := r.networks[name]; !ok {
		return fmt.Errorf("remove network %s: %w", name, runtime.ErrNotFound)
	}
	for _, c := range r.containers {
		if _, on := c.ips[name]; on {
			return fmt.Errorf("remove network %s: network has active endpoints (%s)", name, c.spec.Name)
		}
	}
	delete(r.networks, name)
	r.record("remove-network", name)
	return nil
}

func (r *Runtime) ListNetworks(ctx context.Context, selector runtime.Labels) ([]runtime.NetworkInfo, error) {
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	var out []runtime.NetworkInfo
	for _, n := range r.networks {
		if selector.Matches(n.labels) {
			out = append(out, runtime.NetworkInfo{ID: n.id, Name: n.name, Subnet: n.subnet.String(), Labels: maps.Clone(n.labels)})
		}
	}
	slices.SortFunc(out, func(a, b runtime.NetworkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if _, ok := r.containers[spec.Name]; ok {
		return fmt.Errorf("create %s: conflict: the container name is already in use", spec.Name)
	}
	for _, a := range spec.Networks {
		n, ok := r.networks[a.Network]
		if !ok {
			return fmt.Errorf("create %s: network %s: %w", spec.Name, a.Network, runtime.ErrNotFound)
		}
		if a.IP == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.IP)
		if err != nil || !n.subnet.Contains(ip) {
			return fmt.Errorf("create %s: address %q is not in network %s (%s)", spec.Name, a.IP, n.name, n.subnet)
		}
	}
	spec = cloneSpec(spec)
	r.containers[spec.Name] = &container{id: r.newID(), spec: spec, state: runtime.StateCreated}
	r.record("create", spec.Name)
	return nil
}

func cloneSpec(s runtime.ContainerSpec) runtime.ContainerSpec {
	s.Cmd = slices.Clone(s.Cmd)
	s.Env = maps.Clone(s.Env)
	s.Labels = maps.Clone(s.Labels)
	s.Networks = slices.Clone(s.Networks)
	s.Ports = slices.Clone(s.Ports)
	s.CapAdd = slices.Clone(s.CapAdd)
	s.Devices = slices.Clone(s.Devices)
	s.Sysctls = maps.Clone(s.Sysctls)
	if s.Health != nil {
		h := *s.Health
		h.Cmd = slices.Clone(h.Cmd)
		s.Health = &h
	}
	return s
}

// get returns the named container; r.mu must be held.
func (r *Runtime) get(op, name string) (*container, error) {
	c, ok := r.containers[name]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", op, name, runtime.ErrNotFound)
	}
	return c, nil
}

// Start is a no-op on a running container, as Docker answers 304.
func (r *Runtime) Start(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("start", name)
	if err != nil {
		return err
	}
	switch c.state {
	case runtime.StateRunning:
		return nil
	case runtime.StatePaused:
		return fmt.Errorf("start %s: cannot start a paused container, try unpause instead", name)
	}
	return r.start(c, "start")
}

// start runs a created or exited container; r.mu must be held.
func (r *Runtime) start(c *container, op string) error {
	name := c.spec.Name
	ips := map[string]string{}
	for _, a := range c.spec.Networks {
		n, ok := r.networks[a.Network]
		if !ok {
			return fmt.Errorf("%s %s: network %s: %w", op, name, a.Network, runtime.ErrNotFound)
		}
		ip, err := r.assignIP(n, a.IP)
		if err != nil {
			return fmt.Errorf("%s %s: %w", op, name, err)
		}
		ips[a.Network] = ip
	}
	if r.failStart[name] {
		c.state = runtime.StateExited
		r.record("crash", name)
		return fmt.Errorf("%s %s: container exited at once (WithFailStart)", op, name)
	}
	r.nextPid++
	c.pid = r.nextPid
	c.state = runtime.StateRunning
	c.ips = ips
	c.ports = map[int]string{}
	for _, p := range c.spec.Ports {
		r.nextPort++
		c.ports[p] = fmt.Sprintf("127.0.0.1:%d", r.nextPort)
	}
	c.healthyAt = time.Now()
	if c.spec.Health != nil {
		c.healthyAt = c.healthyAt.Add(r.healthDelay)
	}
	r.record(op, name)
	return nil
}

// assignIP returns want if it is free on n, or the lowest free host address
// after the gateway (.1); r.mu must be held.
func (r *Runtime) assignIP(n *network, want string) (string, error) {
	used := map[string]bool{}
	for _, c := range r.containers {
		if ip, ok := c.ips[n.name]; ok {
			used[ip] = true
		}
	}
	if want != "" {
		if used[want] {
			return "", fmt.Errorf("address %s already in use on network %s", want, n.name)
		}
		return want, nil
	}
	gateway := n.subnet.Addr().Next()
	for ip := gateway.Next(); n.subnet.Contains(ip); ip = ip.Next() {
		if !used[ip.String()] {
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("no free address on network %s", n.name)
}

// exit ends a running or paused container; r.mu must be held.
func exit(c *container) {
	c.state = runtime.StateExited
	c.pid = 0
	c.ips = nil
	c.ports = nil
}

// Stop is a no-op on a container that is not running, as Docker answers 304.
func (r *Runtime) Stop(ctx context.Context, name string, _ time.Duration) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("stop", name)
	if err != nil {
		return err
	}
	if c.state != runtime.StateRunning && c.state != runtime.StatePaused {
		return nil
	}
	exit(c)
	r.record("stop", name)
	return nil
}

func (r *Runtime) Kill(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("kill", name)
	if err != nil {
		return err
	}
	if c.state != runtime.StateRunning && c.state != runtime.StatePaused {
		return fmt.Errorf("kill %s: container is not running", name)
	}
	exit(c)
	r.record("kill", name)
	return nil
}

func (r *Runtime) Pause(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("pause", name)
	if err != nil {
		return err
	}
	switch c.state {
	case runtime.StatePaused:
		return fmt.Errorf("pause %s: container is already paused", name)
	case runtime.StateRunning:
	default:
		return fmt.Errorf("pause %s: container is not running", name)
	}
	c.state = runtime.StatePaused
	r.record("pause", name)
	return nil
}

func (r *Runtime) Unpause(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("unpause", name)
	if err != nil {
		return err
	}
	if c.state != runtime.StatePaused {
		return fmt.Errorf("unpause %s: container is not paused", name)
	}
	c.state = runtime.StateRunning
	r.record("unpause", name)
	return nil
}

func (r *Runtime) Restart(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	c, err := r.get("restart", name)
	if err != nil {
		return err
	}
	if c.state == runtime.StateRunning || c.state == runtime.StatePaused {
		exit(c)
	}
	return r.start(c, "restart")
}

// Remove force-removes the container, running or not, like `docker rm -f`.
func (r *Runtime) Remove(ctx context.Context, name string) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if _, err := r.get("remove", name); err != nil {
		return err
	}
	delete(r.containers, name)
	r.record("remove", name)
	return nil
}

func (r *Runtime) Inspect(ctx context.Context, name string) (runtime.ContainerInfo, error) {
	if err := r.lock(ctx); err != nil {
		return runtime.ContainerInfo{}, err
	}
	defer r.mu.Unlock()
	c, err := r.get("inspect", name)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	return c.info(time.Now()), nil
}

func (c *container) info(now time.Time) runtime.ContainerInfo {
	live := c.state == runtime.StateRunning || c.state == runtime.StatePaused
	return runtime.ContainerInfo{
		ID:      c.id,
		Name:    c.spec.Name,
		Labels:  maps.Clone(c.spec.Labels),
		State:   c.state,
		Healthy: live && !now.Before(c.healthyAt),
		Pid:     c.pid,
		IPs:     maps.Clone(c.ips),
		Ports:   maps.Clone(c.ports),
	}
}

func (r *Runtime) List(ctx context.Context, selector runtime.Labels) ([]runtime.ContainerInfo, error) {
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	now := time.Now()
	var out []runtime.ContainerInfo
	for _, c := range r.containers {
		if selector.Matches(c.spec.Labels) {
			out = append(out, c.info(now))
		}
	}
	slices.SortFunc(out, func(a, b runtime.ContainerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WaitHealthy wakes on every state change and at the moment the health
// delay runs out, so it never polls.
func (r *Runtime) WaitHealthy(ctx context.Context, name string) error {
	for {
		if err := r.lock(ctx); err != nil {
			return fmt.Errorf("wait healthy %s: %w", name, err)
		}
		c, err := r.get("wait healthy", name)
		if err != nil {
			r.mu.Unlock()
			return err
		}
		now := time.Now()
		info := c.info(now)
		healthyAt := c.healthyAt
		changed := r.changed
		r.mu.Unlock()

		if info.State == runtime.StateRunning && info.Healthy {
			return nil
		}
		if info.State == runtime.StateExited {
			return fmt.Errorf("wait healthy %s: container exited", name)
		}
		if err := waitChange(ctx, changed, info.State == runtime.StateRunning, healthyAt.Sub(now)); err != nil {
			return fmt.Errorf("wait healthy %s (state %s): %w", name, info.State, err)
		}
	}
}

// waitChange returns when changed is closed, after d if timed, or with
// ctx's error.
func waitChange(ctx context.Context, changed <-chan struct{}, timed bool, d time.Duration) error {
	var wake <-chan time.Time
	if timed {
		t := time.NewTimer(d)
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-wake:
	}
	return nil
}

// RemoveByLabel removes matching containers first, then matching networks.
// An empty selector is refused, as it would match everything.
func (r *Runtime) RemoveByLabel(ctx context.Context, selector runtime.Labels) error {
	if len(selector) == 0 {
		return fmt.Errorf("remove by label: empty selector")
	}
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(r.containers)) {
		if selector.Matches(r.containers[name].spec.Labels) {
			delete(r.containers, name)
			r.record("remove", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.networks)) {
		if !selector.Matches(r.networks[name].labels) {
			continue
		}
		for _, c := range r.containers {
			if _, on := c.ips[name]; on {
				return fmt.Errorf("remove network %s: network has active endpoints (%s)", name, c.spec.Name)
			}
		}
		delete(r.networks, name)
		r.record("remove-network", name)
	}
	return nil
}

// Close makes every later call fail and wakes WaitHealthy callers.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.changed)
	}
	return nil
}
