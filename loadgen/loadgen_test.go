package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// collect runs Attack and returns its buckets summed up.
func collect(t *testing.T, ctx context.Context, spec AttackSpec) (Totals, []Bucket, Final, error) {
	t.Helper()
	var tot Totals
	var buckets []Bucket
	final, err := Attack(ctx, spec, func(b Bucket) {
		buckets = append(buckets, b)
		require.NoError(t, tot.Add(b))
	})
	return tot, buckets, final, err
}

func TestSpecValidate(t *testing.T) {
	ok := AttackSpec{Target: "http://127.0.0.1:1", Workload: "api", Rate: 10, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*AttackSpec)
		want   string
	}{
		{"valid", func(*AttackSpec) {}, ""},
		{"fractional rate", func(s *AttackSpec) { s.Rate, s.Duration = 0.5, 2*time.Second }, ""},
		{"wrong scheme", func(s *AttackSpec) { s.Target = "ftp://127.0.0.1:1" }, "scheme"},
		{"no host", func(s *AttackSpec) { s.Target = "http://" }, "no host"},
		{"bad url", func(s *AttackSpec) { s.Target = "http://[::1" }, "target"},
		{"unknown workload", func(s *AttackSpec) { s.Workload = "nope" }, "workload"},
		{"zero rate", func(s *AttackSpec) { s.Rate = 0 }, "rate"},
		{"NaN rate", func(s *AttackSpec) { s.Rate = nan() }, "rate"},
		{"zero duration", func(s *AttackSpec) { s.Duration = 0 }, "duration"},
		{"no request", func(s *AttackSpec) { s.Rate, s.Duration = 0.1, time.Second }, "no request"},
		{"huge duration", func(s *AttackSpec) { s.Duration = MaxDuration + 1 }, "duration"},
		{"negative timeout", func(s *AttackSpec) { s.Timeout = -1 }, "timeout"},
		{"ramp", func(s *AttackSpec) { s.Rate, s.Ramp = 0, &Ramp{From: 0, To: 100} }, ""},
		{"ramp down", func(s *AttackSpec) { s.Rate, s.Ramp = 0, &Ramp{From: 100, To: 0} }, ""},
		{"ramp of nothing", func(s *AttackSpec) { s.Rate, s.Ramp = 0, &Ramp{} }, "no request"},
		{"ramp negative", func(s *AttackSpec) { s.Rate, s.Ramp = 0, &Ramp{From: -1, To: 5} }, "ramp"},
		{"step", func(s *AttackSpec) { s.Rate, s.Step = 0, &Step{From: 10, By: 10, Max: 50, Every: time.Second} }, ""},
		{"step too often", func(s *AttackSpec) { s.Rate, s.Step = 0, &Step{From: 10, By: 1, Max: 50, Every: time.Millisecond} }, "every"},
		{"step max below from", func(s *AttackSpec) { s.Rate, s.Step = 0, &Step{From: 10, By: 1, Max: 5, Every: time.Second} }, "max"},
		{"users", func(s *AttackSpec) { s.Rate, s.Users = 0, &Users{N: 5, Think: time.Second} }, ""},
		{"no users", func(s *AttackSpec) { s.Rate, s.Users = 0, &Users{} }, "users 0"},
		{"negative think", func(s *AttackSpec) { s.Rate, s.Users = 0, &Users{N: 1, Think: -1} }, "think"},
		{"two models", func(s *AttackSpec) { s.Users = &Users{N: 5} }, "exactly one"},
		{"no model", func(s *AttackSpec) { s.Rate = 0 }, "exactly one"},
		{"session needs users", func(s *AttackSpec) { s.Workload = "session" }, "users (closed) model"},
		{"session with users", func(s *AttackSpec) { s.Workload, s.Rate, s.Users = "session", 0, &Users{N: 1} }, ""},
		{"resolvers", func(s *AttackSpec) { s.Resolvers = []string{"127.0.0.1:53", "[::1]:53"} }, ""},
		{"resolver without port", func(s *AttackSpec) { s.Resolvers = []string{"127.0.0.1"} }, "resolver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mutate(&s)
			err := s.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestWorkloads(t *testing.T) {
	assert.Equal(t, []string{"api", "browse", "items", "session", "static"}, Workloads())

	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		assert.Equal(t, "faultline-loadgen", r.UserAgent())
		if r.Method == http.MethodPost {
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			body, _ := io.ReadAll(r.Body)
			assert.True(t, json.Valid(body), "%s", body)
		}
	}))
	defer srv.Close()
	tests := []struct {
		workload string
		want     map[string]int
	}{
		{"api", map[string]int{"GET /api/hello": 15, "POST /api/echo": 5}},
		{"browse", map[string]int{"GET /": 10, "GET /static/app.css": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			paths = nil
			_, _, final, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: tt.workload, Rate: 40, Duration: 500 * time.Millisecond})
			require.NoError(t, err)
			require.EqualValues(t, 20, final.Requests)
			got := map[string]int{}
			for _, p := range paths {
				got[p]++
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConstantRate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	// Low enough that a 2-core machine under -race keeps up; the stall test
	// below is the one at 1000 req/s.
	const rate, dur = 100, 3 * time.Second
	want := int64(rate * dur.Seconds())
	tot, buckets, final, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: rate, Duration: dur})
	require.NoError(t, err)
	assert.InDelta(t, want, final.Requests, float64(want)/100, "requested count ±1%")
	assert.Equal(t, final.Requests, tot.Requests, "buckets add up to the final count")
	assert.Equal(t, final.Requests, hits.Load(), "server saw every request")
	assert.Zero(t, tot.Errors)
	assert.Equal(t, tot.Requests, tot.Latency.TotalCount())
	assert.Positive(t, final.CPUSeconds)
	assert.Equal(t, want, final.Target)
	assert.Equal(t, want, tot.Target, "per-second targets add up to the schedule")
	assert.Positive(t, tot.CPU, "CPU per second is reported")
	assert.LessOrEqual(t, tot.CPU, final.CPUSeconds+0.01)
	assert.GreaterOrEqual(t, final.WallSeconds, dur.Seconds())
	// 3 s of intended send times span 3 or 4 unix seconds. (A late flush
	// may carry only CPU time for a later second: it holds no requests.)
	seconds := map[int64]bool{}
	for _, b := range buckets {
		if b.Requests > 0 {
			seconds[b.Second] = true
		}
	}
	assert.Contains(t, []int{3, 4}, len(seconds))
}

