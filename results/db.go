package results

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/faultline/faultline/checkers"
)

// The db section's check metrics. Every one fails on a run without a db
// section, so a check can never pass because the workload did not run.
func init() {
	dbMetric := func(get func(d *checkers.DB) (float64, error)) metricFunc {
		return func(s *Summary, _ string) (float64, error) {
			if s.DB == nil {
				return 0, errors.New("the run has no db section (no db history workload ran)")
			}
			return get(s.DB)
		}
	}
	metrics["lost_writes"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if d.Set == nil {
			return 0, errors.New("no db-set workload ran")
		}
		return float64(d.LostWrites), nil
	})
	// acknowledged_writes lets a scenario insist the set workload did
	// enough for 0 lost writes to mean something.
	metrics["acknowledged_writes"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if d.Set == nil {
			return 0, errors.New("no db-set workload ran")
		}
		return float64(d.Set.Acknowledged), nil
	})
	// linearizable is 1 or 0; unknown (porcupine timed out) is 0.
	metrics["linearizable"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if d.Register == nil {
			return 0, errors.New("no db-register workload ran")
		}
		if d.Linearizable != nil && *d.Linearizable {
			return 1, nil
		}
		return 0, nil
	})
	metrics["stale_read_p50_ms"] = dbMetric(func(d *checkers.DB) (float64, error) { return d.StaleReadMs.P50, nil })
	metrics["stale_read_p99_ms"] = dbMetric(func(d *checkers.DB) (float64, error) { return d.StaleReadMs.P99, nil })
	failover := func(get func(d *checkers.DB) float64) metricFunc {
		return dbMetric(func(d *checkers.DB) (float64, error) {
			if d.Failover == nil {
				return 0, errors.New("no db node was killed")
			}
			// A kill never recovered from is an infinitely long failover.
			if d.Failover.Unrecovered > 0 {
				return math.Inf(1), nil
			}
			return get(d), nil
		})
	}
	metrics["failover_p50_s"] = failover(func(d *checkers.DB) float64 { return d.FailoverS.P50 })
	metrics["failover_max_s"] = failover(func(d *checkers.DB) float64 { return d.FailoverS.Max })
	metrics["failover_kills"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if d.Failover == nil {
			return 0, nil
		}
		return float64(d.Failover.Kills), nil
	})
	// partition_linearizable_ok counts linearizable operations a cut-off
	// region completed: anything above 0 is split brain.
	metrics["partition_linearizable_ok"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if len(d.Partitions) == 0 {
			return 0, errors.New("no region was cut off")
		}
		n := 0
		for _, p := range d.Partitions {
			n += p.LinearizableOK
		}
		return float64(n), nil
	})
	// partition_stale_reads is the fewest stale reads a cut-off region
	// served while cut off: they should go on.
	metrics["partition_stale_reads"] = dbMetric(func(d *checkers.DB) (float64, error) {
		if len(d.Partitions) == 0 {
			return 0, errors.New("no region was cut off")
		}
		least := math.Inf(1)
		for _, p := range d.Partitions {
			least = math.Min(least, float64(p.StaleReads))
		}
		return least, nil
	})
	registerSection(30, "db", dbSections)
}

func dbSections(s *Summary) []Section {
	d := s.DB
	if d == nil {
		return nil
	}
	lin := "not checked"
	switch {
	case d.Register != nil && d.Linearizable == nil:
		lin = "unknown (the check timed out)"
	case d.Linearizable != nil && *d.Linearizable:
		lin = "yes"
	case d.Linearizable != nil:
		lin = "NO"
	}
	head := Section{Title: "Replicated db", Header: []string{"figure", "value", "detail"}}
	if len(d.Unsafe) > 0 {
		head.Note = "Unsafe switches on: " + strings.Join(d.Unsafe, ", ") + " — this run is meant to show the checkers catching the damage."
	}
	add := func(bad bool, cells ...string) { head.Rows = append(head.Rows, Row{Cells: cells, Bad: bad}) }
	if st := d.Set; st != nil {
		detail := fmt.Sprintf("%d acknowledged; indefinite %d landed, %d missing; %d failed but landed; %d unread", st.Acknowledged,
			st.IndefiniteLanded, st.IndefiniteMissing, st.FailedLanded, st.Unread)
		if len(st.Lost) > 0 {
			detail += "; lost: " + strings.Join(st.Lost, ", ")
		}
		add(st.LostWrites > 0, "lost writes", strconv.Itoa(st.LostWrites), detail)
	}
	if r := d.Register; r != nil {
		detail := fmt.Sprintf("%d operations on %d keys (%d indefinite, %d unobserved, %d skipped)", r.Operations, r.Keys, r.Indefinite, r.Unobserved, r.Skipped)
		if d.VisualizationFile != "" {
			detail += "; porcupine's view: " + d.VisualizationFile
		}
		add(d.Linearizable == nil || !*d.Linearizable, "linearizable", lin, detail)
	}
	if st := d.Staleness; st != nil {
		add(false, "stale reads: age ms p50 / p99 / max", num(st.AgeMs.P50)+" / "+num(st.AgeMs.P99)+" / "+num(st.AgeMs.Max),
			fmt.Sprintf("%d reads below the linearizable level, %d returned an overwritten value; the nodes' own staleness p50 %s ms, p99 %s ms",
				st.Reads, st.Behind, num(st.HeaderMs.P50), num(st.HeaderMs.P99)))
	}
	if f := d.Failover; f != nil {
		var secs []string
		for _, v := range f.Seconds {
			secs = append(secs, num(v))
		}
		add(f.Unrecovered > 0, "failover s: p50 / max", num(d.FailoverS.P50)+" / "+num(d.FailoverS.Max),
			fmt.Sprintf("%d leader kills, %d without a successful write before the next; per kill: %s", f.Kills, f.Unrecovered, strings.Join(secs, ", ")))
	}
	out := []Section{head}
	if len(d.Partitions) > 0 {
		ps := Section{Title: "db: regions cut off", Note: "Operations from the region's clients called after the cut and answered before the heal. A linearizable read or write that succeeded there is split brain.",
			Header: []string{"region", "#from s", "#to s", "#linearizable ok", "#linearizable refused", "#stale reads", "#stale refused", "#staleness p50 ms", "#staleness max ms"}}
		for _, p := range d.Partitions {
			ps.Rows = append(ps.Rows, Row{Bad: p.LinearizableOK > 0, Cells: []string{p.Region, num(p.FromS), num(p.ToS),
				strconv.Itoa(p.LinearizableOK), strconv.Itoa(p.LinearizableRefused), strconv.Itoa(p.StaleReads), strconv.Itoa(p.StaleRefused),
				num(p.StalenessMs.P50), num(p.StalenessMs.Max)}})
		}
		out = append(out, ps)
	}
	return out
}
