package loadgen

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// outcome is one closed-model request as a user saw it.
type outcome struct {
	intended, end time.Time
	kind          string
	think         time.Duration // the think time drawn before it; <0 for a user's first request
	sent          bool          // false: no request, only the user's last think time, cut off by the end
}

// attackClosed runs spec.Users users for spec.Duration. Each user starts at
// a random point of its cycle (a first think drawn like the others), so the
// run is in steady state from its first second rather than with every user
// firing at once. A user sends no request due after the duration.
func attackClosed(ctx context.Context, spec AttackSpec, base *url.URL, client *http.Client, out func(Bucket)) Final {
	u := *spec.Users
	start := time.Now()
	end := start.Add(spec.Duration)
	rec := newRecorder(start, spec.Duration, func(from, _ time.Duration) (int64, int) {
		if from < spec.Duration {
			return 0, u.N
		}
		return 0, 0
	})

	usersCtx, stopUsers := context.WithCancel(ctx)
	defer stopUsers()
	results := make(chan outcome, u.N)
	var wg sync.WaitGroup
	for id := range u.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(u.Seed), uint64(id)))
			runUser(usersCtx, client, workloads[spec.Workload].user(base, id, rng), u, rng, end, results)
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var thinkSum time.Duration
	var thinks int64
	drain(ctx, rec, results, stopUsers, out, func(o outcome) {
		if o.sent {
			rec.record(o.intended, o.end, o.kind)
		}
		if o.think >= 0 {
			thinkSum += o.think
			thinks++
		}
	})
	f := rec.final()
	f.Users = u.N
	f.Throughput = float64(f.Requests) / spec.Duration.Seconds()
	if f.Requests > 0 {
		f.MeanResponse = (rec.latencySum / time.Duration(f.Requests)).Seconds()
	}
	if thinks > 0 {
		f.MeanThink = (thinkSum / time.Duration(thinks)).Seconds()
	}
	return f
}

// runUser is one user's loop. The intended send time of each request is
// when its think time was due to end, so a loadgen too slow to wake its
// users on time shows in the latencies instead of hiding in fewer requests.
func runUser(ctx context.Context, client *http.Client, s script, u Users, rng *rand.Rand, end time.Time, results chan<- outcome) {
	draw := func() time.Duration {
		if u.Exponential {
			return time.Duration(rng.ExpFloat64() * float64(u.Think))
		}
		return u.Think
	}
	// The first wait is a random phase: for exponential think times the
	// memoryless draw itself, else uniform over one think time.
	first := draw()
	if !u.Exponential {
		first = time.Duration(rng.Float64() * float64(u.Think))
	}
	intended, think := time.Now().Add(first), time.Duration(-1)
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		if !intended.Before(end) {
			// The think time the end cut off still counts towards the mean
			// think time: leaving out the draws that straddle the end would
			// leave out the long ones and bias the mean low.
			if think >= 0 {
				select {
				case results <- outcome{think: think}:
				case <-ctx.Done():
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		o := do(ctx, client, s)
		o.intended, o.think, o.sent = intended, think, true
		select {
		case results <- o:
		case <-ctx.Done():
			return
		}
		think = draw()
		intended = o.end.Add(think)
		timer.Reset(time.Until(intended))
	}
}

// do sends the script's next request and classifies what came back.
func do(ctx context.Context, client *http.Client, s script) outcome {
	req, err := s.next()
	if err != nil {
		return outcome{end: time.Now(), kind: KindOther}
	}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		_ = s.check(nil, nil)
		return outcome{end: time.Now(), kind: Classify(0, err.Error())}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	o := outcome{end: time.Now()}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection can be reused
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	o.kind = Classify(uint16(resp.StatusCode), errText)
	if cerr := s.check(resp, body); cerr != nil && o.kind == "" {
		o.kind = KindCheck
	}
	return o
}
