// Package runtimetest is the contract every runtime.Runtime must meet. The
// in-memory and the Docker runtime both run it, so engine tests written
// against memory mean something against Docker.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
)

// Env is what the suite needs to know about the implementation under test.
type Env struct {
	// Image runs Cmd, a long-running server on Port that answers GET
	// /healthz with 200 and GET /env/NAME with the value of $NAME.
	Image string
	Cmd   []string
	Port  int
	// Health is the health check command (argv) that passes while Cmd serves.
	Health         []string
	HealthInterval time.Duration
	// ExitCmd exits at once; empty skips the test that WaitHealthy gives up
	// on an exited container without waiting for its context.
	ExitCmd []string
	// HTTP says published ports are real and reachable on 127.0.0.1.
	HTTP bool
	// SubnetPrefix is two octets, e.g. "10.202"; the suite uses the /24s
	// <prefix>.1.0 to <prefix>.19.0.
	SubnetPrefix string
}

// Run runs the contract suite. newRuntime returns a fresh runtime for one
// subtest and registers its Close with t.Cleanup.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, env Env) {
	s := suite{newRuntime: newRuntime, env: env}
	t.Run("Networks", s.networks)
	t.Run("Lifecycle", s.lifecycle)
	t.Run("StateErrors", s.stateErrors)
	t.Run("NotFound", s.notFound)
	t.Run("List", s.list)
	t.Run("RemoveByLabel", s.removeByLabel)
	t.Run("RunsIsolated", s.runsIsolated)
	t.Run("WaitHealthyExited", s.waitHealthyExited)
}

type suite struct {
	newRuntime func(t *testing.T) runtime.Runtime
	env        Env
}

// fixture is one subtest's runtime and run id, cleaned up even on failure.
type fixture struct {
	t   *testing.T
	ctx context.Context
	rt  runtime.Runtime
	env Env
	run string
}

func (s suite) setup(t *testing.T) *fixture { return s.setupOn(t, s.newRuntime(t)) }

// setupOn starts a new run on an existing runtime.
func (s suite) setupOn(t *testing.T, rt runtime.Runtime) *fixture {
	f := &fixture{t: t, rt: rt, env: s.env, run: NewRunID()}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	f.ctx = ctx
	// Cleanup runs LIFO, so this runs before newRuntime's Close.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, rt.RemoveByLabel(ctx, f.labels()), "cleanup of run %s", f.run)
	})
	return f
}

// NewRunID returns a run id unique across processes sharing one engine.
func NewRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "rtt" + hex.EncodeToString(b)
}

func (f *fixture) labels(kv ...string) runtime.Labels {
	l := runtime.Labels{runtime.LabelRun: f.run}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

func (f *fixture) subnet(i int) string { return fmt.Sprintf("%s.%d.0/24", f.env.SubnetPrefix, i) }
func (f *fixture) ip(i, host int) string {
	return fmt.Sprintf("%s.%d.%d", f.env.SubnetPrefix, i, host)
}

// network creates <run>-<suffix> on subnet i.
func (f *fixture) network(suffix string, i int) string {
	name := f.run + "-" + suffix
	require.NoError(f.t, f.rt.CreateNetwork(f.ctx, runtime.NetworkSpec{Name: name, Subnet: f.subnet(i), Labels: f.labels()}))
	return name
}

func (f *fixture) spec(name string, nets ...runtime.Attachment) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:     f.run + "-" + name,
		Image:    f.env.Image,
		Cmd:      f.env.Cmd,
		Labels:   f.labels(runtime.LabelNode, name),
		Networks: nets,
		Health: &runtime.HealthCheck{
			Cmd: f.env.Health, Interval: f.env.HealthInterval, Timeout: 5 * time.Second, Retries: 3,
		},
	}
}

