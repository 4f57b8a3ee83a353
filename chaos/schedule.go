package chaos

import (
	"context"
	"slices"
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
// whichever comes first. A fault whose target is still held by an earlier
// one (not yet healed) waits for it, and then holds for its whole For.
// onEvent, if not nil, is told of every injection and heal as it happens
// (for progress output and events.jsonl).
func Play(ctx context.Context, env Env, start time.Time, steps []Step, onEvent func(Event)) []results.Fault {
	out := make([]results.Fault, len(steps))
	locks := newTargetLocks(steps)
	var wg sync.WaitGroup
	for i, st := range steps {
		out[i] = st.record()
		wg.Add(1)
		go func() {
			defer wg.Done()
			play(ctx, env, start, st, locks, &out[i], onEvent)
		}()
	}
	wg.Wait()
	return out
}

// record is the step as scheduled, not yet injected (times -1).
func (st Step) record() results.Fault {
	return results.Fault{
		Kind: st.Spec.Kind, Targets: st.Spec.Targets, Peers: st.Spec.Peers, OneWay: st.Spec.OneWay,
		Link: st.Spec.Link.record(), At: st.At.Seconds(), For: st.For.Seconds(),
		InjectedAt: -1, HealedAt: -1,
	}
}

func (c LinkChange) record() *results.Link {
	if c == (LinkChange{}) {
		return nil
	}
	ms := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		v := float64(*d) / float64(time.Millisecond)
		return &v
	}
	return &results.Link{RTTMS: ms(c.RTT), JitterMS: ms(c.Jitter), Loss: c.Loss, BandwidthBps: c.BandwidthBps}
}

// Event is an injection or heal as it happened.
type Event struct {
	Action  string   `json:"action"` // "inject" or "heal"
	Kind    string   `json:"kind"`
	T       float64  `json:"t"` // seconds since the run's start
	Targets []string `json:"targets"`
	Error   string   `json:"error,omitempty"`
}

// targetLocks serializes the faults of one target. A heal can outlast the
// gap a schedule leaves before the next fault on the same node (a restart
// on a loaded machine takes seconds), and a fault injected into a node whose
// heal is still under way would make that heal fail. The map is built
// before play starts and only read after.
type targetLocks map[string]chan struct{}

func newTargetLocks(steps []Step) targetLocks {
	l := targetLocks{}
	for _, st := range steps {
		for _, t := range st.Spec.Targets {
			if l[t] == nil {
				l[t] = make(chan struct{}, 1)
			}
		}
	}
	return l
}

// acquire takes the locks of targets, in sorted order so that two steps
// never wait on each other, and returns their release; false if ctx ended
// first.
func (l targetLocks) acquire(ctx context.Context, targets []string) (release func(), ok bool) {
	var held []chan struct{}
	release = func() {
		for _, c := range held {
			<-c
		}
	}
	for _, t := range slices.Compact(slices.Sorted(slices.Values(targets))) {
		select {
		case l[t] <- struct{}{}:
			held = append(held, l[t])
		case <-ctx.Done():
			release()
			return nil, false
		}
	}
	return release, true
}

func play(ctx context.Context, env Env, start time.Time, st Step, locks targetLocks, rec *results.Fault, onEvent func(Event)) {
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
	release, ok := locks.acquire(ctx, st.Spec.Targets)
	if !ok {
		return // the run ended while an earlier fault held a target
	}
	defer release()
	// A target picked at inject time ("the current leader") becomes a
	// node now; the record and the events name that node.
	targets, err := env.resolve(ctx, st.Spec.Targets)
	if err != nil {
		rec.Error = err.Error()
		emit("inject", err)
		return
	}
	st.Spec.Targets = targets
	rec.Targets = targets
	f, err := New(env, st.Spec)
	if err != nil {
		rec.Error = err.Error()
		emit("inject", err)
		return
	}
	injected := time.Now()
	rec.InjectedAt = injected.Sub(start).Seconds()
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
		// A fault delayed by an earlier one on its targets still holds
		// for its whole time.
		sleepUntil(ctx, injected.Add(st.For))
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
