package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/memory"
	"github.com/faultline/faultline/runtime/runtimetest"
)

func TestContract(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		r := memory.New()
		t.Cleanup(func() { _ = r.Close() })
		return r
	}, runtimetest.Env{
		Image:          "faultline/memory-test",
		Cmd:            []string{"/node", "serve"},
		Port:           8080,
		Health:         []string{"/node", "health"},
		HealthInterval: 100 * time.Millisecond,
		SubnetPrefix:   "10.202",
	})
}

func setup(t *testing.T, opts ...memory.Option) (*memory.Runtime, context.Context) {
	r := memory.New(opts...)
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, r.CreateNetwork(ctx, runtime.NetworkSpec{Name: "us-east", Subnet: "10.202.1.0/24", Labels: run}))
	return r, ctx
}

var run = runtime.Labels{runtime.LabelRun: "r1"}

func web(name string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:     name,
		Labels:   run,
		Networks: []runtime.Attachment{{Network: "us-east"}},
		Health:   &runtime.HealthCheck{Cmd: []string{"/node", "health"}},
	}
}

func TestEventLog(t *testing.T) {
	r, ctx := setup(t)
	require.NoError(t, r.Create(ctx, web("web-us-east-1")))
	require.NoError(t, r.Start(ctx, "web-us-east-1"))
	require.NoError(t, r.Pause(ctx, "web-us-east-1"))
	require.Error(t, r.Pause(ctx, "web-us-east-1"))
	require.NoError(t, r.Kill(ctx, "web-us-east-1"))
	require.NoError(t, r.Restart(ctx, "web-us-east-1"))
	require.NoError(t, r.RemoveByLabel(ctx, run))

	var got []string
	var last time.Time
	for _, e := range r.Events() {
		got = append(got, e.String())
		assert.False(t, e.At.Before(last), "events are in time order")
		last = e.At
	}
	assert.Equal(t, []string{
		"create-network us-east",
		"create web-us-east-1",
		"start web-us-east-1",
		"pause web-us-east-1",
		"kill web-us-east-1",
		"restart web-us-east-1",
		"remove web-us-east-1",
		"remove-network us-east",
	}, got, "failed calls leave no event")
}

func TestHealthDelay(t *testing.T) {
	r, ctx := setup(t, memory.WithHealthDelay(time.Hour))
	require.NoError(t, r.Create(ctx, web("web-1")))
	plain := web("plain-1")
	plain.Health = nil
	require.NoError(t, r.Create(ctx, plain))
	require.NoError(t, r.Start(ctx, "web-1"))
	require.NoError(t, r.Start(ctx, "plain-1"))

	info, err := r.Inspect(ctx, "web-1")
	require.NoError(t, err)
	assert.Equal(t, runtime.StateRunning, info.State)
	assert.False(t, info.Healthy, "health check pending for an hour")

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.WaitHealthy(short, "web-1"), context.DeadlineExceeded)
	require.NoError(t, r.WaitHealthy(ctx, "plain-1"), "no health check: healthy once running")
}

func TestHealthDelayElapses(t *testing.T) {
	r, ctx := setup(t, memory.WithHealthDelay(30*time.Millisecond))
	require.NoError(t, r.Create(ctx, web("web-1")))
	require.NoError(t, r.Start(ctx, "web-1"))
	require.NoError(t, r.WaitHealthy(ctx, "web-1"))
	info, err := r.Inspect(ctx, "web-1")
	require.NoError(t, err)
	assert.True(t, info.Healthy)
}

func TestWaitHealthyWakesOnStart(t *testing.T) {
	r, ctx := setup(t)
	require.NoError(t, r.Create(ctx, web("web-1")))
	done := make(chan error, 1)
	go func() { done <- r.WaitHealthy(ctx, "web-1") }()
	require.NoError(t, r.Start(ctx, "web-1"))
	require.NoError(t, <-done)
}

func TestFailStart(t *testing.T) {
	r, ctx := setup(t, memory.WithFailStart("db-1"))
	require.NoError(t, r.Create(ctx, web("db-1")))
	require.Error(t, r.Start(ctx, "db-1"))
	info, err := r.Inspect(ctx, "db-1")
	require.NoError(t, err)
	assert.Equal(t, runtime.StateExited, info.State)
	err = r.WaitHealthy(ctx, "db-1")
	require.ErrorContains(t, err, "exited")
	require.NoError(t, ctx.Err(), "WaitHealthy gave up at once")
	assert.Equal(t, "crash db-1", r.Events()[len(r.Events())-1].String())
}

func TestAddresses(t *testing.T) {
	r, ctx := setup(t)
	fixed := web("fixed")
	fixed.Networks[0].IP = "10.202.1.2"
	taken := web("taken")
	taken.Networks[0].IP = "10.202.1.2"
	for _, s := range []runtime.ContainerSpec{fixed, taken, web("auto")} {
		require.NoError(t, r.Create(ctx, s))
	}
	require.NoError(t, r.Start(ctx, "fixed"))
	require.ErrorContains(t, r.Start(ctx, "taken"), "already in use")
	require.NoError(t, r.Start(ctx, "auto"))
	info, err := r.Inspect(ctx, "auto")
	require.NoError(t, err)
	assert.Equal(t, "10.202.1.3", info.IPs["us-east"], "lowest free after gateway and fixed")

	outside := web("outside")
	outside.Networks[0].IP = "10.9.9.9"
	require.Error(t, r.Create(ctx, outside))
	require.ErrorContains(t, r.CreateNetwork(ctx, runtime.NetworkSpec{Name: "overlap", Subnet: "10.202.0.0/16"}), "overlaps")
	require.Error(t, r.CreateNetwork(ctx, runtime.NetworkSpec{Name: "bad", Subnet: "10.202.300.0/24"}))
}

func TestClosed(t *testing.T) {
	r, ctx := setup(t)
	require.NoError(t, r.Create(ctx, web("web-1")))
	done := make(chan error, 1)
	go func() { done <- r.WaitHealthy(ctx, "web-1") }()
	require.NoError(t, r.Close())
	require.ErrorContains(t, <-done, "closed", "Close wakes waiters")
	require.Error(t, r.Start(ctx, "web-1"))
}

// TestConcurrent is for the race detector: many goroutines drive one runtime.
func TestConcurrent(t *testing.T) {
	r, ctx := setup(t, memory.WithHealthDelay(time.Millisecond))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := "web-" + string(rune('a'+i))
			if !assert.NoError(t, r.Create(ctx, web(name))) {
				return
			}
			assert.NoError(t, r.Start(ctx, name))
			assert.NoError(t, r.WaitHealthy(ctx, name))
			assert.NoError(t, r.Pause(ctx, name))
			assert.NoError(t, r.Unpause(ctx, name))
			_, err := r.List(ctx, runtime.Labels{})
			assert.NoError(t, err)
			assert.NoError(t, r.Remove(ctx, name))
		})
	}
	wg.Wait()
	cs, err := r.List(ctx, runtime.Labels{})
	require.NoError(t, err)
	assert.Empty(t, cs)
}

func BenchmarkStartHealthy(b *testing.B) {
	r := memory.New()
	ctx := context.Background()
	require.NoError(b, r.CreateNetwork(ctx, runtime.NetworkSpec{Name: "us-east", Subnet: "10.202.0.0/16"}))
	for b.Loop() {
		require.NoError(b, r.Create(ctx, web("web-1")))
		require.NoError(b, r.Start(ctx, "web-1"))
		require.NoError(b, r.WaitHealthy(ctx, "web-1"))
		require.NoError(b, r.Remove(ctx, "web-1"))
	}
}