// running creates and starts a container and waits until it is healthy.
func (f *fixture) running(spec runtime.ContainerSpec) string {
	require.NoError(f.t, f.rt.Create(f.ctx, spec))
	require.NoError(f.t, f.rt.Start(f.ctx, spec.Name))
	require.NoError(f.t, f.rt.WaitHealthy(f.ctx, spec.Name))
	return spec.Name
}

func (f *fixture) state(name string) runtime.State {
	info, err := f.rt.Inspect(f.ctx, name)
	require.NoError(f.t, err)
	return info.State
}

func (s suite) networks(t *testing.T) {
	f := s.setup(t)
	a := f.network("a", 1)
	b := f.network("b", 2)

	nets, err := f.rt.ListNetworks(f.ctx, f.labels())
	require.NoError(t, err)
	require.Len(t, nets, 2)
	byName := map[string]runtime.NetworkInfo{}
	for _, n := range nets {
		byName[n.Name] = n
		assert.NotEmpty(t, n.ID)
		assert.Equal(t, f.run, n.Labels[runtime.LabelRun])
	}
	assert.Equal(t, f.subnet(1), byName[a].Subnet)
	assert.Equal(t, f.subnet(2), byName[b].Subnet)

	none, err := f.rt.ListNetworks(f.ctx, f.labels(runtime.LabelRegion, "nowhere"))
	require.NoError(t, err)
	assert.Empty(t, none)

	assert.Error(t, f.rt.CreateNetwork(f.ctx, runtime.NetworkSpec{Name: a, Subnet: f.subnet(3), Labels: f.labels()}), "duplicate name")

	require.NoError(t, f.rt.RemoveNetwork(f.ctx, b))
	nets, err = f.rt.ListNetworks(f.ctx, f.labels())
	require.NoError(t, err)
	require.Len(t, nets, 1)
	assert.Equal(t, a, nets[0].Name)

	c := f.running(f.spec("c", runtime.Attachment{Network: a}))
	assert.Error(t, f.rt.RemoveNetwork(f.ctx, a), "network with a running container")
	require.NoError(t, f.rt.Remove(f.ctx, c))
	require.NoError(t, f.rt.RemoveNetwork(f.ctx, a))
	nets, err = f.rt.ListNetworks(f.ctx, f.labels())
	require.NoError(t, err)
	assert.Empty(t, nets)
}

