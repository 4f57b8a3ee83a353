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

// Attack sends spec.Rate requests per second for spec.Duration and calls out,
// from the calling goroutine, with the buckets that changed about once a
// second and once more at the end. When ctx ends the attack stops sending,
// waits for requests in flight (at most spec.Timeout) and returns ctx's error
// with the results gathered so far.
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

	pacer := newPacer(spec.Rate, spec.Duration)
	client, transport := newHTTPClient(spec.timeout())
	defer transport.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.MaxWorkers(maxWorkers(spec)),
		vegeta.MaxBody(0), // bodies are read and discarded, never kept
	)

	cpu0 := cpuSeconds()
	rec := recorder{pending: map[int64]*acc{}, start: time.Now(), interval: pacer.interval}
	results := atk.Attack(workloads[spec.Workload](base), pacer, 0, "faultline")
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
			rec.observe(r)
		case <-tick.C:
			rec.flush(out)
		case <-done:
			atk.Stop()
			done = nil
		}
	}
	rec.flush(out)

	final := Final{Requests: rec.total, CPUSeconds: cpuSeconds() - cpu0, WallSeconds: time.Since(rec.start).Seconds()}
	if err := ctx.Err(); err != nil {
		final.Error = fmt.Sprintf("attack stopped early: %v", err)
		return final, fmt.Errorf("attack %s: %w", spec.Target, err)
	}
	return final, nil
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

// pacer is vegeta's ConstantPacer that stops after Rate×Duration hits. A
// loadgen starved of CPU for a moment still sends the requests it owes, late,
// and their latency (from the intended send time) says so; one that cannot
// keep up at all stops at the deadline, so the run's phases stay aligned,
// and the requests it never sent show as Final.Requests below Rate×Duration.
type pacer struct {
	vegeta.ConstantPacer
	hits     uint64
	deadline time.Duration
	interval time.Duration // between hits, exactly as ConstantPacer computes it
}

// newPacer expresses rate as vegeta's integer Freq per Per.
func newPacer(rate float64, d time.Duration) pacer {
	p := vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}
	if float64(p.Freq) != rate {
		p = vegeta.ConstantPacer{Freq: 1, Per: time.Duration(float64(time.Second) / rate)}
	}
	return pacer{
		ConstantPacer: p,
		hits:          uint64(math.Round(rate * d.Seconds())), // Validate: at least 1
		deadline:      d + d/10 + time.Second,
		interval:      time.Duration(p.Per.Nanoseconds() / int64(p.Freq)),
	}
}

func (p pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.hits || elapsed > p.deadline {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// maxWorkers allows one worker per request that can be in flight at once, so
// a stalled server does not hold back the pacer.
func maxWorkers(spec AttackSpec) uint64 {
	n := spec.Rate*spec.timeout().Seconds() + 100
	return uint64(math.Min(n, maxWorkersCap))
}

func newHTTPClient(timeout time.Duration) (*http.Client, *http.Transport) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // load goes straight to the target, never via an env proxy
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: maxWorkersCap,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: tr}, tr
}

// acc accumulates one second's results until the next flush.
type acc struct {
	requests, errors int64
	kinds            map[string]int64
	hist             *hdrhistogram.Histogram
}

// recorder buckets results by intended second and hands out deltas.
type recorder struct {
	start    time.Time // just before vegeta's own start, so never later
	interval time.Duration
	pending  map[int64]*acc
	total    int64
}

// observe records r against its intended send time. Vegeta numbers requests
// in the order workers pick up the pacer's ticks, and the pacer schedules
// tick k at (k+1)·interval, so that is when request Seq should have been
// sent had nothing stalled, however late it actually went out.
func (r *recorder) observe(res *vegeta.Result) {
	intended := r.start.Add(time.Duration(res.Seq+1) * r.interval)
	r.record(intended, res.Timestamp.Add(res.Latency), Classify(res.Code, res.Error))
}

func (r *recorder) record(intended, end time.Time, kind string) {
	sec := intended.Unix()
	a := r.pending[sec]
	if a == nil {
		a = &acc{hist: NewHistogram()}
		r.pending[sec] = a
	}
	r.total++
	a.requests++
	if kind != "" {
		a.errors++
		if a.kinds == nil {
			a.kinds = map[string]int64{}
		}
		a.kinds[kind]++
	}
	us := min(max(end.Sub(intended).Microseconds(), 0), maxLatencyMicros)
	_ = a.hist.RecordValue(us) // in range by construction
}

// flush emits every second that changed since the last flush, oldest first,
// and forgets them.
func (r *recorder) flush(out func(Bucket)) {
	secs := make([]int64, 0, len(r.pending))
	for s := range r.pending {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	for _, s := range secs {
		a := r.pending[s]
		out(Bucket{Second: s, Requests: a.requests, Errors: a.errors, ErrorsByKind: a.kinds, Latency: compact(a.hist.Export())})
		delete(r.pending, s)
	}
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
