package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/stream/engine"
)

// DBStore keeps the master's assignment and the tasks' checkpoints in the
// replicated db instead of the master's memory: a master that dies and is
// started again (or replaced) finds both, so losing it loses no state, and
// workers keep running their last assignment meanwhile. Any db node takes
// any request (followers forward to the leader); reads are linearizable, so
// a new master never acts on an assignment older than the last one saved.
type DBStore struct {
	prefix  string
	clients []*dbclient.Client

	mu   sync.Mutex
	good int // the client that answered last, tried first
}

// NewDBStore returns a store on the db nodes at endpoints
// ("http://host:port"), keeping its keys under prefix.
func NewDBStore(endpoints []string, prefix string) (*DBStore, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("db store: no db endpoints")
	}
	s := &DBStore{prefix: prefix}
	for _, e := range endpoints {
		s.clients = append(s.clients, dbclient.New(e))
	}
	return s, nil
}

// do runs op on the db nodes in turn, from the one that answered last,
// until one answers definitely (a missing key is an answer).
func (s *DBStore) do(op func(*dbclient.Client) error) error {
	s.mu.Lock()
	first := s.good
	s.mu.Unlock()
	var errs []error
	for i := range s.clients {
		k := (first + i) % len(s.clients)
		err := op(s.clients[k])
		if err == nil || errors.Is(err, dbclient.ErrNotFound) {
			s.mu.Lock()
			s.good = k
			s.mu.Unlock()
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("db store: every node failed: %w", errors.Join(errs...))
}

func (s *DBStore) get(ctx context.Context, key string) (string, bool, error) {
	var val string
	err := s.do(func(c *dbclient.Client) error {
		r, err := c.Get(ctx, s.prefix+key, dbclient.Linearizable)
		val = r.Value
		return err
	})
	if errors.Is(err, dbclient.ErrNotFound) {
		return "", false, nil
	}
	return val, err == nil, err
}

func (s *DBStore) put(ctx context.Context, key, val string) error {
	return s.do(func(c *dbclient.Client) error {
		_, err := c.Put(ctx, s.prefix+key, val)
		return err
	})
}

// Assignments is the AssignmentStore half.
func (s *DBStore) Assignments() AssignmentStore { return dbAssignments{s} }

// States is the engine.StateStore half.
func (s *DBStore) States() engine.StateStore { return dbStates{s} }

type dbAssignments struct{ s *DBStore }

func (d dbAssignments) Load(ctx context.Context) (engine.Assignment, error) {
	var a engine.Assignment
	val, ok, err := d.s.get(ctx, "assignment")
	if err != nil || !ok {
		return a, err
	}
	if err := json.Unmarshal([]byte(val), &a); err != nil {
		return a, fmt.Errorf("db store: assignment: %w", err)
	}
	return a, nil
}

func (d dbAssignments) Save(ctx context.Context, a engine.Assignment) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return d.s.put(ctx, "assignment", string(data))
}

type dbStates struct{ s *DBStore }

func (d dbStates) Load(ctx context.Context, task int32) ([]byte, error) {
	val, ok, err := d.s.get(ctx, "state/"+strconv.Itoa(int(task)))
	if err != nil || !ok {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(val)
}

func (d dbStates) Save(ctx context.Context, task int32, data []byte) error {
	return d.s.put(ctx, "state/"+strconv.Itoa(int(task)), base64.StdEncoding.EncodeToString(data))
}
