package loadgen

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxWorkersCap bounds the goroutines (and connections) one attack may hold.
// Past it vegeta's pacer waits, which still shows up in the latencies because
// they are measured from the intended send time.
const maxWorkersCap = 100_000

// Attack runs spec and calls out with the buckets that changed about once
// a second and once more at the end, one call at a time, in order, and all
// of them before it returns (out runs on a goroutine of its own, so a slow
// consumer never holds up the requests' results). When
// ctx ends the attack stops sending, waits for requests in flight (at most
// spec.Timeout) and returns ctx's error with the results gathered so far.
func Attack(ctx context.Context, spec AttackSpec, out func(Bucket)) (Final, error) {
	if err := spec.Validate(); err != nil {
		return Final{Error: err.Error()}, fmt.Errorf("attack: %w", err)
	}
	base, _ := url.Parse(spec.Target) // Validate parsed it
	if !spec.StartAt.IsZero() {
		if err := sleepUntil(ctx, spec.StartAt); err != nil {
			return Final{Error: err.Error()}, fmt.Errorf("attack %s: wait for start: %w", spec.Target, err)
		}
	}
	client, transport, res := newHTTPClient(spec)
	defer transport.CloseIdleConnections()
	if res != nil {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			res.recycle(rctx, transport)
		}()
		defer func() { stop(); <-done }()
	}

	var final Final
	if spec.Users != nil {
		final = attackClosed(ctx, spec, base, client, out)
	} else {
		final = attackOpen(ctx, spec, base, client, out)
	}
	if err := ctx.Err(); err != nil {
		final.Error = fmt.Sprintf("attack stopped early: %v", err)
		return final, fmt.Errorf("attack %s: %w", spec.Target, err)
	}
	return final, nil
}

// attackOpen sends spec's schedule through vegeta.
func attackOpen(ctx context.Context, spec AttackSpec, base *url.URL, client *http.Client, out func(Bucket)) Final {
	sched, _ := spec.schedule() // Validate checked it
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.MaxWorkers(maxWorkers(spec, sched)),
		vegeta.MaxBody(0), // bodies are read and discarded, never kept
	)
	rec := newRecorder(time.Now(), spec.Duration, func(from, to time.Duration) (int64, int) {
		return int64(countBefore(sched, to) - countBefore(sched, from)), 0
	})
	results := atk.Attack(workloads[spec.Workload].targeter(base), newPacer(sched, spec.Duration), 0, "faultline")
	drain(ctx, rec, results, func() { atk.Stop() }, out, func(r *vegeta.Result) { rec.observe(sched, r) })
	return rec.final()
}

// observe records r against its intended send time. Vegeta numbers requests
// in the order workers pick up the pacer's ticks, and the pacer released
// tick k at due(k), so that is when request Seq should have been sent had
// nothing stalled, however late it actually went out.
func (r *recorder) observe(s schedule, res *vegeta.Result) {
	r.record(r.start.Add(s.due(res.Seq)), res.Timestamp.Add(res.Latency), Classify(res.Code, res.Error))
}

// drain feeds results to observe until results is closed, while a
// goroutine of its own flushes rec about once a second; when ctx ends it
// calls stop, which must close results. out is called one bucket at a time,
// in order, and for the last time before drain returns.
//
// Every worker hands its result to this one loop over an unbuffered
// channel, so the loop does nothing else: while it is busy the workers
// wait, the pacer finds none free and starts more (each with a connection
// of its own to open), and the wait shows in p99. The flush, and out (which
// encodes and sends the buckets, or merges them in the benchmark), run
// beside it and take the recorder only to detach the seconds they send; and
// the loop receives with a plain receive: a select over the results, the
// ticker and ctx locked all three channels for every result, and cost about
// 1.5 times the CPU per result handed over (8 senders, 2 cores).
func drain[T any](ctx context.Context, rec *recorder, results <-chan T, stop func(), out func(Bucket), observe func(T)) {
	var mu sync.Mutex // guards rec until the flusher is done
	quit, flushed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flushed)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		done := ctx.Done()
		for {
			select {
			case now := <-tick.C:
				mu.Lock()
				t := rec.take(now, false)
				mu.Unlock()
				t.emit(out)
			case <-done:
				stop()
				done = nil
			case <-quit:
				return
			}
		}
	}()
	for r := range results {
		mu.Lock()
		observe(r)
		mu.Unlock()
	}
	close(quit)
	<-flushed
	rec.flush(out, time.Now(), true)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// maxWorkers allows one worker per request that can be in flight at once at
// the schedule's peak rate, so a stalled server does not hold back the pacer.
func maxWorkers(spec AttackSpec, s schedule) uint64 {
	// Sized for the schedule's peak: a phased load that starts quiet and
	// steps up needs the step's workers, or its requests queue late.
	n := s.peak()*spec.timeout().Seconds() + 100
	return uint64(math.Min(n, maxWorkersCap))
}

