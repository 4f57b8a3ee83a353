package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Operation is one client operation as a checker sees it: when it was
// called and when it returned (for linearizability), who called it, what it
// asked and what it got.
type Operation struct {
	Client int             `json:"client"`
	Kind   string          `json:"kind"` // e.g. "read", "write", "publish"
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	// Error is set when the operation failed or its outcome is unknown (a
	// timeout: the write may or may not have happened).
	Error  string    `json:"error,omitempty"`
	Call   time.Time `json:"call"`
	Return time.Time `json:"return"`
}

// History records the operations of a workload for its checkers. Record is
// called from many clients at once.
type History interface {
	Record(op Operation)
}

// MemHistory is a History kept in memory, written out as JSONL.
type MemHistory struct {
	mu  sync.Mutex
	ops []Operation
}

// Record appends op.
func (h *MemHistory) Record(op Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Operations returns a copy of the operations in the order recorded.
func (h *MemHistory) Operations() []Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Operation(nil), h.ops...)
}

// WriteJSONL writes one operation per line, in the order recorded.
func (h *MemHistory) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i, op := range h.Operations() {
		if err := enc.Encode(op); err != nil {
			return fmt.Errorf("history: operation %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// ReadJSONL reads a history written by WriteJSONL, rejecting unknown fields
// and operations that return before they are called.
func ReadJSONL(r io.Reader) ([]Operation, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var ops []Operation
	for {
		var op Operation
		err := dec.Decode(&op)
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, fmt.Errorf("history: operation %d: %w", len(ops), err)
		}
		if op.Return.Before(op.Call) {
			return nil, fmt.Errorf("history: operation %d: returns at %v before its call at %v", len(ops), op.Return, op.Call)
		}
		ops = append(ops, op)
	}
}
