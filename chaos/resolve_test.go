package chaos

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveOnlyPicks(t *testing.T) {
	var asked []string
	env := Env{Resolve: func(_ context.Context, target string) ([]string, error) {
		asked = append(asked, target)
		if target == "@leader:none" {
			return nil, errors.New("no leader")
		}
		return []string{"db-b-1"}, nil
	}}
	got, err := env.resolve(context.Background(), []string{"web-a-1", "@leader:db", "us-east"})
	require.NoError(t, err)
	assert.Equal(t, []string{"web-a-1", "db-b-1", "us-east"}, got)
	assert.Equal(t, []string{"@leader:db"}, asked, "plain names are never resolved")

	_, err = env.resolve(context.Background(), []string{"@leader:none"})
	assert.ErrorContains(t, err, "resolve @leader:none: no leader")

	got, err = Env{}.resolve(context.Background(), []string{"@leader:db"})
	require.NoError(t, err)
	assert.Equal(t, []string{"@leader:db"}, got, "no resolver: targets as they are")
}
