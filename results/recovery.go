package results

import (
	"math"
	"sort"
	"strings"
)

// RecoveryBound is the per-second error rate under which a region counts as
// recovered.
const RecoveryBound = 0.01

// A region's p99 counts as recovered once it is back within the more lenient
// of P99Factor × baseline and baseline + P99SlackMS: the factor alone is too
// strict for sub-millisecond baselines, the slack alone too strict for slow
// inter-region paths.
const (
	P99Factor  = 2.0
	P99SlackMS = 50.0
)

// P99Limit is the p99 under which a region with the given baseline counts as
// recovered.
func P99Limit(baselineMS float64) float64 {
	return math.Max(P99Factor*baselineMS, baselineMS+P99SlackMS)
}

// ComputeRecovery derives, for every fault, how long users took to notice it
// (first second with a failed request at or after injection) and to stop
// noticing it: the first second after that in which every region has traffic,
// an error rate under bound and a p99 within P99Limit of its baseline
// (BaselineP99), and that stays so for the next second too, so one lucky
// second does not count. Times are seconds since injection, at one-second
// resolution. A fault no request noticed (or that never ran) gets DetectS = -1
// and RecoverS = 0; one that never recovered within the run gets RecoverS = -1.
func ComputeRecovery(faults []Fault, regions map[string]Region, bound float64) []Recovery {
	out := make([]Recovery, 0, len(faults))
	baseline := BaselineP99(faults, regions)
	// The seconds any region recorded, in order. The recorder fills gaps, so
	// these are consecutive in a real run.
	seen := map[int]bool{}
	byT := make(map[string]map[int]Second, len(regions))
	for name, r := range regions {
		m := make(map[int]Second, len(r.Series))
		for _, pt := range r.Series {
			m[pt.T] = pt
			seen[pt.T] = true
		}
		byT[name] = m
	}
	seconds := make([]int, 0, len(seen))
	for t := range seen {
		seconds = append(seconds, t)
	}
	sort.Ints(seconds)
	failed := func(t int) bool {
		for _, m := range byT {
			if m[t].Errors > 0 {
				return true
			}
		}
		return false
	}
	healthy := func(t int) bool {
		for name, m := range byT {
			pt, ok := m[t]
			if !ok {
				continue // this region's series ended: nothing to judge by
			}
			base, hasBase := baseline[name]
			if pt.RPS == 0 && hasBase {
				return false // silence from a region that had traffic is not health
			}
			if float64(pt.Errors) > bound*pt.RPS {
				return false
			}
			if hasBase && pt.P99 > P99Limit(base) {
				return false
			}
		}
		return true
	}
	for _, f := range faults {
		rec := Recovery{Fault: faultLabel(f), Kind: f.Kind, DetectS: -1}
		if !ran(f) {
			out = append(out, rec)
			continue
		}
		from := sort.SearchInts(seconds, int(math.Floor(f.InjectedAt)))
		detected := -1
		for i := from; i < len(seconds); i++ {
			if failed(seconds[i]) {
				detected = i
				break
			}
		}
		if detected >= 0 {
			rec.DetectS = math.Max(0, float64(seconds[detected])-f.InjectedAt)
			rec.RecoverS = -1
			for i := detected; i < len(seconds); i++ {
				if healthy(seconds[i]) && (i == len(seconds)-1 || healthy(seconds[i+1])) {
					rec.RecoverS = float64(seconds[i]) - f.InjectedAt
					break
				}
			}
			end := rec.RecoverS
			if end < 0 {
				end = float64(seconds[len(seconds)-1]+1) - f.InjectedAt
			}
			rec.UnavailableS = math.Max(0, end-rec.DetectS)
			// Injection times carry float noise (15.02 → 3.9800000000000004 s).
			rec.DetectS, rec.RecoverS, rec.UnavailableS = milli(rec.DetectS), milli(rec.RecoverS), milli(rec.UnavailableS)
		}
		out = append(out, rec)
	}
	return out
}

// ran tells an injected fault from one scheduled but never started (the run
// ended first), which carries zero times.
func ran(f Fault) bool { return f.InjectedAt > 0 || f.HealedAt > 0 }

// BaselineP99 is, per region, the median per-second p99 over the seconds that
// ended before the first fault was injected. Regions without such a second
// (or runs without faults) have no baseline.
func BaselineP99(faults []Fault, regions map[string]Region) map[string]float64 {
	first := math.Inf(1)
	for _, f := range faults {
		if ran(f) {
			first = math.Min(first, f.InjectedAt)
		}
	}
	if math.IsInf(first, 1) {
		return nil
	}
	out := map[string]float64{}
	for name, r := range regions {
		var p99s []float64
		for _, pt := range r.Series {
			if float64(pt.T+1) <= first && pt.RPS > 0 {
				p99s = append(p99s, pt.P99)
			}
		}
		if len(p99s) > 0 {
			out[name] = median(p99s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// SummarizeRecovery groups recoveries by fault kind, in order of first
// appearance, with the median and the worst of each figure.
func SummarizeRecovery(recs []Recovery) []RecoveryStat {
	var order []string
	groups := map[string][]Recovery{}
	for _, r := range recs {
		kind := r.Kind
		if kind == "" { // summaries written before recoveries carried their kind
			kind, _, _ = strings.Cut(r.Fault, " ")
		}
		if _, ok := groups[kind]; !ok {
			order = append(order, kind)
		}
		groups[kind] = append(groups[kind], r)
	}
	out := make([]RecoveryStat, 0, len(order))
	for _, kind := range order {
		st := RecoveryStat{Kind: kind, Count: len(groups[kind])}
		var detect, recover, unavail []float64
		for _, r := range groups[kind] {
			switch {
			case r.DetectS < 0:
				st.Unnoticed++
				continue
			case r.RecoverS < 0:
				st.NeverRecovered++
			default:
				recover = append(recover, r.RecoverS)
			}
			detect = append(detect, r.DetectS)
			unavail = append(unavail, r.UnavailableS)
		}
		st.DetectP50S, st.DetectMaxS = median(detect), maxOf(detect)
		st.RecoverP50S, st.RecoverMaxS = median(recover), maxOf(recover)
		st.UnavailP50S, st.UnavailMaxS = median(unavail), maxOf(unavail)
		out = append(out, st)
	}
	return out
}

// median of vs (mean of the middle two for an even count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func milli(v float64) float64 { return math.Round(v*1000) / 1000 }

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

func faultLabel(f Fault) string {
	label := f.Kind
	for i, t := range f.Targets {
		if i == 0 {
			label += " "
		} else {
			label += ","
		}
		label += t
	}
	return label
}
