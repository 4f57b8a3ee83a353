package lostwrites

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	h "github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/loadgen"
	dbwork "github.com/faultline/faultline/workloads/db"
)

func TestCheck(t *testing.T) {
	failedFinal := h.Op(0, dbwork.KindFinal, 90, 91, dbwork.Input{Key: "k9"}, dbwork.Output{}, "HTTP 503")
	tests := []struct {
		name string
		ops  []loadgen.Operation
		want Summary
	}{
		{"nothing", nil, Summary{}},
		{"all acknowledged writes found", []loadgen.Operation{
			h.Add(0, 0, 1, "k1", "ok"), h.Add(1, 0, 1, "k2", "ok"),
			h.Final(0, 10, 11, "k1", true), h.Final(0, 12, 13, "k2", true),
		}, Summary{Acknowledged: 2}},
		{"a lost write", []loadgen.Operation{
			h.Add(0, 0, 1, "k1", "ok"), h.Add(1, 0, 1, "k2", "ok"),
			h.Final(0, 10, 11, "k1", true), h.Final(0, 12, 13, "k2", false),
		}, Summary{LostWrites: 1, Acknowledged: 2, Lost: []string{"k2"}}},
		{"indefinite writes may land or not", []loadgen.Operation{
			h.Add(0, 0, 1, "k1", "indefinite"), h.Add(1, 0, 1, "k2", "indefinite"), h.Add(2, 0, 1, "k3", "indefinite"),
			h.Final(0, 10, 11, "k1", true), h.Final(0, 12, 13, "k2", false), h.Final(0, 14, 15, "k3", true),
		}, Summary{IndefiniteLanded: 2, IndefiniteMissing: 1}},
		{"a definitely failed write that landed", []loadgen.Operation{
			h.Add(0, 0, 1, "k1", "failed"), h.Add(0, 2, 3, "k2", "failed"),
			h.Final(0, 10, 11, "k1", true), h.Final(0, 12, 13, "k2", false),
		}, Summary{FailedLanded: 1}},
		{"an unread write is neither lost nor kept", []loadgen.Operation{
			h.Add(0, 0, 1, "k9", "ok"), failedFinal,
		}, Summary{Acknowledged: 1, Unread: 1}},
		{"a retried final read counts once it succeeds", []loadgen.Operation{
			h.Add(0, 0, 1, "k9", "ok"), failedFinal, h.Final(0, 95, 96, "k9", true),
		}, Summary{Acknowledged: 1}},
		{"other kinds are ignored", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 3), h.Add(0, 2, 3, "k1", "ok"), h.Final(0, 10, 11, "k1", true),
		}, Summary{Acknowledged: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Check(tt.ops)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCheckListsAtMost20(t *testing.T) {
	var ops []loadgen.Operation
	for i := range 30 {
		key := string(rune('a'+i%26)) + string(rune('0'+i/26))
		ops = append(ops, h.Add(0, 2*i, 2*i+1, key, "ok"), h.Final(0, 100+i, 101+i, key, false))
	}
	got, err := Check(ops)
	require.NoError(t, err)
	assert.Equal(t, 30, got.LostWrites)
	assert.Len(t, got.Lost, 20)
}

func TestCheckRejectsGarbage(t *testing.T) {
	op := h.Add(0, 0, 1, "k", "ok")
	op.Input = []byte(`{"key":`)
	_, err := Check([]loadgen.Operation{op})
	require.Error(t, err)
}
