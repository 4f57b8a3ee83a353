package loadgen

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestItemsTargeterHotSet(t *testing.T) {
	base, err := url.Parse("http://lb:8080")
	require.NoError(t, err)
	tr := itemsTargeter(base)
	const n = 10_000
	hot := 0
	seen := map[int]bool{}
	for range n {
		var tg vegeta.Target
		require.NoError(t, tr(&tg))
		assert.Equal(t, http.MethodGet, tg.Method)
		id, err := strconv.Atoi(strings.TrimPrefix(tg.URL, "http://lb:8080/api/item/"))
		require.NoError(t, err, tg.URL)
		require.Less(t, id, itemsHot+itemsCold)
		if id < itemsHot {
			hot++
		}
		seen[id] = true
	}
	// The hash spreads well enough that the hot share is within a point.
	assert.InDelta(t, float64(itemsHotShare)/10, float64(hot)/n, 0.01)
	assert.Greater(t, len(seen), 1000, "the tail is read too")
}
