package results

import "math"

// RecoveryBound is the per-second error rate under which a region counts as
// recovered.
const RecoveryBound = 0.01

// ComputeRecovery derives, for every fault, how long users took to notice it
// (first second with a failed request at or after injection) and to stop noticing it
// (first second after that whose error rate is back under bound in every
// region, and stays there for the next second too, so one lucky second does
// not count). Times are seconds since injection, at one-second resolution.
// A fault no request noticed gets DetectS = -1 and RecoverS = 0; one that never
// recovered within the run gets RecoverS = -1.
func ComputeRecovery(faults []Fault, regions map[string]Region, bound float64) []Recovery {
	out := make([]Recovery, 0, len(faults))
	last := 0
	for _, r := range regions {
		if n := len(r.Series); n > 0 {
			last = max(last, r.Series[n-1].T)
		}
	}
	// above reports whether any region's error rate in second t exceeds limit.
	above := func(t int, limit float64) bool {
		for _, r := range regions {
			for _, pt := range r.Series {
				if pt.T == t && pt.Errors > 0 && float64(pt.Errors) > limit*pt.RPS {
					return true
				}
			}
		}
		return false
	}
	bad := func(t int) bool { return above(t, bound) }
	for _, f := range faults {
		rec := Recovery{Fault: faultLabel(f), DetectS: -1}
		start := int(math.Floor(f.InjectedAt))
		detected := -1
		for t := start; t <= last; t++ {
			if above(t, 0) {
				detected = t
				break
			}
		}
		if detected >= 0 {
			rec.DetectS = math.Max(0, float64(detected)-f.InjectedAt)
			rec.RecoverS = -1
			for t := detected; t <= last; t++ {
				if !bad(t) && (t == last || !bad(t+1)) {
					rec.RecoverS = float64(t) - f.InjectedAt
					break
				}
			}
		}
		out = append(out, rec)
	}
	return out
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
