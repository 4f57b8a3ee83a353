package failover

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	h "github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	dbwork "github.com/faultline/faultline/workloads/db"
)

func TestCheck(t *testing.T) {
	failed := h.Op(0, dbwork.KindWrite, 1100, 1200, dbwork.Input{Key: "x", Value: "f"}, dbwork.Output{}, "HTTP 503")
	conflict := h.Op(0, dbwork.KindCAS, 1100, 1150, dbwork.Input{Key: "x", Value: "c"}, dbwork.Output{Found: true, Value: "a"}, "")
	tests := []struct {
		name  string
		ops   []loadgen.Operation
		kills []time.Time
		want  Summary
	}{
		{"no kills", []loadgen.Operation{h.Write(0, 0, 1, "x", "a", 1)}, nil, Summary{Seconds: []float64{}}},
		{"one kill, writes resume 1.5 s later", []loadgen.Operation{
			h.Write(0, 900, 1200, "x", "a", 1), // called before the kill: not a sign of recovery
			failed, conflict,
			h.Write(1, 1300, 2500, "x", "b", 2),
			h.Write(2, 1400, 2600, "x", "c", 3),
		}, []time.Time{h.At(1000)}, Summary{Kills: 1, Seconds: []float64{1.5}, S: stats.Of([]float64{1.5})}},
		{"two kills, in any order", []loadgen.Operation{
			h.Add(0, 1000, 1500, "k1", "ok"),
			h.Add(0, 5000, 8000, "k2", "ok"),
		}, []time.Time{h.At(5000), h.At(1000)}, Summary{Kills: 2, Seconds: []float64{0.5, 3}, S: stats.Of([]float64{0.5, 3})}},
		{"no write between two kills", []loadgen.Operation{
			h.Add(0, 6000, 6500, "k1", "ok"),
		}, []time.Time{h.At(1000), h.At(5000), h.At(9000)}, Summary{Kills: 3, Unrecovered: 2, Seconds: []float64{1.5}, S: stats.Of([]float64{1.5})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Check(tt.ops, tt.kills))
		})
	}
}
