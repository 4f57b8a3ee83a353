package netsetup

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/runtime/memory"
)

func TestRouterIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.206.1.0/24": "10.206.1.254",
		"10.206.0.0/16": "10.206.255.254",
		"10.9.1.32/27":  "10.9.1.62",
	} {
		assert.Equal(t, netip.MustParseAddr(want), RouterIP(netip.MustParsePrefix(in)), in)
	}
}

// The in-memory runtime's pids are made up: nothing may ever enter them.
func TestNoNamespacesInMemory(t *testing.T) {
	rt := memory.New()
	assert.False(t, HasNamespaces(rt))
	assert.NoError(t, Setup(t.Context(), rt, "r"))
	_, err := Discover(t.Context(), rt, "r")
	assert.ErrorIs(t, err, ErrNoNamespaces)
}