// The project's acceptance test for coordinated omission: a server that
// stalls for 1 s in the middle of a 3 s attack must show it in the p99, even
// though the requests sent during the stall are a third of the attack and
// each of them is answered.
func TestStallShowsInP99(t *testing.T) {
	start := time.Now().Add(300 * time.Millisecond)
	stallFrom, stallTo := start.Add(time.Second), start.Add(2*time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if now := time.Now(); now.After(stallFrom) && now.Before(stallTo) {
			select {
			case <-time.After(time.Until(stallTo)):
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()

	tot, _, final, err := collect(t, context.Background(), AttackSpec{
		Target: srv.URL, Workload: "api", Rate: 1000, Duration: 3 * time.Second, StartAt: start, Timeout: 10 * time.Second,
	})
	require.NoError(t, err)
	require.Positive(t, final.Requests)
	p99 := time.Duration(tot.Latency.ValueAtQuantile(99)) * time.Microsecond
	t.Logf("requests %d, errors %v, p50 %v, p99 %v, max %v, cpu %.2fs", final.Requests, tot.ErrorsByKind,
		time.Duration(tot.Latency.ValueAtQuantile(50))*time.Microsecond, p99,
		time.Duration(tot.Latency.Max())*time.Microsecond, final.CPUSeconds)
	assert.GreaterOrEqual(t, p99, 900*time.Millisecond)
}

func TestErrorKinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
		}
	}))
	t.Cleanup(reset.Close)

	// Only the timeout case has a short timeout: on a loaded machine even a
	// refused connect can take longer than 200 ms and would count as one.
	tests := []struct {
		name, target, kind string
		timeout            time.Duration
	}{
		{"refused", closed, KindRefused, 4 * time.Second},
		{"5xx", status(http.StatusServiceUnavailable), Kind5xx, 4 * time.Second},
		{"4xx", status(http.StatusNotFound), Kind4xx, 4 * time.Second},
		{"timeout", slow.URL, KindTimeout, 200 * time.Millisecond},
		{"reset", reset.URL, KindReset, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tot, _, final, err := collect(t, context.Background(), AttackSpec{
				Target: tt.target, Workload: "api", Rate: 20, Duration: 500 * time.Millisecond, Timeout: tt.timeout,
			})
			require.NoError(t, err)
			require.EqualValues(t, 10, final.Requests)
			assert.Equal(t, final.Requests, tot.Errors)
			assert.Equal(t, map[string]int64{tt.kind: tot.Errors}, tot.ErrorsByKind)
		})
	}
}

