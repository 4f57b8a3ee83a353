package checkers

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/checkers/failover"
	"github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/checkers/linearizable"
	"github.com/faultline/faultline/checkers/lostwrites"
	"github.com/faultline/faultline/checkers/staleness"
	"github.com/faultline/faultline/checkers/stats"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

func TestNewDBJSON(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		db   DB
		want string
	}{
		{"nothing ran: linearizable is null", NewDB(nil, nil, nil, nil),
			`{"lost_writes":0,"linearizable":null,"stale_read_ms":{"p50":0,"p99":0},"failover_s":{"p50":0,"max":0}}`},
		{"headline figures", NewDB(
			&lostwrites.Summary{LostWrites: 2},
			&linearizable.Summary{Linearizable: &yes},
			&staleness.Summary{AgeMs: stats.Quantiles{P50: 1, P99: 9}},
			&failover.Summary{S: stats.Quantiles{P50: 1.5, Max: 3}},
		), `"lost_writes":2,"linearizable":true,"stale_read_ms":{"p50":1,"p99":9},"failover_s":{"p50":1.5,"max":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.db)
			require.NoError(t, err)
			assert.Contains(t, string(got), tt.want)
		})
	}
}

// FuzzCheckers feeds arbitrary saved histories to every checker: they may
// reject them, never panic.
func FuzzCheckers(f *testing.F) {
	h := &loadgen.MemHistory{}
	for _, op := range []loadgen.Operation{
		histtest.Write(0, 0, 1, "x", "a", 1),
		histtest.IndefiniteWrite(1, 0, 2, "x", "b"),
		histtest.Read(2, 3, 4, "x", dbclient.Stale, "a", 1),
		histtest.Add(0, 5, 6, "k", "ok"),
		histtest.Final(0, 7, 8, "k", true),
	} {
		h.Record(op)
	}
	var seed bytes.Buffer
	require.NoError(f, h.WriteJSONL(&seed))
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := loadgen.ReadJSONL(bytes.NewReader(data))
		if err != nil {
			return
		}
		_, _ = linearizable.Check(ops, linearizable.Timeout(time.Second))
		_, _ = lostwrites.Check(ops)
		_, _ = staleness.Check(ops)
		failover.Check(ops, []time.Time{histtest.T0})
	})
}
