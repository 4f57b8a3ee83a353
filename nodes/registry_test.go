package nodes

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistry(t *testing.T) {
	called := ""
	Register("test-a", func(ctx context.Context, args []string) error { called = "a"; return nil })
	Register("test-b", func(ctx context.Context, args []string) error { called = "b"; return nil })

	run, err := Lookup("test-b")
	require.NoError(t, err)
	require.NoError(t, run(context.Background(), nil))
	assert.Equal(t, "b", called)

	_, err = Lookup("nope")
	require.ErrorIs(t, err, ErrUsage)
	assert.Contains(t, err.Error(), "test-a")

	assert.Subset(t, Names(), []string{"test-a", "test-b"})
	assert.Panics(t, func() { Register("test-a", func(context.Context, []string) error { return nil }) })
	assert.Panics(t, func() { Register("test-c", nil) })
}
