package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// DBSessions keeps sessions in the replicated db, so any web node can serve
// any session and losing a node loses none (the stateless web tier).
// Writes go to the leader (the local db node forwards them); reads come
// from the local replica, cache-aside through the region's cache when
// there is one. A replica that has not applied a fresh login yet answers
// "not found": the read is then retried at the leader, so a user always
// sees their own login.
type DBSessions struct {
	db    *dbclient.Client
	mc    *memcache.Client       // nil: no cache
	reads *prometheus.CounterVec // nil until Handler registers it
}

// sessionTTL is how long a cached session lives (logouts delete it).
const sessionTTL = 300

// NewDBSessions stores sessions through db, caching them in mc if not nil.
func NewDBSessions(db *dbclient.Client, mc *memcache.Client) *DBSessions {
	return &DBSessions{db: db, mc: mc}
}

func sessionKey(token string) string { return "session:" + token }

// register counts lookups by where they were answered from, as items does
// for item reads: together they are the region cache's hit ratio.
func (s *DBSessions) register(reg prometheus.Registerer) {
	s.reads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "web", Name: "session_reads_total",
		Help: "Session lookups by where they were answered from (hit: the cache; miss: the db, after a cache miss; error: the cache failed, the db answered; store: no cache, the db)."},
		[]string{"result"})
	reg.MustRegister(s.reads)
}

func (s *DBSessions) Create(ctx context.Context, user string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	token := hex.EncodeToString(b[:])
	if _, err := s.db.Put(ctx, sessionKey(token), user); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if s.mc != nil {
		_ = s.mc.Set(&memcache.Item{Key: sessionKey(token), Value: []byte(user), Expiration: sessionTTL}) // a failed fill costs one db read
	}
	return token, nil
}

func (s *DBSessions) Lookup(ctx context.Context, token string) (string, error) {
	if v, ok := cachedRead(s.mc, sessionKey(token), s.reads); ok {
		return string(v), nil
	}
	res, err := s.db.Get(ctx, sessionKey(token), dbclient.Stale)
	if errors.Is(err, dbclient.ErrNotFound) {
		res, err = s.db.Get(ctx, sessionKey(token), dbclient.Linearizable)
	}
	switch {
	case errors.Is(err, dbclient.ErrNotFound):
		return "", ErrNoSession
	case err != nil:
		return "", fmt.Errorf("look up session: %w", err)
	}
	if s.mc != nil {
		_ = s.mc.Set(&memcache.Item{Key: sessionKey(token), Value: []byte(res.Value), Expiration: sessionTTL})
	}
	return res.Value, nil
}

func (s *DBSessions) Delete(ctx context.Context, token string) error {
	if _, err := s.db.Delete(ctx, sessionKey(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if s.mc != nil {
		// Invalidate after the write, as for items; a missed delete lets
		// the cached session live at most sessionTTL.
		_ = s.mc.Delete(sessionKey(token))
	}
	return nil
}
