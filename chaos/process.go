package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/faultline/faultline/netsetup"
)

// Process faults act on whole containers through the runtime.
func init() {
	Register("kill", newProcessFault(
		"kill", func(ctx context.Context, e Env, n string) error { return e.Runtime.Kill(ctx, e.container(n)) },
		startNode))
	Register("stop", newProcessFault(
		"stop", func(ctx context.Context, e Env, n string) error {
			return e.Runtime.Stop(ctx, e.container(n), 5*time.Second)
		},
		startNode))
	Register("pause", newProcessFault(
		"pause", func(ctx context.Context, e Env, n string) error { return e.Runtime.Pause(ctx, e.container(n)) },
		func(ctx context.Context, e Env, n string) error { return e.Runtime.Unpause(ctx, e.container(n)) }))
	// restart is instantaneous: the injection is the whole fault.
	Register("restart", newProcessFault(
		"restart", func(ctx context.Context, e Env, n string) error {
			if err := e.Runtime.Restart(ctx, e.container(n)); err != nil {
				return err
			}
			return reroute(ctx, e, n)
		},
		func(context.Context, Env, string) error { return nil }))
}

// startNode starts a stopped node and gives its new network namespace the
// run's inter-region routes again.
func startNode(ctx context.Context, e Env, n string) error {
	if err := e.Runtime.Start(ctx, e.container(n)); err != nil {
		return err
	}
	return reroute(ctx, e, n)
}

// reroute reinstalls a restarted node's routes: a new process has a new
// namespace, without the routes that send other regions through the wan.
func reroute(ctx context.Context, e Env, n string) error {
	if !netsetup.HasNamespaces(e.Runtime) {
		return nil // no namespaces, so no routes to lose
	}
	net, err := netsetup.Discover(ctx, e.Runtime, e.RunID)
	if err != nil {
		return err
	}
	return net.Install(ctx, n)
}

type action func(ctx context.Context, env Env, node string) error

type processFault struct {
	kind         string
	env          Env
	targets      []string
	inject, heal action
	injected     []string // healed in reverse order of injection
}

func newProcessFault(kind string, inject, heal action) Factory {
	return func(env Env, spec Spec) (Fault, error) {
		return &processFault{kind: kind, env: env, targets: spec.Targets, inject: inject, heal: heal}, nil
	}
}

// Inject acts on every target at once: a datacenter's servers die
// together, and one by one a region of five took Docker over 2 s under
// load, which DNS failover figures counted as the system's.
func (f *processFault) Inject(ctx context.Context) error {
	for _, n := range f.targets {
		if err := ownContainer(ctx, f.env, n); err != nil {
			return fmt.Errorf("%s: %w", f.kind, err)
		}
	}
	errs := make([]error, len(f.targets))
	var wg sync.WaitGroup
	for i, n := range f.targets {
		wg.Go(func() {
			if err := f.inject(ctx, f.env, n); err != nil {
				errs[i] = fmt.Errorf("%s %s: %w", f.kind, n, err)
			}
		})
	}
	wg.Wait()
	for i, n := range f.targets {
		if errs[i] == nil {
			f.injected = append(f.injected, n)
		}
	}
	return errors.Join(errs...)
}

// Heal undoes every injection that took effect, even if an earlier heal
// failed, and reports all failures.
func (f *processFault) Heal(ctx context.Context) error {
	var errs []error
	for i := len(f.injected) - 1; i >= 0; i-- {
		if err := f.heal(ctx, f.env, f.injected[i]); err != nil {
			errs = append(errs, fmt.Errorf("heal %s %s: %w", f.kind, f.injected[i], err))
		}
	}
	f.injected = nil
	return errors.Join(errs...)
}
