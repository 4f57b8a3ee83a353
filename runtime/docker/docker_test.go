package docker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/docker"
	"github.com/faultline/faultline/runtime/runtimetest"
)

const (
	testImage   = "faultline/runtimetest:latest"
	labelBinary = "faultline.runtimetest.sha256"
)

// newRuntime connects to the engine or fails the test; -short skips the
// Docker tests.
func newRuntime(t testing.TB) *docker.Runtime {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker test (-short)")
	}
	r, err := docker.New(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

var (
	imageOnce sync.Once
	imageErr  error
)

// testImageFor builds runtimetest/testimage statically and puts it in a
// FROM-scratch image, skipping the image build when the binary is unchanged.
func testImageFor(t testing.TB, r *docker.Runtime) string {
	t.Helper()
	imageOnce.Do(func() { imageErr = buildTestImage(r) })
	require.NoError(t, imageErr)
	return testImage
}

func buildTestImage(r *docker.Runtime) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "runtimetest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "node")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin,
		"github.com/faultline/faultline/runtime/runtimetest/testimage")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build testimage: %w\n%s", err, out)
	}
	node, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(node)
	digest := hex.EncodeToString(sum[:])
	labels, ok, err := r.ImageLabels(ctx, testImage)
	if err != nil {
		return err
	}
	if ok && labels[labelBinary] == digest {
		return nil
	}
	return r.BuildImage(ctx, testImage, map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY node /node\nENTRYPOINT [\"/node\"]\n"),
		"node":       node,
	}, map[string]string{labelBinary: digest})
}

func TestContract(t *testing.T) {
	r := newRuntime(t)
	image := testImageFor(t, r)
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return newRuntime(t) }, runtimetest.Env{
		Image:          image,
		Cmd:            []string{"serve"},
		Port:           8080,
		Health:         []string{"/node", "health"},
		HealthInterval: 250 * time.Millisecond,
		ExitCmd:        []string{"exit"},
		HTTP:           true,
		SubnetPrefix:   "10.202",
	})
}

func TestNewFailsFast(t *testing.T) {
	_, err := docker.New(context.Background(), docker.WithHost("unix:///nonexistent/docker.sock"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to docker")
}

func TestBuildImage(t *testing.T) {
	r := newRuntime(t)
	ctx := t.Context()
	image := testImageFor(t, r)
	labels, ok, err := r.ImageLabels(ctx, image)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Len(t, labels[labelBinary], 64)

	_, ok, err = r.ImageLabels(ctx, "faultline/no-such-image:"+runtimetest.NewRunID())
	require.NoError(t, err)
	assert.False(t, ok)

	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"no Dockerfile", map[string][]byte{"node": []byte("x")}, "no Dockerfile"},
		{"missing file", map[string][]byte{"Dockerfile": []byte("FROM scratch\nCOPY absent /absent\n")}, "absent"},
		{"bad instruction", map[string][]byte{"Dockerfile": []byte("FROM scratch\nNOSUCH x\n")}, "NOSUCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := "faultline/broken:" + runtimetest.NewRunID()
			err := r.BuildImage(ctx, tag, tt.files, nil)
			require.Error(t, err, "the error is in the build stream, not the HTTP status")
			assert.Contains(t, err.Error(), tt.want)
			_, ok, err := r.ImageLabels(ctx, tag)
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

// fixture makes n healthy containers on two networks of one run.
type fixture struct {
	r      *docker.Runtime
	ctx    context.Context
	run    string
	labels runtime.Labels
	nets   []string
}

func newFixture(t testing.TB, r *docker.Runtime, subnets ...string) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	run := runtimetest.NewRunID()
	f := &fixture{r: r, ctx: ctx, run: run, labels: runtime.Labels{runtime.LabelRun: run}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, r.RemoveByLabel(ctx, f.labels))
	})
	for i, s := range subnets {
		name := fmt.Sprintf("%s-net%d", run, i)
		require.NoError(t, r.CreateNetwork(ctx, runtime.NetworkSpec{Name: name, Subnet: s, Labels: f.labels}))
		f.nets = append(f.nets, name)
	}
	return f
}

// spec is a web container on every network of f; interval 0 means no
// health check.
func (f *fixture) spec(image string, i int, interval time.Duration) runtime.ContainerSpec {
	var nets []runtime.Attachment
	for _, n := range f.nets {
		nets = append(nets, runtime.Attachment{Network: n})
	}
	spec := runtime.ContainerSpec{
		Name:     fmt.Sprintf("%s-web-%d", f.run, i),
		Image:    image,
		Cmd:      []string{"serve"},
		Labels:   runtime.Labels{runtime.LabelRun: f.run, runtime.LabelRole: "web"},
		Networks: nets,
	}
	if interval > 0 {
		spec.Health = &runtime.HealthCheck{Cmd: []string{"/node", "health"}, Interval: interval, Retries: 3}
	}
	return spec
}

