// Package partition judges what a region cut off from the others did while
// it was cut off: a correct replicated db refuses it every linearizable
// read and write (a majority is elsewhere, so any success there is split
// brain), while its stale reads go on and grow old.
package partition

import (
	"time"

	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// Summary is what the run's summary.json records for one cut-off region.
type Summary struct {
	Region string  `json:"region"`
	FromS  float64 `json:"from_s"` // seconds since the run's start
	ToS    float64 `json:"to_s"`
	// LinearizableOK counts writes, CAS and linearizable reads from the
	// region's clients, called after the cut and answered before the heal,
	// that succeeded: each one is split brain. CAS comparisons that failed
	// count too, since they were decided by the log.
	LinearizableOK      int `json:"linearizable_ok"`
	LinearizableRefused int `json:"linearizable_refused"`
	// StaleReads are the successful stale reads in the window, with the
	// serving node's own staleness (time since it last heard a leader).
	StaleReads   int             `json:"stale_reads"`
	StaleRefused int             `json:"stale_refused"`
	StalenessMs  stats.Quantiles `json:"staleness_ms"`
}

// Check looks at the operations of one region's clients inside [from, to].
// start is the run's start, for the window's times in the summary.
func Check(region string, ops []loadgen.Operation, start, from, to time.Time) Summary {
	s := Summary{Region: region, FromS: from.Sub(start).Seconds(), ToS: to.Sub(start).Seconds()}
	var staleness []float64
	for _, op := range ops {
		if op.Call.Before(from) || op.Return.After(to) {
			continue
		}
		in, out, err := dbwork.Decode(op)
		if err != nil {
			continue
		}
		stale := op.Kind == dbwork.KindRead && in.Consistency != dbclient.Linearizable
		switch {
		case op.Kind == dbwork.KindFinal:
		case stale && op.Error == "":
			s.StaleReads++
			if out.StalenessMs >= 0 {
				staleness = append(staleness, float64(out.StalenessMs))
			}
		case stale:
			s.StaleRefused++
		case op.Error == "":
			s.LinearizableOK++
		default:
			s.LinearizableRefused++
		}
	}
	s.StalenessMs = stats.Of(staleness)
	return s
}
