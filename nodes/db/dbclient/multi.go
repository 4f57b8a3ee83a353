package dbclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Multi sends each request to one of several db nodes, starting from the
// one that answered last and moving on when a node does not answer. Any
// node takes any request (followers forward to the leader), so a client of
// a replicated db needs only one that is up.
type Multi struct {
	clients []*Client
	timeout time.Duration

	mu   sync.Mutex
	good int
}

// NewMulti returns a Multi over endpoints ("http://host:port"). A node cut
// off from the others may not answer at all: each attempt gets timeout, so
// the next node is tried in time.
func NewMulti(endpoints []string, timeout time.Duration, opts ...Option) (*Multi, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("db: no endpoints")
	}
	m := &Multi{timeout: timeout}
	for _, e := range endpoints {
		m.clients = append(m.clients, New(e, opts...))
	}
	return m, nil
}

// Do runs op on the nodes in turn until one answers definitely: success,
// a missing key or a failed comparison are answers; anything else tries
// the next node.
func (m *Multi) Do(ctx context.Context, op func(context.Context, *Client) error) error {
	m.mu.Lock()
	first := m.good
	m.mu.Unlock()
	var errs []error
	for i := range m.clients {
		k := (first + i) % len(m.clients)
		octx, cancel := context.WithTimeout(ctx, m.timeout)
		err := op(octx, m.clients[k])
		cancel()
		var conflict *ConflictError
		if err == nil || errors.Is(err, ErrNotFound) || errors.As(err, &conflict) {
			m.mu.Lock()
			m.good = k
			m.mu.Unlock()
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("every db node failed: %w", errors.Join(errs...))
}