var hostPort = regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`)

func (s suite) lifecycle(t *testing.T) {
	f := s.setup(t)
	a := f.network("a", 4)
	b := f.network("b", 5)
	spec := f.spec("web",
		runtime.Attachment{Network: a, IP: f.ip(4, 10)},
		runtime.Attachment{Network: b, IP: f.ip(5, 20)},
	)
	spec.Labels[runtime.LabelRole] = "web"
	spec.Env = map[string]string{"FAULTLINE_SUITE": f.run}
	spec.Ports = []int{f.env.Port}
	require.NoError(t, f.rt.Create(f.ctx, spec))
	name := spec.Name

	info, err := f.rt.Inspect(f.ctx, name)
	require.NoError(t, err)
	assert.Equal(t, runtime.StateCreated, info.State)
	assert.False(t, info.Healthy)
	assert.Equal(t, name, info.Name)
	assert.NotEmpty(t, info.ID)

	require.NoError(t, f.rt.Start(f.ctx, name))
	require.NoError(t, f.rt.WaitHealthy(f.ctx, name))
	f.assertServing(name, map[string]string{a: f.ip(4, 10), b: f.ip(5, 20)})

	require.NoError(t, f.rt.Stop(f.ctx, name, 5*time.Second))
	info, err = f.rt.Inspect(f.ctx, name)
	require.NoError(t, err)
	assert.Equal(t, runtime.StateExited, info.State)
	assert.False(t, info.Healthy)
	assert.Zero(t, info.Pid)

	require.NoError(t, f.rt.Start(f.ctx, name), "start again after stop")
	require.NoError(t, f.rt.WaitHealthy(f.ctx, name))
	f.assertServing(name, map[string]string{a: f.ip(4, 10), b: f.ip(5, 20)})

	require.NoError(t, f.rt.Kill(f.ctx, name))
	assert.Equal(t, runtime.StateExited, f.state(name))

	require.NoError(t, f.rt.Restart(f.ctx, name), "restart an exited container")
	require.NoError(t, f.rt.WaitHealthy(f.ctx, name))
	assert.Equal(t, runtime.StateRunning, f.state(name))
	require.NoError(t, f.rt.Restart(f.ctx, name), "restart a running container")
	require.NoError(t, f.rt.WaitHealthy(f.ctx, name))

	require.NoError(t, f.rt.Pause(f.ctx, name))
	info, err = f.rt.Inspect(f.ctx, name)
	require.NoError(t, err)
	assert.Equal(t, runtime.StatePaused, info.State)
	assert.Positive(t, info.Pid, "a paused container keeps its process")
	require.NoError(t, f.rt.Unpause(f.ctx, name))
	require.NoError(t, f.rt.WaitHealthy(f.ctx, name))
	f.assertServing(name, map[string]string{a: f.ip(4, 10), b: f.ip(5, 20)})

	require.NoError(t, f.rt.Remove(f.ctx, name), "remove a running container")
	_, err = f.rt.Inspect(f.ctx, name)
	require.ErrorIs(t, err, runtime.ErrNotFound)
}

// assertServing checks a running, healthy container's reported state and,
// where ports are real, that it answers on its published port.
func (f *fixture) assertServing(name string, ips map[string]string) {
	t := f.t
	info, err := f.rt.Inspect(f.ctx, name)
	require.NoError(t, err)
	assert.Equal(t, runtime.StateRunning, info.State)
	assert.True(t, info.Healthy)
	assert.Positive(t, info.Pid)
	assert.Equal(t, ips, info.IPs)
	assert.Equal(t, f.run, info.Labels[runtime.LabelRun])
	assert.Equal(t, "web", info.Labels[runtime.LabelRole])
	addr := info.Ports[f.env.Port]
	require.Regexp(t, hostPort, addr)
	if !f.env.HTTP {
		return
	}
	assert.Equal(t, "ok", f.get("http://"+addr+"/healthz"))
	assert.Equal(t, f.run, f.get("http://"+addr+"/env/FAULTLINE_SUITE"), "env reaches the container")
}

// get fetches url from a published port (always 127.0.0.1) with a bounded
// number of tries: the port proxy can lag the health check by a moment.
func (f *fixture) get(url string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for range 20 {
		body, err := f.getOnce(c, url)
		if err == nil {
			return body
		}
		lastErr = err
		select {
		case <-f.ctx.Done():
			f.t.Fatalf("get %s: %v", url, f.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.t.Fatalf("get %s: %v", url, lastErr)
	return ""
}

func (f *fixture) getOnce(c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}

// stateErrors follows Docker: starting a running container and stopping a
// stopped one are no-ops; every other impossible transition is an error.
func (s suite) stateErrors(t *testing.T) {
	f := s.setup(t)
	n := f.network("n", 6)
	spec := f.spec("s", runtime.Attachment{Network: n})
	require.NoError(t, f.rt.Create(f.ctx, spec))
	name := spec.Name

	assert.Error(t, f.rt.Pause(f.ctx, name), "pause a created container")
	assert.Error(t, f.rt.Unpause(f.ctx, name), "unpause a created container")
	assert.Error(t, f.rt.Kill(f.ctx, name), "kill a created container")
	assert.Equal(t, runtime.StateCreated, f.state(name))

	require.NoError(t, f.rt.Start(f.ctx, name))
	require.NoError(t, f.rt.Start(f.ctx, name), "start a running container")
	assert.Error(t, f.rt.Unpause(f.ctx, name), "unpause a running container")
	require.NoError(t, f.rt.Pause(f.ctx, name))
	assert.Error(t, f.rt.Pause(f.ctx, name), "pause a paused container")
	assert.Error(t, f.rt.Start(f.ctx, name), "start a paused container")
	assert.Equal(t, runtime.StatePaused, f.state(name))
	require.NoError(t, f.rt.Unpause(f.ctx, name))

	require.NoError(t, f.rt.Kill(f.ctx, name))
	assert.Error(t, f.rt.Kill(f.ctx, name), "kill an exited container")
	assert.Error(t, f.rt.Pause(f.ctx, name), "pause an exited container")
	assert.Error(t, f.rt.Unpause(f.ctx, name), "unpause an exited container")
	require.NoError(t, f.rt.Stop(f.ctx, name, time.Second), "stop an exited container")
	assert.Equal(t, runtime.StateExited, f.state(name))

	assert.Error(t, f.rt.Create(f.ctx, spec), "create with a name in use")
}

func (s suite) notFound(t *testing.T) {
	f := s.setup(t)
	missing := f.run + "-missing"
	n := f.network("n", 13)
	ops := map[string]func(t *testing.T) error{
		"Start":         func(t *testing.T) error { return f.rt.Start(f.ctx, missing) },
		"Stop":          func(t *testing.T) error { return f.rt.Stop(f.ctx, missing, time.Second) },
		"Kill":          func(t *testing.T) error { return f.rt.Kill(f.ctx, missing) },
		"Pause":         func(t *testing.T) error { return f.rt.Pause(f.ctx, missing) },
		"Unpause":       func(t *testing.T) error { return f.rt.Unpause(f.ctx, missing) },
		"Restart":       func(t *testing.T) error { return f.rt.Restart(f.ctx, missing) },
		"Remove":        func(t *testing.T) error { return f.rt.Remove(f.ctx, missing) },
		"WaitHealthy":   func(t *testing.T) error { return f.rt.WaitHealthy(f.ctx, missing) },
		"RemoveNetwork": func(t *testing.T) error { return f.rt.RemoveNetwork(f.ctx, missing) },
		"Inspect": func(t *testing.T) error {
			_, err := f.rt.Inspect(f.ctx, missing)
			return err
		},
		"CreateOnMissingNetwork": func(t *testing.T) error {
			return f.rt.Create(f.ctx, f.spec("orphan", runtime.Attachment{Network: missing}))
		},
		"CreateOnMissingSecondNetwork": func(t *testing.T) error {
			spec := f.spec("half", runtime.Attachment{Network: n}, runtime.Attachment{Network: missing})
			err := f.rt.Create(f.ctx, spec)
			_, ierr := f.rt.Inspect(f.ctx, spec.Name)
			assert.ErrorIs(t, ierr, runtime.ErrNotFound, "a failed create leaves no container")
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			err := op(t)
			require.ErrorIs(t, err, runtime.ErrNotFound)
			assert.Contains(t, err.Error(), missing, "the error names what is missing")
		})
	}
}

func (s suite) list(t *testing.T) {
	f := s.setup(t)
	n := f.network("n", 7)
	for _, c := range []struct{ name, role string }{{"web-1", "web"}, {"web-2", "web"}, {"db-1", "db"}} {
		spec := f.spec(c.name, runtime.Attachment{Network: n})
		spec.Labels[runtime.LabelRole] = c.role
		require.NoError(t, f.rt.Create(f.ctx, spec))
	}
	require.NoError(t, f.rt.Start(f.ctx, f.run+"-web-1"))

	tests := []struct {
		selector runtime.Labels
		want     []string
	}{
		{f.labels(), []string{"db-1", "web-1", "web-2"}},
		{f.labels(runtime.LabelRole, "web"), []string{"web-1", "web-2"}},
		{f.labels(runtime.LabelRole, "web", runtime.LabelNode, "web-2"), []string{"web-2"}},
		{f.labels(runtime.LabelRole, "cache"), nil},
		{runtime.Labels{runtime.LabelRun: f.run + "x"}, nil},
	}
	for _, tt := range tests {
		got, err := f.rt.List(f.ctx, tt.selector)
		require.NoError(t, err)
		var names []string
		for _, c := range got {
			names = append(names, c.Name)
			assert.True(t, tt.selector.Matches(c.Labels))
		}
		var want []string
		for _, w := range tt.want {
			want = append(want, f.run+"-"+w)
		}
		assert.Equal(t, want, names, "selector %v", tt.selector)
	}
	all, err := f.rt.List(f.ctx, f.labels(runtime.LabelNode, "web-1"))
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, runtime.StateRunning, all[0].State)
}

func (s suite) removeByLabel(t *testing.T) {
	f := s.setup(t)
	a := f.network("a", 8)
	b := f.network("b", 9)
	running := f.running(f.spec("running", runtime.Attachment{Network: a}, runtime.Attachment{Network: b}))
	paused := f.running(f.spec("paused", runtime.Attachment{Network: a}))
	require.NoError(t, f.rt.Pause(f.ctx, paused))
	exited := f.running(f.spec("exited", runtime.Attachment{Network: b}))
	require.NoError(t, f.rt.Kill(f.ctx, exited))
	require.NoError(t, f.rt.Create(f.ctx, f.spec("created", runtime.Attachment{Network: a})))
	assert.Equal(t, runtime.StateRunning, f.state(running))

	require.NoError(t, f.rt.RemoveByLabel(f.ctx, f.labels()))
	f.assertNothingLeft(f.labels())
	require.NoError(t, f.rt.RemoveByLabel(f.ctx, f.labels()), "removing nothing is not an error")
	assert.Error(t, f.rt.RemoveByLabel(f.ctx, runtime.Labels{}), "an empty selector would match everything")
}

func (f *fixture) assertNothingLeft(selector runtime.Labels) {
	cs, err := f.rt.List(f.ctx, selector)
	require.NoError(f.t, err)
	assert.Empty(f.t, cs, "containers left")
	ns, err := f.rt.ListNetworks(f.ctx, selector)
	require.NoError(f.t, err)
	assert.Empty(f.t, ns, "networks left")
}

func (s suite) runsIsolated(t *testing.T) {
	one := s.setup(t)
	two := s.setupOn(t, one.rt)
	n1 := one.network("n", 10)
	n2 := two.network("n", 11)
	c1 := one.running(one.spec("web", runtime.Attachment{Network: n1}))
	c2 := two.running(two.spec("web", runtime.Attachment{Network: n2}))

	require.NoError(t, one.rt.RemoveByLabel(one.ctx, one.labels()))
	one.assertNothingLeft(one.labels())
	_, err := one.rt.Inspect(one.ctx, c1)
	require.ErrorIs(t, err, runtime.ErrNotFound)

	info, err := two.rt.Inspect(two.ctx, c2)
	require.NoError(t, err)
	assert.Equal(t, runtime.StateRunning, info.State)
	assert.True(t, info.Healthy)
	nets, err := two.rt.ListNetworks(two.ctx, two.labels())
	require.NoError(t, err)
	require.Len(t, nets, 1)
	assert.Equal(t, n2, nets[0].Name)
}

// waitHealthyExited: a container that dies must fail WaitHealthy at once
// rather than leave the caller waiting for its deadline.
func (s suite) waitHealthyExited(t *testing.T) {
	if len(s.env.ExitCmd) == 0 {
		t.Skip("Env.ExitCmd not set")
	}
	f := s.setup(t)
	n := f.network("n", 12)
	spec := f.spec("dies", runtime.Attachment{Network: n})
	spec.Cmd = f.env.ExitCmd
	require.NoError(t, f.rt.Create(f.ctx, spec))
	_ = f.rt.Start(f.ctx, spec.Name) // may report the exit itself
	err := f.rt.WaitHealthy(f.ctx, spec.Name)
	require.Error(t, err)
	assert.NoError(t, f.ctx.Err(), "WaitHealthy returned before its deadline")
	assert.Contains(t, err.Error(), "exited")
}
