package results

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/loadgen"
)

// Latency histograms are in microseconds, 1 µs to 60 s, 3 significant digits,
// the same as the loadgen records, so merging is exact.
const (
	histMin    = 1
	histMax    = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// Recorder merges the loadgens' per-second deltas into per-region series. A
// loadgen may report the same second several times (requests finish late);
// the recorder adds them up.
type Recorder struct {
	mu      sync.Mutex
	start   time.Time
	regions map[string]*regionRecord
}

type regionRecord struct {
	seconds map[int64]*secondRecord
	total   *hdrhistogram.Histogram
	kinds   map[string]int64
}

type secondRecord struct {
	requests, errors, target int64
	users                    int
	cpu                      float64
	hist                     *hdrhistogram.Histogram
}

// NewRecorder starts a recorder whose series are relative to start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, regions: map[string]*regionRecord{}}
}

// AddBucket merges one loadgen bucket into a region's series: requests,
// errors and latency, and the generator's own figures (requests due, users
// active, CPU). Its histogram came off the network and is validated first.
func (r *Recorder) AddBucket(region string, b loadgen.Bucket) error {
	var h *hdrhistogram.Histogram
	if b.Latency != nil {
		if err := b.Latency.Validate(); err != nil {
			return fmt.Errorf("region %s, second %d: latency: %w", region, b.Second, err)
		}
		h = hdrhistogram.Import(b.Latency)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.add(region, b.Second, b.Requests, b.Errors, b.ErrorsByKind, h)
	s.target += b.Target
	s.users = max(s.users, b.Users) // users active, not a count of events
	s.cpu += b.CPU
	return nil
}

// Add merges one delta for a region's unix second. lat may be nil.
func (r *Recorder) Add(region string, unixSecond, requests, errors int64, errorsByKind map[string]int64, lat *hdrhistogram.Histogram) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(region, unixSecond, requests, errors, errorsByKind, lat)
}

// add merges a delta under the lock and returns its second's record.
func (r *Recorder) add(region string, unixSecond, requests, errors int64, errorsByKind map[string]int64, lat *hdrhistogram.Histogram) *secondRecord {
	rr := r.region(region)
	s := rr.second(unixSecond)
	s.requests += requests
	s.errors += errors
	for k, v := range errorsByKind {
		rr.kinds[k] += v
	}
	if lat != nil {
		s.hist.Merge(lat)
		rr.total.Merge(lat)
	}
	return s
}

// EnsureRegion makes a region appear in the output even if it recorded nothing,
// so that a silent region is visible rather than missing.
func (r *Recorder) EnsureRegion(region string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.region(region)
}

func (rr *regionRecord) second(unix int64) *secondRecord {
	s, ok := rr.seconds[unix]
	if !ok {
		s = &secondRecord{hist: newHist()}
		rr.seconds[unix] = s
	}
	return s
}

func (r *Recorder) region(name string) *regionRecord {
	rr, ok := r.regions[name]
	if !ok {
		rr = &regionRecord{seconds: map[int64]*secondRecord{}, total: newHist(), kinds: map[string]int64{}}
		r.regions[name] = rr
	}
	return rr
}

// Regions builds the per-region figures. Every second from 0 to the last one
// recorded appears in the series, so gaps (a region that stopped answering)
// show as zeros instead of vanishing.
func (r *Recorder) Regions() map[string]Region {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.start.Unix()
	out := make(map[string]Region, len(r.regions))
	for name, rr := range r.regions {
		var reg Region
		reg.Series = []Second{}
		keys := make([]int64, 0, len(rr.seconds))
		for k := range rr.seconds {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		if len(keys) > 0 {
			first, last := max(keys[0], base), keys[len(keys)-1]
			for sec := first; sec <= last; sec++ {
				pt := Second{T: int(sec - base)}
				if s, ok := rr.seconds[sec]; ok {
					pt.RPS = float64(s.requests)
					pt.Errors = s.errors
					pt.P50 = ms(s.hist.ValueAtQuantile(50))
					pt.P99 = ms(s.hist.ValueAtQuantile(99))
					pt.Max = ms(s.hist.Max())
					pt.Target, pt.Users, pt.LoadgenCPU = s.target, s.users, s.cpu
				}
				reg.Series = append(reg.Series, pt)
			}
		}
		for _, s := range rr.seconds {
			reg.Requests += s.requests
			reg.Errors += s.errors
		}
		if reg.Requests > 0 {
			reg.ErrorRate = float64(reg.Errors) / float64(reg.Requests)
		}
		reg.LatencyMS = Percentiles{
			P50: ms(rr.total.ValueAtQuantile(50)),
			P90: ms(rr.total.ValueAtQuantile(90)),
			P99: ms(rr.total.ValueAtQuantile(99)),
			Max: ms(rr.total.Max()),
		}
		if len(rr.kinds) > 0 {
			reg.ErrorsByKind = map[string]int64{}
			for k, v := range rr.kinds {
				reg.ErrorsByKind[k] = v
			}
		}
		out[name] = reg
	}
	return out
}

// Overall merges every region into one latency distribution, for checks
// without a region.
func (r *Recorder) Overall() Percentiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := newHist()
	for _, rr := range r.regions {
		h.Merge(rr.total)
	}
	return Percentiles{P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max())}
}

func ms(us int64) float64 { return float64(us) / 1000 }
