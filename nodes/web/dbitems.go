package web

import (
	"context"
	"errors"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// DBItems keeps the items (the users' data) in the replicated db, as the
// lecture splits it: writes go to the master (the db node forwards them to
// the leader), reads are served by the region's own replica. The cache in
// front of it absorbs the hot reads. An item never written reads as its
// catalogue default, as in SimStore, so the workload needs no seeding.
type DBItems struct{ db *dbclient.Client }

// NewDBItems keeps items through the db node db talks to.
func NewDBItems(db *dbclient.Client) *DBItems { return &DBItems{db: db} }

func itemKey(id string) string { return "item:" + id }

func (s *DBItems) Get(ctx context.Context, id string) (string, error) {
	res, err := s.db.Get(ctx, itemKey(id), dbclient.Stale)
	if errors.Is(err, dbclient.ErrNotFound) {
		return "item " + id, nil
	}
	if err != nil {
		return "", err
	}
	return res.Value, nil
}

func (s *DBItems) Put(ctx context.Context, id, value string) error {
	_, err := s.db.Put(ctx, itemKey(id), value)
	return err
}
