package linearizable

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	h "github.com/faultline/faultline/checkers/internal/histtest"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

const lin = dbclient.Linearizable

func str(s string) *string { return &s }

func cas(client, call, ret int, key string, expect *string, value string, ok bool, cur string) loadgen.Operation {
	out := dbwork.Output{OK: ok, Found: true, Value: value}
	if !ok {
		out = dbwork.Output{Found: cur != "", Value: cur}
	}
	return h.Op(client, dbwork.KindCAS, call, ret, dbwork.Input{Key: key, Value: value, Expect: expect}, out, "")
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		ops  []loadgen.Operation
		want Result
	}{
		{"empty", nil, Ok},
		{"sequential", []loadgen.Operation{
			h.Read(0, 0, 1, "x", lin, "", 0),
			h.Write(0, 2, 3, "x", "a", 5),
			h.Read(1, 4, 5, "x", lin, "a", 5),
			cas(1, 6, 7, "x", str("a"), "b", true, ""),
			h.Read(0, 8, 9, "x", lin, "b", 7),
		}, Ok},
		{"a read after one that saw a concurrent write must see it too", []loadgen.Operation{
			h.Write(0, 0, 10, "x", "a", 5),
			h.Read(1, 1, 2, "x", lin, "a", 5),
			h.Read(2, 3, 4, "x", lin, "", 0),
		}, Illegal},
		{"stale read after a completed write", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			h.Write(0, 2, 3, "x", "b", 6),
			h.Read(1, 4, 5, "x", lin, "a", 5),
		}, Illegal},
		{"stale read at the stale level is not judged", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			h.Write(0, 2, 3, "x", "b", 6),
			h.Read(1, 4, 5, "x", dbclient.Stale, "a", 5),
		}, Ok},
		{"keys are independent", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			h.Read(1, 2, 3, "y", lin, "", 0),
			h.Read(1, 4, 5, "x", lin, "a", 5),
		}, Ok},
		{"indefinite write may land late", []loadgen.Operation{
			h.IndefiniteWrite(0, 0, 1, "x", "a"),
			h.Read(1, 2, 3, "x", lin, "", 0),
			h.Read(1, 50, 51, "x", lin, "a", 5),
		}, Ok},
		{"indefinite write may never land", []loadgen.Operation{
			h.IndefiniteWrite(0, 0, 1, "x", "a"),
			h.Read(1, 50, 51, "x", lin, "", 0),
		}, Ok},
		{"a read cannot see a value never written", []loadgen.Operation{
			h.IndefiniteWrite(0, 0, 1, "x", "a"),
			h.Read(1, 50, 51, "x", lin, "z", 9),
		}, Illegal},
		{"definitely failed write never lands", []loadgen.Operation{
			h.Op(0, dbwork.KindWrite, 0, 1, dbwork.Input{Key: "x", Value: "a"}, dbwork.Output{}, "HTTP 400"),
			h.Read(1, 2, 3, "x", lin, "a", 5),
		}, Illegal},
		{"cas conflict reports the state", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			cas(1, 2, 3, "x", nil, "b", false, "a"),
			cas(1, 4, 5, "x", str("a"), "c", true, ""),
		}, Ok},
		{"cas that matched cannot conflict", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			cas(1, 2, 3, "x", str("a"), "b", false, "a"),
		}, Illegal},
		{"two cas from the same value cannot both win", []loadgen.Operation{
			h.Write(0, 0, 1, "x", "a", 5),
			cas(1, 2, 10, "x", str("a"), "b", true, ""),
			cas(2, 2, 10, "x", str("a"), "c", true, ""),
		}, Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := filepath.Join(t.TempDir(), "lin.html")
			sum, err := Check(tt.ops, Visualize(html))
			require.NoError(t, err)
			assert.Equal(t, tt.want, sum.Result)
			require.NotNil(t, sum.Linearizable)
			assert.Equal(t, tt.want == Ok, *sum.Linearizable)
			page, err := os.ReadFile(html)
			require.NoError(t, err)
			assert.Contains(t, string(page), "<html")
		})
	}
}

func TestCheckCounts(t *testing.T) {
	sum, err := Check([]loadgen.Operation{
		h.Write(0, 0, 1, "x", "a", 5),
		h.IndefiniteWrite(1, 0, 1, "y", "b"),
		h.IndefiniteWrite(3, 0, 1, "y", "seen"),
		h.Read(2, 2, 3, "x", dbclient.Leader, "a", 5),
		h.Op(2, dbwork.KindRead, 4, 5, dbwork.Input{Key: "x", Consistency: lin}, dbwork.Output{}, "HTTP 503"),
		h.Read(2, 6, 7, "x", lin, "a", 5),
		h.Read(2, 8, 9, "y", lin, "seen", 9),
	})
	require.NoError(t, err)
	assert.Equal(t, Summary{Result: Ok, Linearizable: ptr(true), Operations: 4, Indefinite: 2, Unobserved: 1, Skipped: 2, Keys: 2}, sum)
}

func TestCheckTimesOutToUnknown(t *testing.T) {
	// 20 concurrent writes, 20 concurrent reads seeing each of them, then
	// a read of a value nobody wrote: proving that illegal means trying
	// every order, while porcupine gets no time at all.
	var ops []loadgen.Operation
	for i := range 20 {
		v := string(rune('a' + i))
		ops = append(ops, h.Write(i, 0, 1000, "x", v, uint64(i+1)), h.Read(20+i, 0, 1000, "x", lin, v, uint64(i+1)))
	}
	ops = append(ops, h.Read(40, 2000, 2001, "x", lin, "zz", 99))
	sum, err := Check(ops, Timeout(1))
	require.NoError(t, err)
	assert.Equal(t, Unknown, sum.Result)
	assert.Nil(t, sum.Linearizable)
}
