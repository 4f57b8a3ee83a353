package partition

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/loadgen"
	dbwork "github.com/faultline/faultline/workloads/db"
)

func op(kind string, in dbwork.Input, out dbwork.Output, errMsg string, call, ret time.Time) loadgen.Operation {
	i, _ := json.Marshal(in)
	o, _ := json.Marshal(out)
	return loadgen.Operation{Kind: kind, Input: i, Output: o, Error: errMsg, Call: call, Return: ret}
}

func TestCheck(t *testing.T) {
	start := time.Unix(1000, 0)
	from, to := start.Add(10*time.Second), start.Add(20*time.Second)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	lin := dbwork.Input{Key: "k", Consistency: "linearizable"}
	stale := dbwork.Input{Key: "k", Consistency: "stale"}
	ops := []loadgen.Operation{
		op(dbwork.KindWrite, dbwork.Input{Key: "k", Value: "a"}, dbwork.Output{OK: true}, "", at(5), at(5.1)), // before: ignored
		op(dbwork.KindWrite, dbwork.Input{Key: "k", Value: "b"}, dbwork.Output{}, "timeout", at(9.9), at(11)), // called before the cut
		op(dbwork.KindWrite, dbwork.Input{Key: "k", Value: "c"}, dbwork.Output{}, "503", at(11), at(12)),
		op(dbwork.KindRead, lin, dbwork.Output{}, "503", at(12), at(13)),
		op(dbwork.KindRead, lin, dbwork.Output{Found: true}, "", at(13), at(13.1)), // split brain
		op(dbwork.KindRead, stale, dbwork.Output{Found: true, StalenessMs: 3000}, "", at(14), at(14.01)),
		op(dbwork.KindRead, stale, dbwork.Output{Found: true, StalenessMs: 5000}, "", at(16), at(16.01)),
		op(dbwork.KindRead, stale, dbwork.Output{Found: true, StalenessMs: 9000}, "", at(19.99), at(20.5)), // answered after the heal
	}
	s := Check("ap-south", ops, start, from, to)
	assert.Equal(t, "ap-south", s.Region)
	assert.Equal(t, 10.0, s.FromS)
	assert.Equal(t, 20.0, s.ToS)
	assert.Equal(t, 1, s.LinearizableOK)
	assert.Equal(t, 2, s.LinearizableRefused)
	assert.Equal(t, 2, s.StaleReads)
	assert.Equal(t, 0, s.StaleRefused)
	assert.Equal(t, 5000.0, s.StalenessMs.Max)
}