func (f *fixture) up(spec runtime.ContainerSpec) error {
	if err := f.r.Create(f.ctx, spec); err != nil {
		return err
	}
	if err := f.r.Start(f.ctx, spec.Name); err != nil {
		return err
	}
	return f.r.WaitHealthy(f.ctx, spec.Name)
}

// TestTeardownAfterParallelRemove removes a run's containers in parallel (the
// case that leaves stale endpoints on engine 20.10) and checks that
// RemoveByLabel still leaves nothing behind.
func TestTeardownAfterParallelRemove(t *testing.T) {
	r := newRuntime(t)
	image := testImageFor(t, r)
	f := newFixture(t, r, "10.202.100.0/24", "10.202.101.0/24")
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { assert.NoError(t, f.up(f.spec(image, i, 250*time.Millisecond))) })
	}
	wg.Wait()
	cs, err := r.List(f.ctx, f.labels)
	require.NoError(t, err)
	require.Len(t, cs, n)
	for _, c := range cs {
		require.Len(t, c.IPs, 2, "on both networks")
	}

	for _, c := range cs {
		wg.Go(func() { assert.NoError(t, r.Remove(f.ctx, c.Name)) })
	}
	wg.Wait()
	require.NoError(t, r.RemoveByLabel(f.ctx, f.labels))

	cs, err = r.List(f.ctx, f.labels)
	require.NoError(t, err)
	assert.Empty(t, cs)
	nets, err := r.ListNetworks(f.ctx, f.labels)
	require.NoError(t, err)
	assert.Empty(t, nets)
	for _, name := range f.nets {
		_, err := r.Client().NetworkInspect(f.ctx, name, client.NetworkInspectOptions{})
		assert.Error(t, err, "network %s is gone from the engine", name)
	}
}

// Two controllers sweeping the same leftovers at once (two runs starting
// after a SIGKILLed one) both succeed: a removal already in progress
// elsewhere counts once the container is gone.
func TestConcurrentRemoveByLabel(t *testing.T) {
	r := newRuntime(t)
	image := testImageFor(t, r)
	f := newFixture(t, r, "10.202.102.0/24")
	const n = 4
	for i := range n {
		spec := f.spec(image, i, 0)
		require.NoError(t, r.Create(f.ctx, spec))
		require.NoError(t, r.Start(f.ctx, spec.Name))
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, r.RemoveByLabel(f.ctx, f.labels)) })
	}
	wg.Wait()
	cs, err := r.List(f.ctx, f.labels)
	require.NoError(t, err)
	assert.Empty(t, cs)
	nets, err := r.ListNetworks(f.ctx, f.labels)
	require.NoError(t, err)
	assert.Empty(t, nets)
}

// TestWaitHealthyReportsHealthOutput: a container whose health check never
// passes makes WaitHealthy end with ctx and say why.
func TestWaitHealthyReportsHealthOutput(t *testing.T) {
	r := newRuntime(t)
	image := testImageFor(t, r)
	f := newFixture(t, r, "10.202.102.0/24")
	spec := f.spec(image, 1, 100*time.Millisecond)
	spec.Health.Cmd = []string{"/node", "no-such-subcommand"}
	require.NoError(t, r.Create(f.ctx, spec))
	require.NoError(t, r.Start(f.ctx, spec.Name))
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	err := r.WaitHealthy(ctx, spec.Name)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "state running")
}

func TestRemoveByLabelRefusesEmptySelector(t *testing.T) {
	r := newRuntime(t)
	require.Error(t, r.RemoveByLabel(t.Context(), runtime.Labels{}))
}

// BenchmarkStart12 is create+start+healthy of 12 containers on one network,
// one after another and all at once, without a health check (interval=0s)
// and for two health check intervals: every probe is an exec, which costs
// the engine more than anything else here.
func BenchmarkStart12(b *testing.B) {
	r := newRuntime(b)
	image := testImageFor(b, r)
	for _, interval := range []time.Duration{0, 250 * time.Millisecond, time.Second} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("interval=%s/parallel=%t", interval, parallel), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					f := newFixture(b, r, "10.202.110.0/24")
					b.StartTimer()
					start12(b, f, image, interval, parallel)
					b.StopTimer()
					require.NoError(b, r.RemoveByLabel(f.ctx, f.labels))
					b.StartTimer()
				}
			})
		}
	}
}

func start12(b *testing.B, f *fixture, image string, interval time.Duration, parallel bool) {
	if !parallel {
		for i := range 12 {
			require.NoError(b, f.up(f.spec(image, i, interval)))
		}
		return
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() { assert.NoError(b, f.up(f.spec(image, i, interval))) })
	}
	wg.Wait()
}
