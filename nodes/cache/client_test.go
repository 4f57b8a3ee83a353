package cache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newClient(addr string) *memcache.Client {
	mc := memcache.New(addr)
	// Generous, to stay clear of a loaded machine; no assertion depends on it.
	mc.Timeout = 10 * time.Second
	mc.MaxIdleConns = 8
	return mc
}

// TestGomemcache drives the server with the standard Go client.
func TestGomemcache(t *testing.T) {
	clock := newFakeClock()
	addr, _ := startServer(t, clock.opt())
	mc := newClient(addr)
	defer mc.Close()

	require.NoError(t, mc.Ping())

	_, err := mc.Get("k")
	require.ErrorIs(t, err, memcache.ErrCacheMiss)
	require.NoError(t, mc.Set(&memcache.Item{Key: "k", Value: []byte("hello"), Flags: 42}))
	it, err := mc.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(it.Value))
	assert.Equal(t, uint32(42), it.Flags)

	require.ErrorIs(t, mc.Add(&memcache.Item{Key: "k", Value: []byte("x")}), memcache.ErrNotStored)
	require.NoError(t, mc.Add(&memcache.Item{Key: "fresh", Value: []byte("x")}))
	require.ErrorIs(t, mc.Replace(&memcache.Item{Key: "absent", Value: []byte("x")}), memcache.ErrNotStored)
	require.NoError(t, mc.Append(&memcache.Item{Key: "k", Value: []byte(" world")}))

	// cas: the first writer wins, a stale cas unique loses.
	a, err := mc.Get("k")
	require.NoError(t, err)
	b, err := mc.Get("k")
	require.NoError(t, err)
	a.Value = []byte("from a")
	require.NoError(t, mc.CompareAndSwap(a))
	b.Value = []byte("from b")
	require.ErrorIs(t, mc.CompareAndSwap(b), memcache.ErrCASConflict)
	it, err = mc.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "from a", string(it.Value))

	multi, err := mc.GetMulti([]string{"k", "fresh", "absent"})
	require.NoError(t, err)
	assert.Len(t, multi, 2)

	require.NoError(t, mc.Set(&memcache.Item{Key: "n", Value: []byte("41")}))
	n, err := mc.Increment("n", 1)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), n)
	n, err = mc.Decrement("n", 50)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), n)
	_, err = mc.Increment("absent", 1)
	require.ErrorIs(t, err, memcache.ErrCacheMiss)

	require.NoError(t, mc.Delete("n"))
	require.ErrorIs(t, mc.Delete("n"), memcache.ErrCacheMiss)

	// Expiry and touch, on the injected clock.
	require.NoError(t, mc.Set(&memcache.Item{Key: "ttl", Value: []byte("v"), Expiration: 10}))
	clock.Advance(8 * time.Second)
	require.NoError(t, mc.Touch("ttl", 10))
	clock.Advance(8 * time.Second)
	_, err = mc.Get("ttl")
	require.NoError(t, err, "touch moved the deadline")
	it, err = mc.GetAndTouch("ttl", 100)
	require.NoError(t, err)
	assert.Equal(t, "v", string(it.Value))
	clock.Advance(99 * time.Second)
	_, err = mc.Get("ttl")
	require.NoError(t, err)
	clock.Advance(time.Second)
	_, err = mc.Get("ttl")
	require.ErrorIs(t, err, memcache.ErrCacheMiss)
	require.ErrorIs(t, mc.Touch("ttl", 10), memcache.ErrCacheMiss)

	big := make([]byte, 1<<20+1)
	require.Error(t, mc.Set(&memcache.Item{Key: "big", Value: big}))
	require.NoError(t, mc.Set(&memcache.Item{Key: "big", Value: big[:1<<20]}))

	require.NoError(t, mc.FlushAll())
	_, err = mc.Get("k")
	require.ErrorIs(t, err, memcache.ErrCacheMiss)
}

// TestConcurrentClients runs many clients over shared keys; with -race it
// checks the locking, and the final counter checks incr is atomic.
func TestConcurrentClients(t *testing.T) {
	addr, srv := startServer(t, WithMemory(4<<20), WithMaxItemSize(64<<10))
	const workers, rounds = 8, 200
	mc := newClient(addr)
	defer mc.Close()
	require.NoError(t, mc.Set(&memcache.Item{Key: "counter", Value: []byte("0")}))

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(addr)
			defer c.Close()
			for i := range rounds {
				key := fmt.Sprintf("key-%d", (w*rounds+i)%37)
				if err := c.Set(&memcache.Item{Key: key, Value: make([]byte, 512+i)}); err != nil {
					errs <- fmt.Errorf("set: %w", err)
					return
				}
				if _, err := c.Get(key); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
					errs <- fmt.Errorf("get: %w", err)
					return
				}
				if _, err := c.Increment("counter", 1); err != nil {
					errs <- fmt.Errorf("incr: %w", err)
					return
				}
				if i%10 == 0 {
					if err := c.Delete(key); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
						errs <- fmt.Errorf("delete: %w", err)
						return
					}
					srv.store.Stats()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	it, err := mc.Get("counter")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(workers*rounds), string(it.Value))
	st := srv.store.Stats()
	assert.Equal(t, st.CmdGet, st.GetHits+st.GetMisses)
	assert.LessOrEqual(t, st.Bytes, st.LimitMaxBytes)
}
