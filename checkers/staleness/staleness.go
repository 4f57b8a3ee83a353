// Package staleness measures how old the values returned by reads below
// the linearizable level were.
package staleness

import (
	"fmt"
	"time"

	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// Summary is what the run's summary.json records.
type Summary struct {
	Reads int `json:"reads"`
	// Behind counts reads that returned a value already overwritten by an
	// acknowledged write.
	Behind int `json:"behind"`
	// AgeMs: how long before the read's call the returned value had been
	// superseded by an acknowledged write (0 when it was current).
	AgeMs stats.Quantiles `json:"age_ms"`
	// HeaderMs: the serving node's own claim, its time since it last heard
	// from a leader (reads where it had never heard of one are left out).
	HeaderMs stats.Quantiles `json:"header_ms"`
}

type write struct {
	version uint64
	ret     time.Time
}

// Check computes the age of every successful read below the linearizable
// level. Versions are raft indexes, so a write newer than the value read is
// one with a higher version; it counts once it was acknowledged before the
// read was called (earlier than that, the read may rightly miss it).
func Check(ops []loadgen.Operation) (Summary, error) {
	writes := map[string][]write{}
	type read struct {
		key     string
		version uint64
		call    time.Time
		header  int64
	}
	var reads []read
	for i, op := range ops {
		isWrite := op.Kind == dbwork.KindWrite || op.Kind == dbwork.KindCAS || op.Kind == dbwork.KindAdd
		if op.Error != "" || (!isWrite && op.Kind != dbwork.KindRead) {
			continue
		}
		in, out, err := dbwork.Decode(op)
		if err != nil {
			return Summary{}, fmt.Errorf("staleness: operation %d: %w", i, err)
		}
		switch {
		case isWrite && (op.Kind != dbwork.KindCAS || out.OK):
			writes[in.Key] = append(writes[in.Key], write{version: out.Version, ret: op.Return})
		case op.Kind == dbwork.KindRead && in.Consistency != dbclient.Linearizable:
			v := out.Version
			if !out.Found {
				v = 0
			}
			reads = append(reads, read{key: in.Key, version: v, call: op.Call, header: out.StalenessMs})
		}
	}
	var s Summary
	var ages, headers []float64
	for _, r := range reads {
		var superseded time.Time
		for _, w := range writes[r.key] {
			if w.version > r.version && !w.ret.After(r.call) && (superseded.IsZero() || w.ret.Before(superseded)) {
				superseded = w.ret
			}
		}
		age := 0.0
		if !superseded.IsZero() {
			s.Behind++
			age = float64(r.call.Sub(superseded)) / float64(time.Millisecond)
		}
		ages = append(ages, age)
		if r.header >= 0 {
			headers = append(headers, float64(r.header))
		}
	}
	s.Reads = len(reads)
	s.AgeMs, s.HeaderMs = stats.Of(ages), stats.Of(headers)
	return s, nil
}
