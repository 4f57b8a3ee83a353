package results

import (
	"fmt"
	"math"
)

// FailoverWindowS is two of the lb's default health intervals (500 ms):
// the acceptance says a killed backend is out of rotation by then.
const FailoverWindowS = 1.0

func init() {
	// kill_tail_error_rate is a region's error rate during its kill faults,
	// counted from the first whole second at least FailoverWindowS after
	// each kill to the heal (or the run's end): what users saw once the lb
	// should have taken the dead node out. Errors inside the window are the
	// price of detection and are not counted.
	metrics["kill_tail_error_rate"] = func(s *Summary, region string) (float64, error) {
		var reqs, errs float64
		kills := 0
		for _, f := range s.Faults {
			if f.Kind != "kill" || f.InjectedAt <= 0 {
				continue
			}
			kills++
			from := int(math.Ceil(f.InjectedAt + FailoverWindowS))
			to := math.Inf(1)
			if f.HealedAt > 0 {
				to = f.HealedAt
			}
			for name, r := range s.Regions {
				if region != "" && name != region {
					continue
				}
				for _, sec := range r.Series {
					if sec.T >= from && float64(sec.T)+1 <= to {
						reqs += sec.RPS
						errs += float64(sec.Errors)
					}
				}
			}
		}
		switch {
		case kills == 0:
			return math.NaN(), fmt.Errorf("the run killed nothing")
		case reqs == 0:
			return math.NaN(), fmt.Errorf("no requests after the kills")
		}
		return errs / reqs, nil
	}
}
