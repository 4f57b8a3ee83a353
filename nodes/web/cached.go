package web

import (
	"errors"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
)

// cachedRead is the cache half of a cache-aside read (items and sessions):
// key's value from mc when it is there. It counts in reads (nil: not
// counted) where the read is answered: "hit" from the cache; after a
// "miss", an "error" (a sick cache must slow reads to the store's pace, not
// fail them) or with no cache at all ("store", mc nil) the caller reads the
// store. Together the counts are the region cache's hit ratio.
func cachedRead(mc *memcache.Client, key string, reads *prometheus.CounterVec) ([]byte, bool) {
	var it *memcache.Item
	result := "store"
	if mc != nil {
		var err error
		switch it, err = mc.Get(key); {
		case err == nil:
			result = "hit"
		case errors.Is(err, memcache.ErrCacheMiss):
			result = "miss"
		default:
			result = "error"
		}
	}
	if reads != nil {
		reads.WithLabelValues(result).Inc()
	}
	if result != "hit" {
		return nil, false
	}
	return it.Value, true
}
