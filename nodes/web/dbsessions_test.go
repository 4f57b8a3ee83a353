package web

import (
	"context"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/db/dbtest"
)

// Session lookups count where they were answered from, as item reads do:
// the region cache's hit ratio covers both.
func TestDBSessionsCountCacheReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := dbclient.New(dbtest.OneNode(t))
	mc := memcache.New(startCache(t))
	s := NewDBSessions(db, mc)
	reg := prometheus.NewRegistry()
	Handler("web-1", "r", reg, WithSessions(s))

	token, err := s.Create(ctx, "ann")
	require.NoError(t, err)
	for range 2 {
		user, err := s.Lookup(ctx, token)
		require.NoError(t, err)
		assert.Equal(t, "ann", user)
	}
	require.NoError(t, mc.Delete(sessionKey(token)))
	_, err = s.Lookup(ctx, token) // a miss, read from the db and filled
	require.NoError(t, err)
	_, err = s.Lookup(ctx, token)
	require.NoError(t, err)

	assert.Equal(t, 3.0, counterValue(t, s.reads.WithLabelValues("hit")))
	assert.Equal(t, 1.0, counterValue(t, s.reads.WithLabelValues("miss")))

	plain := NewDBSessions(db, nil)
	Handler("web-2", "r", prometheus.NewRegistry(), WithSessions(plain))
	_, err = plain.Lookup(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, 1.0, counterValue(t, plain.reads.WithLabelValues("store")), "no cache: every lookup is the db's")
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// A stateful node says how many sessions it holds: what it loses if it dies.
func TestMemSessionsGauge(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := NewMemSessions()
	Handler("web-1", "r", reg, WithSessions(m))
	held := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "web_sessions_in_memory" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no web_sessions_in_memory")
		return 0
	}
	a, err := m.Create(ctx, "ann")
	require.NoError(t, err)
	_, err = m.Create(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, 2.0, held())
	require.NoError(t, m.Delete(ctx, a))
	assert.Equal(t, 1.0, held())
}