func TestAttackCancel(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var buckets int
	final, err := Attack(ctx, AttackSpec{Target: srv.URL, Workload: "api", Rate: 100, Duration: time.Minute}, func(b Bucket) {
		buckets++
		cancel() // stop after the first flush
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, final.Error, "stopped early")
	assert.Less(t, final.Requests, int64(6000), "stopped long before the end")
	assert.Equal(t, final.Requests, hits.Load())

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = Attack(ctx, AttackSpec{Target: srv.URL, Workload: "api", Rate: 1, Duration: time.Second, StartAt: time.Now().Add(time.Hour)}, func(Bucket) {})
	require.ErrorIs(t, err, context.Canceled, "cancel while waiting for StartAt")
}

func TestStartAt(t *testing.T) {
	var first atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.CompareAndSwap(0, time.Now().UnixNano())
	}))
	defer srv.Close()
	at := time.Now().Add(500 * time.Millisecond)
	tot, buckets, _, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: 50, Duration: 200 * time.Millisecond, StartAt: at})
	require.NoError(t, err)
	assert.EqualValues(t, 10, tot.Requests)
	assert.GreaterOrEqual(t, first.Load(), at.UnixNano(), "no request before StartAt")
	require.NotEmpty(t, buckets)
	assert.GreaterOrEqual(t, buckets[0].Second, at.Unix())
}

// fixedCPU makes a recorder's CPU figures predictable.
func fixedCPU(r *recorder, seconds ...float64) {
	r.cpu = func() float64 {
		v := seconds[0]
		if len(seconds) > 1 {
			seconds = seconds[1:]
		}
		return v
	}
	r.lastCPU, r.cpu0 = 0, 0
}

func TestRecorderDeltas(t *testing.T) {
	t0 := time.Unix(100, 0)
	rec := newRecorder(t0, 2*time.Second, func(from, to time.Duration) (int64, int) {
		return int64((to - from) / (10 * time.Millisecond)), 0 // 100/s
	})
	fixedCPU(rec, 0.3, 0.3, 0.5)
	rec.record(t0, t0.Add(2*time.Millisecond), "")
	rec.record(t0.Add(1500*time.Millisecond), t0.Add(1600*time.Millisecond), KindReset)
	var got []Bucket
	rec.flush(func(b Bucket) { got = append(got, b) }, t0.Add(time.Second), false)
	require.Len(t, got, 2)
	assert.Equal(t, []int64{100, 101}, []int64{got[0].Second, got[1].Second}, "oldest first")
	assert.EqualValues(t, 1, got[0].Requests)
	assert.Zero(t, got[0].Errors)
	assert.EqualValues(t, 100, got[0].Target)
	assert.EqualValues(t, 100, got[1].Target, "second 101 has begun")
	assert.InDelta(t, 0.3, got[0].CPU, 1e-9, "CPU of the first half-second's midpoint")
	assert.Equal(t, map[string]int64{KindReset: 1}, got[1].ErrorsByKind)

	// A late result for second 100 arrives as a delta holding only itself;
	// no CPU was used since.
	rec.record(t0.Add(10*time.Millisecond), t0.Add(70*time.Second), KindTimeout)
	got = nil
	rec.flush(func(b Bucket) { got = append(got, b) }, t0.Add(1500*time.Millisecond), false)
	require.Len(t, got, 1)
	assert.EqualValues(t, 100, got[0].Second)
	assert.EqualValues(t, 1, got[0].Requests)
	assert.Zero(t, got[0].Target, "target sent once")

	var tot Totals
	require.NoError(t, tot.Add(got[0]))
	assert.InEpsilon(t, maxLatencyMicros, tot.Latency.Max(), 0.001, "latency past the range is clamped to 60 s")
	assert.EqualValues(t, 3, rec.total)

	// The final flush sends the targets of the seconds to the end, and the
	// CPU used meanwhile at the midpoint.
	got = nil
	rec.flush(func(b Bucket) { got = append(got, b) }, t0.Add(2200*time.Millisecond), true)
	require.Len(t, got, 2)
	assert.EqualValues(t, 101, got[0].Second)
	assert.InDelta(t, 0.2, got[0].CPU, 1e-9)
	assert.EqualValues(t, 102, got[1].Second)
	assert.EqualValues(t, 100, got[1].Target)
	assert.EqualValues(t, 300, rec.target)

	rec.flush(func(b Bucket) { t.Fatalf("nothing changed, yet flushed %+v", b) }, t0.Add(3*time.Second), true)
}

// A request that went out 1 s late (the loadgen itself was stuck) and was
// answered in 1 ms must count as a 1 s latency: coordinated omission would
// report 1 ms. The same holds on a ramp, where due times are not evenly
// spaced.
func TestObserveMeasuresFromIntendedSend(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		name  string
		sched schedule
	}{
		{"constant 100/s", constSchedule{interval: 10 * time.Millisecond, d: 10 * time.Second}},
		{"ramp 0→200/s over 1s", rampSchedule{from: 0, to: 200, d: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(start, time.Second, nil)
			fixedCPU(rec, 0)
			due0, due99 := tt.sched.due(0), tt.sched.due(99)
			rec.observe(tt.sched, &vegeta.Result{Seq: 99, Code: 200, Timestamp: start.Add(due99 + time.Second), Latency: time.Millisecond})
			rec.observe(tt.sched, &vegeta.Result{Seq: 0, Code: 200, Timestamp: start.Add(due0), Latency: time.Millisecond})
			var tot Totals
			rec.flush(func(b Bucket) { require.NoError(t, tot.Add(b)) }, start.Add(3*time.Second), true)
			assert.InEpsilon(t, 1001000, tot.Latency.Max(), 0.001)
			assert.InEpsilon(t, 1000, tot.Latency.Min(), 0.001)
		})
	}
}

