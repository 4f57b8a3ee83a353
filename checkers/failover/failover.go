// Package failover measures, for each leader kill, how long writes stopped
// succeeding.
package failover

import (
	"slices"
	"time"

	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// Summary is what the run's summary.json records.
type Summary struct {
	Kills int `json:"kills"`
	// Unrecovered kills saw no successful write before the next kill or
	// the end of the history.
	Unrecovered int `json:"unrecovered"`
	// Seconds per recovered kill, in kill order; P50 and Max are the
	// figures the issue asks for.
	Seconds []float64       `json:"seconds"`
	S       stats.Quantiles `json:"s"`
}

// Check returns, for each kill time, the time to the first successful write
// called at or after the kill. Writes called before it are left out: one the
// old leader committed just before dying may still return after the kill and
// would make the failover look instant.
func Check(ops []loadgen.Operation, kills []time.Time) Summary {
	type span struct{ call, ret time.Time }
	var ok []span
	for _, op := range ops {
		if op.Error != "" || (op.Kind != dbwork.KindWrite && op.Kind != dbwork.KindCAS && op.Kind != dbwork.KindAdd) {
			continue
		}
		// A failed comparison went through the log too, but it wrote nothing.
		if _, out, err := dbwork.Decode(op); op.Kind == dbwork.KindCAS && (err != nil || !out.OK) {
			continue
		}
		ok = append(ok, span{op.Call, op.Return})
	}
	kills = slices.Clone(kills)
	slices.SortFunc(kills, func(a, b time.Time) int { return a.Compare(b) })
	s := Summary{Kills: len(kills), Seconds: []float64{}}
	for i, k := range kills {
		var first time.Time
		for _, w := range ok {
			if !w.call.Before(k) && (first.IsZero() || w.ret.Before(first)) {
				first = w.ret
			}
		}
		if first.IsZero() || (i+1 < len(kills) && first.After(kills[i+1])) {
			s.Unrecovered++
			continue
		}
		s.Seconds = append(s.Seconds, first.Sub(k).Seconds())
	}
	s.S = stats.Of(s.Seconds)
	return s
}
