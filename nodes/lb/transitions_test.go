package lb

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// GET /lb/transitions times every state change as the lb decided it: a
// backend checked up, failing its checks, drained.
func TestTransitionsAreTimed(t *testing.T) {
	a, b, l, srv := ejecting(t, 3, time.Hour)
	sick := time.Now()
	a.sick.Store(true)
	l.checkRound(t.Context())
	l.checkRound(t.Context()) // fall 2: a is down now
	down := time.Now()
	require.True(t, l.remove(addr(b)))

	resp, err := http.Get(srv.URL + "/lb/transitions")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got Transitions
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, time.Hour, got.HealthInterval)
	assert.Equal(t, 2, got.Fall)
	assert.Equal(t, 3, got.EjectAfter)
	seq := map[string][]string{} // by backend: the two are checked concurrently
	for _, tr := range got.Transitions {
		seq[tr.Addr] = append(seq[tr.Addr], tr.From+"→"+tr.To)
		if tr.Addr == addr(a) && tr.To == StateDown {
			assert.True(t, !tr.At.Before(sick) && !tr.At.After(down), "timed when the lb took it out: %v not in [%v, %v]", tr.At, sick, down)
		}
	}
	assert.Equal(t, map[string][]string{
		addr(a): {"→" + StateUnchecked, StateUnchecked + "→" + StateUp, StateUp + "→" + StateDown},
		addr(b): {"→" + StateUnchecked, StateUnchecked + "→" + StateUp, StateUp + "→" + StateDraining},
	}, seq)
	assert.Positive(t, value(t, l.m.bLeft.WithLabelValues(addr(a))), "lb_backend_left_rotation_timestamp_seconds")
}

// Passive ejection is a transition too, timed at the failing request.
func TestEjectionIsATransition(t *testing.T) {
	a, _, l, srv := ejecting(t, 1, time.Hour)
	a.broken.Store(true)
	for range 4 {
		hit(t, srv.URL+"/api/hello")
	}
	require.Equal(t, StateEjected, stateOf(l, addr(a)))
	var to []string
	for _, tr := range l.m.Transitions() {
		if tr.Addr == addr(a) {
			to = append(to, tr.To)
		}
	}
	assert.Equal(t, []string{StateUnchecked, StateUp, StateEjected}, to)
}
