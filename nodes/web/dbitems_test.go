package web

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/db/dbtest"
)

// Items in the db: a write lands in the db (any web node's next read sees
// it there), and an item never written reads as its catalogue default.
func TestDBItems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := dbclient.New(dbtest.OneNode(t))
	s := NewDBItems(db)
	v, err := s.Get(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, "item 7", v)
	require.NoError(t, s.Put(ctx, "7", "seven"))
	v, err = NewDBItems(db).Get(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, "seven", v)
	res, err := db.Get(ctx, "item:7", dbclient.Linearizable)
	require.NoError(t, err)
	assert.Equal(t, "seven", res.Value, "kept in the db, not on the web node")
}
