// Package lostwrites checks a set workload's history: every acknowledged
// write must be present in the final read.
package lostwrites

import (
	"fmt"
	"sort"

	"github.com/faultline/faultline/loadgen"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// maxListed bounds the keys a Summary names, so a disaster stays readable.
const maxListed = 20

// Summary is what the run's summary.json records.
type Summary struct {
	// LostWrites are acknowledged writes the final read did not find; any
	// other value than 0 is a bug in the db.
	LostWrites   int `json:"lost_writes"`
	Acknowledged int `json:"acknowledged"`
	// Indefinite writes (no answer, or the db said the outcome is unknown)
	// may land or not; both are correct.
	IndefiniteLanded  int `json:"indefinite_landed"`
	IndefiniteMissing int `json:"indefinite_missing"`
	// FailedLanded are writes the db said definitely failed that were found
	// anyway: a bug too, though not a lost write.
	FailedLanded int `json:"failed_landed"`
	// Unread writes had no successful final read, so nothing is known.
	Unread int `json:"unread"`
	// Lost names up to 20 lost keys.
	Lost []string `json:"lost,omitempty"`
}

type outcome int

const (
	acked outcome = iota
	indefinite
	failed
)

// Check compares the set workload's adds with its final reads.
func Check(ops []loadgen.Operation) (Summary, error) {
	adds := map[string]outcome{}
	found := map[string]bool{} // key → present, for keys with a successful final read
	for i, op := range ops {
		if op.Kind != dbwork.KindAdd && op.Kind != dbwork.KindFinal {
			continue
		}
		in, out, err := dbwork.Decode(op)
		if err != nil {
			return Summary{}, fmt.Errorf("lost writes: operation %d: %w", i, err)
		}
		switch {
		case op.Kind == dbwork.KindFinal:
			if op.Error == "" {
				found[in.Key] = found[in.Key] || (out.Found && out.Value == in.Key)
			}
		case op.Error == "":
			adds[in.Key] = acked
		case out.Indefinite:
			adds[in.Key] = indefinite
		default:
			adds[in.Key] = failed
		}
	}
	var s Summary
	for key, o := range adds {
		present, read := found[key]
		if o == acked {
			s.Acknowledged++
		}
		switch {
		case !read:
			s.Unread++
		case o == acked && !present:
			s.LostWrites++
			s.Lost = append(s.Lost, key)
		case o == indefinite && present:
			s.IndefiniteLanded++
		case o == indefinite:
			s.IndefiniteMissing++
		case o == failed && present:
			s.FailedLanded++
		}
	}
	sort.Strings(s.Lost)
	if len(s.Lost) > maxListed {
		s.Lost = s.Lost[:maxListed]
	}
	return s, nil
}
