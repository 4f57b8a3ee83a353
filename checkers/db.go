// Package checkers gathers the db checkers' figures into the `db` section
// of a run's summary.json; each checker lives in its own sub-package.
package checkers

import (
	"github.com/faultline/faultline/checkers/failover"
	"github.com/faultline/faultline/checkers/linearizable"
	"github.com/faultline/faultline/checkers/lostwrites"
	"github.com/faultline/faultline/checkers/partition"
	"github.com/faultline/faultline/checkers/staleness"
)

// P50P99 and P50Max are the headline figures the scenario checks compare.
type P50P99 struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

type P50Max struct {
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// DB is summary.json's `db` section: the headline figures first, then each
// checker's full summary. A checker that did not run is nil.
type DB struct {
	LostWrites   int    `json:"lost_writes"`
	Linearizable *bool  `json:"linearizable"` // null: unknown (timed out or not checked)
	StaleReadMs  P50P99 `json:"stale_read_ms"`
	FailoverS    P50Max `json:"failover_s"`

	Set       *lostwrites.Summary   `json:"set,omitempty"`
	Register  *linearizable.Summary `json:"register,omitempty"`
	Staleness *staleness.Summary    `json:"staleness,omitempty"`
	Failover  *failover.Summary     `json:"failover,omitempty"`
	// Partitions judge each region that was cut off from the others.
	Partitions []partition.Summary `json:"partitions,omitempty"`
	// Unsafe lists the unsafe switches the run turned on.
	Unsafe []string `json:"unsafe,omitempty"`
	// VisualizationFile is porcupine's HTML view of the register history,
	// relative to the run folder.
	VisualizationFile string `json:"visualization_file,omitempty"`
}

// NewDB builds the section from whichever summaries exist.
func NewDB(set *lostwrites.Summary, reg *linearizable.Summary, st *staleness.Summary, fo *failover.Summary) DB {
	d := DB{Set: set, Register: reg, Staleness: st, Failover: fo}
	if set != nil {
		d.LostWrites = set.LostWrites
	}
	if reg != nil {
		d.Linearizable = reg.Linearizable
	}
	if st != nil {
		d.StaleReadMs = P50P99{P50: st.AgeMs.P50, P99: st.AgeMs.P99}
	}
	if fo != nil {
		d.FailoverS = P50Max{P50: fo.S.P50, Max: fo.S.Max}
	}
	return d
}
