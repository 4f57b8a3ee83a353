package loadgen

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingWorkload records one op per client in Run and one in Finish.
type countingWorkload struct{ spec HistorySpec }

func (w countingWorkload) Run(ctx context.Context, h History) {
	for i := range w.spec.Clients {
		h.Record(Operation{Client: i, Kind: "write", Input: json.RawMessage(`{"k":"` + w.spec.Prefix + `"}`), Call: time.Now(), Return: time.Now()})
	}
	<-ctx.Done() // the main phase lasts Duration
}

func (w countingWorkload) Finish(_ context.Context, h History) {
	h.Record(Operation{Client: 0, Kind: "final-read", Call: time.Now(), Return: time.Now()})
}

func init() {
	RegisterHistory("test-counting", func(s HistorySpec) (HistoryWorkload, error) { return countingWorkload{s}, nil })
}

func TestHistoryStreamsEveryOperation(t *testing.T) {
	srv := httptest.NewServer(HistoryHandler(context.Background()))
	defer srv.Close()
	c := Client{BaseURL: srv.URL}
	spec := HistorySpec{Workload: "test-counting", Region: "a", Local: []string{"http://10.0.0.1:8080"},
		Clients: 3, Duration: 50 * time.Millisecond, Prefix: "p/"}
	var ops []Operation
	final, err := c.History(context.Background(), spec, func(op Operation) { ops = append(ops, op) })
	require.NoError(t, err)
	assert.Equal(t, 4, final.Operations)
	require.Len(t, ops, 4)
	assert.Equal(t, "final-read", ops[3].Kind)
	assert.JSONEq(t, `{"k":"p/"}`, string(ops[0].Input))
}

func TestHistorySpecValidate(t *testing.T) {
	ok := HistorySpec{Workload: "test-counting", Region: "a", Local: []string{"http://h:1"}, Clients: 1, Duration: time.Second, Prefix: "p"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name string
		edit func(*HistorySpec)
		want string
	}{
		{"unknown", func(s *HistorySpec) { s.Workload = "nope" }, `history workload "nope": unknown`},
		{"no endpoint", func(s *HistorySpec) { s.Local = nil }, "no local endpoint"},
		{"bad endpoint", func(s *HistorySpec) { s.Remote = []string{"h:1"} }, `endpoint "h:1"`},
		{"no clients", func(s *HistorySpec) { s.Clients = 0 }, "clients 0"},
		{"no duration", func(s *HistorySpec) { s.Duration = 0 }, "duration 0s"},
		{"no prefix", func(s *HistorySpec) { s.Prefix = "" }, "empty prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			assert.ErrorContains(t, s.Validate(), tc.want)
		})
	}
	assert.True(t, IsHistory("test-counting"))
	assert.False(t, IsHistory("api"))
	assert.Panics(t, func() { RegisterHistory("api", nil) }, "an attack workload's name")
}

func TestHistoryBadSpecIsRefused(t *testing.T) {
	srv := httptest.NewServer(HistoryHandler(context.Background()))
	defer srv.Close()
	_, err := (&Client{BaseURL: srv.URL}).History(context.Background(), HistorySpec{Workload: "nope"}, func(Operation) {})
	assert.ErrorContains(t, err, "400 Bad Request")
}
