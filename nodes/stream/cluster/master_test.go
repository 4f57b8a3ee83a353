package cluster

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/wordcount"
)

func TestReschedule(t *testing.T) {
	tp, err := wordcount.Build(wordcount.Lecture(1))
	require.NoError(t, err)
	total := tp.NumTasks() + 2
	t0 := time.Unix(1000, 0)
	ctx := context.Background()

	type step struct {
		at      time.Duration // after t0
		beats   []string      // workers heartbeating at that time
		version uint64        // expected assignment version after rescheduling
		owners  []string      // workers that must hold tasks
	}
	cases := []struct {
		name  string
		min   int
		steps []step
	}{
		{"waits for enough workers", 2, []step{
			{0, []string{"a"}, 0, nil},
			{time.Second, []string{"a", "b"}, 1, []string{"a", "b"}},
		}},
		{"moves a dead worker's tasks", 3, []step{
			{0, []string{"a", "b", "c"}, 1, []string{"a", "b", "c"}},
			{2 * time.Second, []string{"a", "c"}, 1, []string{"a", "b", "c"}}, // b still within timeout
			{4 * time.Second, []string{"a", "c"}, 2, []string{"a", "c"}},
			{5 * time.Second, []string{"a", "c"}, 2, []string{"a", "c"}}, // nothing changes: no new version
		}},
		{"a returning worker gets nothing back", 2, []step{
			{0, []string{"a", "b"}, 1, []string{"a", "b"}},
			{4 * time.Second, []string{"a"}, 2, []string{"a"}},
			{5 * time.Second, []string{"a", "b"}, 2, []string{"a"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &MemAssignmentStore{}
			m := NewMaster(tp, store, engine.NewMemStateStore(), WithMinWorkers(tc.min), WithHeartbeatTimeout(3*time.Second))
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				for _, w := range s.beats {
					m.heartbeat(Heartbeat{ID: w, Addr: w + ":1"}, now)
				}
				require.NoError(t, m.reschedule(ctx, now))
				a := m.Assignment()
				require.Equal(t, s.version, a.Version, "step %d", i)
				if s.version == 0 {
					continue
				}
				saved, err := store.Load(ctx)
				require.NoError(t, err)
				assert.Equal(t, a, saved, "every assignment is stored before it is used")
				require.Len(t, a.Tasks, total)
				load := map[string]int{}
				for _, w := range a.Tasks {
					load[w]++
				}
				assert.ElementsMatch(t, s.owners, keys(load), "step %d", i)
				for _, w := range s.owners {
					assert.InDelta(t, total/len(s.owners), load[w], float64(total/len(s.owners)), "step %d: %s roughly balanced", i, w)
				}
			}
		})
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestStateFencing(t *testing.T) {
	tp, err := wordcount.Build(wordcount.Lecture(1))
	require.NoError(t, err)
	ctx := context.Background()
	m := NewMaster(tp, &MemAssignmentStore{}, engine.NewMemStateStore())
	m.heartbeat(Heartbeat{ID: "a", Addr: "a:1"}, time.Now())
	require.NoError(t, m.reschedule(ctx, time.Now()))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	owner := &HTTPStateStore{Base: srv.URL, Worker: "a", Client: srv.Client()}
	zombie := &HTTPStateStore{Base: srv.URL, Worker: "z", Client: srv.Client()}
	require.NoError(t, owner.Save(ctx, 1, []byte("mine")))
	require.Error(t, zombie.Save(ctx, 1, []byte("stale")), "a worker not assigned the task may not save")
	got, err := zombie.Load(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []byte("mine"), got)

	resp, err := srv.Client().Post(srv.URL+"/heartbeat", "application/json", bytes.NewReader([]byte("{")))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
