package staleness

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

func staleRead(call int, key, value string, version uint64, headerMs int64) loadgen.Operation {
	out := dbwork.Output{Found: value != "", Value: value, Version: version, StalenessMs: headerMs}
	return histtest.Op(1, dbwork.KindRead, call, call+1, dbwork.Input{Key: key, Consistency: dbclient.Stale}, out, "")
}

func TestCheck(t *testing.T) {
	w := histtest.Write
	tests := []struct {
		name string
		ops  []loadgen.Operation
		want Summary
	}{
		{"no reads", []loadgen.Operation{w(0, 0, 1, "x", "a", 5)}, Summary{}},
		{"current value is age 0", []loadgen.Operation{
			w(0, 0, 10, "x", "a", 5), staleRead(20, "x", "a", 5, 3),
		}, Summary{Reads: 1, AgeMs: stats.Of([]float64{0}), HeaderMs: stats.Of([]float64{3})}},
		{"value superseded 30 ms before the read", []loadgen.Operation{
			w(0, 0, 10, "x", "a", 5), w(0, 20, 40, "x", "b", 6), w(0, 50, 60, "x", "c", 7),
			staleRead(70, "x", "a", 5, 12),
		}, Summary{Reads: 1, Behind: 1, AgeMs: stats.Of([]float64{30}), HeaderMs: stats.Of([]float64{12})}},
		{"a write still in flight does not count", []loadgen.Operation{
			w(0, 0, 10, "x", "a", 5), w(0, 20, 100, "x", "b", 6),
			staleRead(50, "x", "a", 5, 0),
		}, Summary{Reads: 1, AgeMs: stats.Of([]float64{0}), HeaderMs: stats.Of([]float64{0})}},
		{"missing key behind its first write", []loadgen.Operation{
			w(0, 0, 10, "x", "a", 5), staleRead(25, "x", "", 0, -1),
		}, Summary{Reads: 1, Behind: 1, AgeMs: stats.Of([]float64{15}), HeaderMs: stats.Quantiles{}}},
		{"linearizable reads and other keys are left out", []loadgen.Operation{
			w(0, 0, 10, "y", "a", 5), histtest.Read(1, 20, 21, "y", dbclient.Linearizable, "", 0),
			staleRead(30, "x", "", 0, 1),
		}, Summary{Reads: 1, AgeMs: stats.Of([]float64{0}), HeaderMs: stats.Of([]float64{1})}},
		{"failed cas and failed writes are not writes", []loadgen.Operation{
			w(0, 0, 10, "x", "a", 5),
			histtest.Op(0, dbwork.KindCAS, 20, 21, dbwork.Input{Key: "x", Value: "b"}, dbwork.Output{Found: true, Value: "a", Version: 5}, ""),
			histtest.Op(0, dbwork.KindWrite, 22, 23, dbwork.Input{Key: "x", Value: "c"}, dbwork.Output{Indefinite: true}, "timeout"),
			staleRead(30, "x", "a", 5, 0),
		}, Summary{Reads: 1, AgeMs: stats.Of([]float64{0}), HeaderMs: stats.Of([]float64{0})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Check(tt.ops)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
