package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/faultline/faultline/results"
)

// Step is one fault of a schedule: inject at At (since the run's start),
// heal For later. For == 0 means heal when the run ends.
type Step struct {
	At, For time.Duration
	Spec    Spec
}

// healTimeout bounds one heal; heals run on a context detached from the
// run's, so an aborted run still heals.
const healTimeout = 30 * time.Second

// Play runs steps against env, relative to start, and returns what happened,
// in schedule order. It returns once every injected fault has been healed:
// when each fault's time is up, or when ctx ends (end of run or abort),
// whichever comes first. onEvent, if not nil, is told of every injection and
// heal as it happens (for progress output and events.jsonl).
func Play(ctx context.Context, env Env, start time.Time, steps []Step, onEvent func(Event)) []results.Fault {
	out := make([]results.Fault, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		out[i] = results.Fault{Kind: st.Spec.Kind, Targets: st.Spec.Targets, InjectedAt: -1, HealedAt: -1}
		wg.Add(1)
		go func() {
			defer wg.Done()
			play(ctx, env, start, st, &out[i], onEvent)
		}()
	}
	wg.Wait()
	return out
}

// Event is an injection or heal as it happened.
type Event struct {
	Action  string   `json:"action"` // "inject" or "heal"
	Kind    string   `json:"kind"`
	T       float64  `json:"t"` // seconds since the run's start
	Targets []string `json:"targets"`
	Error   string   `json:"error,omitempty"`
}

func play(ctx context.Context, env Env, start time.Time, st Step, rec *results.Fault, onEvent func(Event)) {
	emit := func(action string, err error) {
		if onEvent == nil {
			return
		}
		ev := Event{Action: action, Kind: st.Spec.Kind, T: time.Since(start).Seconds(), Targets: st.Spec.Targets}
		if err != nil {
			ev.Error = err.Error()
		}
		onEvent(ev)
	}
	if !sleepUntil(ctx, start.Add(st.At)) {
		return // the run ended before this fault's time
	}
	f, err := New(env, st.Spec)
	if err != nil {
		rec.Error = err.Error()
		emit("inject", err)
		return
	}
	rec.InjectedAt = time.Since(start).Seconds()
	injectErr := f.Inject(ctx)
	emit("inject", injectErr)
	// Heal is deferred in the same call that injected: nothing that happens
	// after this point can leave the fault in place.
	defer func() {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
		defer cancel()
		healErr := f.Heal(hctx)
		rec.HealedAt = time.Since(start).Seconds()
		emit("heal", healErr)
		if healErr != nil {
			rec.Error = joinMsg(rec.Error, healErr.Error())
		}
	}()
	if injectErr != nil {
		rec.Error = injectErr.Error()
		return
	}
	if st.For > 0 {
		sleepUntil(ctx, start.Add(st.At+st.For))
	} else {
		<-ctx.Done()
	}
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// sleepUntil waits until t and reports whether it got there before ctx ended.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