// integrate is the area under s's rate curve from 0 to t: the number of
// requests due by t, computed independently of due.
func integrate(s schedule, t time.Duration) float64 {
	const steps = 20000
	dt := t / steps
	sum := 0.0
	for i := range steps {
		sum += s.rate(dt*time.Duration(i)+dt/2) * dt.Seconds()
	}
	return sum
}

func TestSchedules(t *testing.T) {
	tests := []struct {
		name  string
		spec  AttackSpec
		total uint64
		due0  time.Duration
	}{
		{"constant 1000/s", AttackSpec{Rate: 1000, Duration: 3 * time.Second}, 3000, time.Millisecond},
		{"constant 3/s", AttackSpec{Rate: 3, Duration: time.Second}, 3, 333333333},
		{"constant 0.5/s", AttackSpec{Rate: 0.5, Duration: 10 * time.Second}, 5, 2 * time.Second},
		{"constant 0.25/s", AttackSpec{Rate: 0.25, Duration: 4 * time.Second}, 1, 4 * time.Second},
		{"constant 2.5/s", AttackSpec{Rate: 2.5, Duration: 2 * time.Second}, 5, 400 * time.Millisecond},
		{"ramp 100→300/s", AttackSpec{Ramp: &Ramp{From: 100, To: 300}, Duration: 2 * time.Second}, 400, 9950493},
		{"ramp 0→100/s", AttackSpec{Ramp: &Ramp{From: 0, To: 100}, Duration: 2 * time.Second}, 100, 200 * time.Millisecond},
		{"ramp 100→0/s", AttackSpec{Ramp: &Ramp{From: 100, To: 0}, Duration: 2 * time.Second}, 100, 10025125},
		{"flat ramp", AttackSpec{Ramp: &Ramp{From: 50, To: 50}, Duration: 2 * time.Second}, 100, 20 * time.Millisecond},
		{"step 10+10/s every 1s to 30", AttackSpec{Step: &Step{From: 10, By: 10, Max: 30, Every: time.Second}, Duration: 5 * time.Second}, 10 + 20 + 30 + 30 + 30, 100 * time.Millisecond},
		{"step with a partial last step", AttackSpec{Step: &Step{From: 10, By: 10, Max: 100, Every: time.Second}, Duration: 2500 * time.Millisecond}, 10 + 20 + 15, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.spec.schedule()
			require.NoError(t, err)
			require.Equal(t, tt.total, s.total())
			assert.InDelta(t, tt.due0, s.due(0), 2, "first request")
			d := tt.spec.Duration
			assert.LessOrEqual(t, s.due(s.total()-1), d+time.Microsecond, "last request within the duration")
			// due inverts the rate curve: by due(n), n+1 requests are due.
			for _, n := range []uint64{0, s.total() / 3, s.total() / 2, s.total() - 1} {
				assert.InDelta(t, float64(n+1), integrate(s, s.due(n)), 0.02, "request %d due at %v", n, s.due(n))
				if n > 0 {
					assert.Greater(t, s.due(n), s.due(n-1))
				}
			}
			assert.Equal(t, s.total(), countBefore(s, d+time.Microsecond))
			assert.Zero(t, countBefore(s, 0))

			p := newPacer(s, d)
			wait, stop := p.Pace(0, 0)
			assert.False(t, stop)
			assert.Equal(t, s.due(0), wait, "first hit when due, as observe assumes")
			if s.total() > 1 {
				wait, _ = p.Pace(s.due(0), 1)
				assert.Equal(t, s.due(1)-s.due(0), wait, "then at the next due time")
			}
			assert.InEpsilon(t, s.rate(d/2), p.Rate(d/2), 1e-9)
			_, stop = p.Pace(0, s.total())
			assert.True(t, stop, "stops after its count")
			wait, stop = p.Pace(d, 0)
			assert.False(t, stop, "late: keeps sending what it owes")
			assert.LessOrEqual(t, wait, time.Duration(0), "at once")
			_, stop = p.Pace(d+d/10+time.Second+1, 0)
			assert.True(t, stop, "but not past the deadline")
		})
	}
}

func TestTotalsRejectsBadSnapshot(t *testing.T) {
	s := NewHistogram().Export()
	s.Counts = []int64{-1}
	var tot Totals
	require.Error(t, tot.Add(Bucket{Second: 1, Requests: 1, Latency: s}))
}