// newHTTPClient returns the attack's client and, when the target is
// resolved through spec.Resolvers, the resolver.
func newHTTPClient(spec AttackSpec) (*http.Client, *http.Transport, *resolver) {
	timeout := spec.timeout()
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	dial := d.DialContext
	var res *resolver
	if len(spec.Resolvers) > 0 {
		res = newResolver(spec.Resolvers, timeout)
		dial = res.dialer(d)
	}
	tr := &http.Transport{
		Proxy:               nil, // load goes straight to the target, never via an env proxy
		DialContext:         dial,
		MaxIdleConnsPerHost: maxWorkersCap,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: tr}, tr, res
}

// acc accumulates one second's results until the next flush.
type acc struct {
	requests, errors, target int64
	users                    int
	cpu                      float64
	kinds                    map[string]int64
	hist                     *hdrhistogram.Histogram
}

// recorder buckets results by intended second and hands out deltas. It is
// used from one goroutine at a time.
type recorder struct {
	start   time.Time // just before the first request could be due, so never later
	end     time.Time // start + duration
	perSec  func(from, to time.Duration) (target int64, users int)
	pending map[int64]*acc
	last    *acc // pending[lastSec], or nil
	lastSec int64
	cpu     func() float64 // process CPU seconds so far

	nextSec  int64 // first second whose target and users are not yet sent
	lastCPU  float64
	lastTick time.Time

	total, errors int64
	target        int64
	latencySum    time.Duration
	cpu0          float64
}

func newRecorder(start time.Time, d time.Duration, perSec func(from, to time.Duration) (int64, int)) *recorder {
	cpu := cpuSeconds()
	return &recorder{
		start: start, end: start.Add(d), perSec: perSec, pending: map[int64]*acc{}, cpu: cpuSeconds,
		nextSec: start.Unix(), lastCPU: cpu, cpu0: cpu, lastTick: start,
	}
}

// acc is second sec's accumulator. Nearly every result falls in the same
// second as the one before, so that one is kept at hand.
func (r *recorder) acc(sec int64) *acc {
	if r.last != nil && r.lastSec == sec {
		return r.last
	}
	a := r.pending[sec]
	if a == nil {
		a = &acc{hist: NewHistogram()}
		r.pending[sec] = a
	}
	r.last, r.lastSec = a, sec
	return a
}

func (r *recorder) record(intended, end time.Time, kind string) {
	a := r.acc(intended.Unix())
	r.total++
	a.requests++
	if kind != "" {
		r.errors++
		a.errors++
		if a.kinds == nil {
			a.kinds = map[string]int64{}
		}
		a.kinds[kind]++
	}
	lat := max(end.Sub(intended), 0)
	r.latencySum += lat
	_ = a.hist.RecordValue(min(lat.Microseconds(), maxLatencyMicros)) // in range by construction
}

// flush adds the CPU used since the last flush, and the target and users of
// every second that has begun (every second up to the one holding the end
// when final), then emits every second that changed, oldest first, and
// forgets them.
func (r *recorder) flush(out func(Bucket), now time.Time, final bool) {
	r.take(now, final).emit(out)
}

// taken is the seconds one flush detached from the recorder, oldest first:
// nothing records into them any more, so they can be exported and sent
// while the recorder goes on.
type taken []secAcc

type secAcc struct {
	sec int64
	*acc
}

// take is flush up to emitting: the part that needs the recorder.
func (r *recorder) take(now time.Time, final bool) taken {
	if cpu := r.cpu(); cpu > r.lastCPU {
		mid := r.lastTick.Add(now.Sub(r.lastTick) / 2)
		r.acc(mid.Unix()).cpu += cpu - r.lastCPU
		r.lastCPU = cpu
	}
	r.lastTick = now

	last := r.end.Unix()
	if !final {
		last = min(last, now.Unix())
	}
	for ; r.perSec != nil && r.nextSec <= last; r.nextSec++ {
		from := time.Unix(r.nextSec, 0).Sub(r.start)
		target, users := r.perSec(max(from, 0), from+time.Second)
		a := r.acc(r.nextSec)
		a.target, a.users = target, users
		r.target += target
	}

	t := make(taken, 0, len(r.pending))
	for s, a := range r.pending {
		t = append(t, secAcc{s, a})
	}
	sort.Slice(t, func(i, j int) bool { return t[i].sec < t[j].sec })
	clear(r.pending)
	r.last = nil
	return t
}

// emit sends each second in t as a Bucket.
func (t taken) emit(out func(Bucket)) {
	for _, a := range t {
		out(Bucket{Second: a.sec, Requests: a.requests, Errors: a.errors, ErrorsByKind: a.kinds,
			Target: a.target, Users: a.users, CPU: a.cpu, Latency: compact(a.hist.Export())})
	}
}

func (r *recorder) final() Final {
	return Final{Requests: r.total, Target: r.target, CPUSeconds: r.cpu() - r.cpu0, WallSeconds: time.Since(r.start).Seconds()}
}

// compact drops trailing zero counts, which Import treats as zero anyway; a
// full snapshot is ~17k counts, almost all zero, on every streamed line.
func compact(s *hdrhistogram.Snapshot) *hdrhistogram.Snapshot {
	n := len(s.Counts)
	for n > 0 && s.Counts[n-1] == 0 {
		n--
	}
	s.Counts = s.Counts[:n]
	return s
}
