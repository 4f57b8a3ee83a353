package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemHistoryRoundTrip(t *testing.T) {
	var h MemHistory
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				op := Operation{Client: c, Kind: "write", Input: json.RawMessage(fmt.Sprintf(`{"k":%d}`, i)),
					Call: t0.Add(time.Duration(i) * time.Millisecond), Return: t0.Add(time.Duration(i+1) * time.Millisecond)}
				if i%10 == 0 {
					op.Error = "timeout"
				} else {
					op.Output = json.RawMessage(`"ok"`)
				}
				h.Record(op)
			}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	require.NoError(t, h.WriteJSONL(&buf))
	assert.Equal(t, 400, strings.Count(buf.String(), "\n"), "one line per operation")
	got, err := ReadJSONL(&buf)
	require.NoError(t, err)
	assert.Equal(t, h.Operations(), got)
}

func TestReadJSONLRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown field", `{"client":1,"kind":"read","bogus":1}`, "unknown field"},
		{"returns before call", `{"client":1,"kind":"read","call":"2026-01-01T00:00:01Z","return":"2026-01-01T00:00:00Z"}`, "before its call"},
		{"garbage", `{"client":`, "unexpected EOF"},
	}
	for _, tt := range tests {
		_, err := ReadJSONL(strings.NewReader(tt.in))
		require.ErrorContains(t, err, tt.want, tt.name)
	}
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"client":1,"kind":"read","input":{"k":1},"output":2,"call":"2026-01-01T00:00:00Z","return":"2026-01-01T00:00:01Z"}` + "\n"))
	f.Add([]byte(`{"client":2,"kind":"write","error":"timeout","call":"2026-01-01T00:00:00Z","return":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := ReadJSONL(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What was read writes back and reads again the same.
		var h MemHistory
		for _, op := range ops {
			h.Record(op)
		}
		var buf bytes.Buffer
		if err := h.WriteJSONL(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ReadJSONL(&buf)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(again) != len(ops) {
			t.Fatalf("re-read %d ops, want %d", len(again), len(ops))
		}
		for i := range ops {
			if !ops[i].Call.Equal(again[i].Call) || !ops[i].Return.Equal(again[i].Return) || ops[i].Kind != again[i].Kind {
				t.Fatalf("op %d changed: %+v → %+v", i, ops[i], again[i])
			}
		}
	})
}
