package db

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// A raft log command is an 8-byte request id followed by the JSON batch. The
// fixed prefix lets the unsafe-ack log store match entries to waiting
// requests without decoding JSON on every append.
const reqIDLen = 8

type command struct {
	reqID uint64
	ops   []dbclient.Op
}

func encodeCommand(c command) ([]byte, error) {
	body, err := json.Marshal(dbclient.BatchRequest{Ops: c.ops})
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	out := make([]byte, reqIDLen, reqIDLen+len(body))
	binary.BigEndian.PutUint64(out, c.reqID)
	return append(out, body...), nil
}

func decodeCommand(data []byte) (command, error) {
	if len(data) < reqIDLen {
		return command{}, errors.New("decode command: too short")
	}
	var b dbclient.BatchRequest
	if err := json.Unmarshal(data[reqIDLen:], &b); err != nil {
		return command{}, fmt.Errorf("decode command: %w", err)
	}
	if err := validateOps(b.Ops); err != nil {
		return command{}, fmt.Errorf("decode command: %w", err)
	}
	return command{reqID: binary.BigEndian.Uint64(data), ops: b.Ops}, nil
}

func commandReqID(data []byte) (uint64, bool) {
	if len(data) < reqIDLen {
		return 0, false
	}
	return binary.BigEndian.Uint64(data), true
}

// validateOps rejects what the state machine could not apply, before it is
// put into the log where it would stay forever.
func validateOps(ops []dbclient.Op) error {
	if len(ops) == 0 {
		return errors.New("no ops")
	}
	for i, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("op %d: empty key", i)
		}
		switch op.Op {
		case dbclient.OpPut, dbclient.OpDelete:
			if op.ExpectedVersion != nil || op.ExpectedValue != nil {
				return fmt.Errorf("op %d: %s takes no expectation", i, op.Op)
			}
		case dbclient.OpCAS:
			if op.ExpectedVersion == nil && op.ExpectedValue == nil {
				return fmt.Errorf("op %d: cas needs expected_version or expected_value", i)
			}
		default:
			return fmt.Errorf("op %d: unknown op %q", i, op.Op)
		}
	}
	return nil
}

// conditional reports whether the outcome of ops depends on the state they
// are applied to; only unconditional commands may be acknowledged early.
func conditional(ops []dbclient.Op) bool {
	for _, op := range ops {
		if op.Op == dbclient.OpCAS {
			return true
		}
	}
	return false
}
