package db

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

// Set is the lost-write workload: every write puts a key of its own, then
// ReadAll reads every key ever attempted back at the linearizable level.
// Unconditional puts are what the db's unsafe switch acknowledges early.
type Set struct {
	regions Regions
	cfg     config
	prefix  string
	clients []*setClient

	mu        sync.Mutex
	attempted []string
}

type setClient struct {
	id   int
	conn *conn
	seq  int
}

// NewSet prepares a set workload whose keys start with prefix (make it
// unique per run).
func NewSet(regions Regions, prefix string, opts ...Option) (*Set, error) {
	s := &Set{regions: regions, cfg: defaultConfig(), prefix: prefix}
	for _, o := range opts {
		o(&s.cfg)
	}
	if err := regions.Validate(); err != nil {
		return nil, err
	}
	if err := s.cfg.validate(); err != nil {
		return nil, err
	}
	for i := range s.cfg.clients {
		_, eps := regions.endpoints(i)
		s.clients = append(s.clients, &setClient{id: i, conn: newConn(eps, s.cfg)})
	}
	return s, nil
}

// Add has every client put unique keys until ctx ends or it has done
// MaxOps puts. It may be called again, one call at a time; keys stay
// unique.
func (s *Set) Add(ctx context.Context, h loadgen.History) {
	runClients(len(s.clients), func(i int) {
		c := s.clients[i]
		for range s.cfg.maxOps {
			if ctx.Err() != nil {
				return
			}
			c.seq++
			key := fmt.Sprintf("%sc%d-%d", s.prefix, i, c.seq)
			s.mu.Lock()
			s.attempted = append(s.attempted, key)
			s.mu.Unlock()
			opCtx, cancel := context.WithTimeout(ctx, s.cfg.opTimeout)
			call := time.Now()
			version, err := c.conn.client().Put(opCtx, key, key)
			ret := time.Now()
			cancel()
			out := Output{Version: version, OK: err == nil, Indefinite: indefinite(err)}
			record(h, c.id, KindAdd, Input{Key: key, Value: key}, out, err, call, ret)
			c.conn.failed(err)
			if out.Indefinite {
				c.id += len(s.clients)
			}
			wait := s.cfg.think
			if err != nil {
				wait = max(wait, failureBackoff)
			}
			if !pause(ctx, wait) {
				return
			}
		}
	})
}

// ReadAll reads back every key Add attempted, with linearizable reads
// spread over the clients, retrying while the cluster is electing. A key it
// cannot read by the time ctx ends is recorded as a failed final read.
func (s *Set) ReadAll(ctx context.Context, h loadgen.History) {
	s.mu.Lock()
	keys := append([]string(nil), s.attempted...)
	s.mu.Unlock()
	// More readers than writers: every read is a round trip to the
	// leader and a quorum, and thousands of keys read by a few clients
	// would take minutes. Each reader has its own connection, starting
	// where its client's did; ids follow the writers' so they stay unique.
	n := max(len(s.clients), finalReaders)
	runClients(n, func(i int) {
		w := s.clients[i%len(s.clients)]
		c := w
		if i >= len(s.clients) {
			_, eps := s.regions.endpoints(i % len(s.clients))
			c = &setClient{id: w.id + (i/len(s.clients))*len(s.clients)*1000, conn: newConn(eps, s.cfg)}
		}
		for j := i; j < len(keys); j += n {
			s.finalRead(ctx, c, keys[j], h)
		}
	})
}

// finalReaders is the least number of concurrent final readers.
const finalReaders = 16

// maxFinalAttempts bounds the retries of one final read even without a
// deadline on ctx (a minute of elections at 2 s per attempt).
const maxFinalAttempts = 30

func (s *Set) finalRead(ctx context.Context, c *setClient, key string, h loadgen.History) {
	in := Input{Key: key, Consistency: dbclient.Linearizable}
	for attempt := 1; ; attempt++ {
		opCtx, cancel := context.WithTimeout(ctx, s.cfg.opTimeout)
		call := time.Now()
		res, err := c.conn.client().Get(opCtx, key, dbclient.Linearizable)
		ret := time.Now()
		cancel()
		out := Output{ServedBy: res.ServedBy}
		switch {
		case err == nil:
			out.Found, out.Value, out.Version = true, res.Value, res.Version
		case errors.Is(err, dbclient.ErrNotFound):
			err = nil
		}
		if err == nil || !retryable(err) || attempt == maxFinalAttempts || !pause(ctx, 50*time.Millisecond) {
			record(h, c.id, KindFinal, in, out, err, call, ret)
			return
		}
		c.conn.failed(err)
	}
}

// retryable: no answer, or the node could not serve a linearizable read
// right now (no leader, minority side).
func retryable(err error) bool {
	var se *dbclient.StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusServiceUnavailable
	}
	return true
}
