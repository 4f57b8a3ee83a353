package loadgen

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
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

// drain feeds results to observe and flushes rec about once a second until
// results is closed; when ctx ends it calls stop, which must close results.
func drain[T any](ctx context.Context, rec *recorder, results <-chan T, stop func(), out func(Bucket), observe func(T)) {
	emit, wait := asyncOut(out)
	defer wait()
	out = emit
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := ctx.Done()
	for results != nil {
		select {
		case r, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			observe(r)
		case now := <-tick.C:
			rec.flush(out, now, false)
		case <-done:
			stop()
			done = nil
		}
	}
	rec.flush(out, time.Now(), true)
}

// asyncOut calls out from a goroutine of its own, in order. The results
// loop feeds workers their next requests' outcomes: when it stopped once a
// second to encode and send a bucket (or merge it, in the benchmark), the
// workers waiting to hand over results stalled and the stall showed in p99.
// wait returns once every bucket emitted has been delivered.
func asyncOut(out func(Bucket)) (emit func(Bucket), wait func()) {
	ch := make(chan Bucket, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range ch {
			out(b)
		}
	}()
	return func(b Bucket) { ch <- b }, func() { close(ch); <-done }
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
// used from one goroutine.
type recorder struct {
	start   time.Time // just before the first request could be due, so never later
	end     time.Time // start + duration
	perSec  func(from, to time.Duration) (target int64, users int)
	pending map[int64]*acc
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

func (r *recorder) acc(sec int64) *acc {
	a := r.pending[sec]
	if a == nil {
		a = &acc{hist: NewHistogram()}
		r.pending[sec] = a
	}
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
// when final), then
// emits every second that changed, oldest first, and forgets them.
func (r *recorder) flush(out func(Bucket), now time.Time, final bool) {
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

	secs := make([]int64, 0, len(r.pending))
	for s := range r.pending {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	for _, s := range secs {
		a := r.pending[s]
		out(Bucket{Second: s, Requests: a.requests, Errors: a.errors, ErrorsByKind: a.kinds,
			Target: a.target, Users: a.users, CPU: a.cpu, Latency: compact(a.hist.Export())})
		delete(r.pending, s)
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
