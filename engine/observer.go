package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/faultline/faultline/results"
)

// An observer follows one capability of the system under test through a
// run (DNS answers, db histories, broker acknowledgements, scaling) and adds
// what it saw to the summary. Each capability registers its factory in its
// own file, so the run loop never learns about any of them.
type observer interface {
	// watch runs from the scenario start until ctx ends, which is when the
	// load is over; it returns an infrastructure error or nil.
	watch(ctx context.Context) error
	// report adds the findings to the summary once every fault is healed,
	// before the checks are evaluated.
	report(ctx context.Context, sum *results.Summary) error
}

// An observerFactory returns nil when the run has nothing for it to watch.
type observerFactory func(r *run) (observer, error)

var observerFactories = map[string]observerFactory{}

func registerObserver(name string, f observerFactory) {
	if _, dup := observerFactories[name]; dup {
		panic("engine: observer registered twice: " + name)
	}
	observerFactories[name] = f
}

// startObservers builds every observer that applies to this run.
func (r *run) startObservers() (map[string]observer, error) {
	out := map[string]observer{}
	for name, f := range observerFactories {
		o, err := f(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if o != nil {
			out[name] = o
		}
	}
	return out, nil
}

// onTicks calls f every period, the first time one period in, until ctx
// ends: the shape of the observers that sample the run at a fixed rate.
func onTicks(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}
