package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Server speaks memcached's text protocol over a Store.
type Server struct {
	store      *Store
	started    time.Time
	currConns  atomic.Int64
	totalConns atomic.Uint64
}

// NewServer serves store.
func NewServer(store *Store) *Server {
	return &Server{store: store, started: store.now()}
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// open connection and returns nil once their goroutines have finished.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu     sync.Mutex
		open   = map[net.Conn]struct{}{}
		closed bool
		wg     sync.WaitGroup
	)
	context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for nc := range open {
			nc.Close()
		}
	})
	defer func() {
		cancel()
		wg.Wait()
	}()

	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Out of file descriptors and the like pass; back off as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		mu.Lock()
		if closed {
			mu.Unlock()
			nc.Close()
			return nil
		}
		open[nc] = struct{}{}
		mu.Unlock()

		s.currConns.Add(1)
		s.totalConns.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.currConns.Add(-1)
			newConn(s, nc).serve()
			mu.Lock()
			delete(open, nc)
			mu.Unlock()
			nc.Close()
		}()
	}
}
