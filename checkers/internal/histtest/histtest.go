// Package histtest builds hand-written db histories for the checkers' tests.
package histtest

import (
	"encoding/json"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
	dbwork "github.com/faultline/faultline/workloads/db"
)

// T0 is the origin of hand-built histories; At(ms) is ms after it.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func At(ms int) time.Time { return T0.Add(time.Duration(ms) * time.Millisecond) }

// Op is one operation from client, called at call ms and returning at ret ms.
func Op(client int, kind string, call, ret int, in dbwork.Input, out dbwork.Output, errMsg string) loadgen.Operation {
	i, _ := json.Marshal(in)
	o, _ := json.Marshal(out)
	return loadgen.Operation{Client: client, Kind: kind, Input: i, Output: o, Error: errMsg, Call: At(call), Return: At(ret)}
}

// Read is a successful read at level; value "" means absent.
func Read(client, call, ret int, key string, level dbclient.Consistency, value string, version uint64) loadgen.Operation {
	out := dbwork.Output{Found: value != "", Value: value, Version: version}
	return Op(client, dbwork.KindRead, call, ret, dbwork.Input{Key: key, Consistency: level}, out, "")
}

// Write is an acknowledged put.
func Write(client, call, ret int, key, value string, version uint64) loadgen.Operation {
	return Op(client, dbwork.KindWrite, call, ret, dbwork.Input{Key: key, Value: value}, dbwork.Output{OK: true, Found: true, Value: value, Version: version}, "")
}

// IndefiniteWrite is a put whose outcome is unknown.
func IndefiniteWrite(client, call, ret int, key, value string) loadgen.Operation {
	return Op(client, dbwork.KindWrite, call, ret, dbwork.Input{Key: key, Value: value}, dbwork.Output{Indefinite: true}, "timeout")
}

// Add is a set workload write with the given outcome: "ok", "indefinite"
// or "failed".
func Add(client, call, ret int, key, outcome string) loadgen.Operation {
	out, msg := dbwork.Output{OK: true}, ""
	switch outcome {
	case "indefinite":
		out, msg = dbwork.Output{Indefinite: true}, "timeout"
	case "failed":
		out, msg = dbwork.Output{}, "HTTP 400"
	}
	return Op(client, dbwork.KindAdd, call, ret, dbwork.Input{Key: key, Value: key}, out, msg)
}

// Final is a successful final read of a set key.
func Final(client, call, ret int, key string, found bool) loadgen.Operation {
	out := dbwork.Output{Found: found}
	if found {
		out.Value = key
	}
	return Op(client, dbwork.KindFinal, call, ret, dbwork.Input{Key: key, Consistency: dbclient.Linearizable}, out, "")
}
