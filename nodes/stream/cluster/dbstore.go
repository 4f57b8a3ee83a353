package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/stream/engine"
)

// DBStore keeps the master's assignment and the tasks' checkpoints in the
// replicated db instead of the master's memory: a master that dies and is
// started again (or replaced) finds both, so losing it loses no state.
// Workers read and write their checkpoints there themselves (States), so a
// dead master stops no running worker. Any db node takes any request
// (followers forward to the leader); reads are linearizable, so a new
// master never acts on an assignment older than the last one saved.
//
// Fencing: with the assignment the master writes each task's owner under
// owner/{task}, and a worker's checkpoint write carries a compare-and-swap
// on the owner keys of its tasks in the same atomic batch. A worker the
// master gave up on (paused, cut off) may still be running a task; once the
// task is assigned elsewhere its writes fail instead of overwriting the new
// owner's state.
type DBStore struct {
	prefix string
	owner  string // worker id whose checkpoints this store writes; "" for the master
	db     *dbclient.Multi
}

// DBStoreOption configures a DBStore.
type DBStoreOption func(*DBStore)

// WithOwner makes the store a worker's: its checkpoint writes succeed only
// for tasks the stored assignment gives to worker id.
func WithOwner(id string) DBStoreOption { return func(s *DBStore) { s.owner = id } }

// NewDBStore returns a store on the db nodes at endpoints
// ("http://host:port"), keeping its keys under prefix.
func NewDBStore(endpoints []string, prefix string, opts ...DBStoreOption) (*DBStore, error) {
	// 2 s per node: the next one is tried long before a message times out.
	db, err := dbclient.NewMulti(endpoints, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("db store: %w", err)
	}
	s := &DBStore{prefix: prefix, db: db}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func (s *DBStore) get(ctx context.Context, key string) (string, bool, error) {
	var val string
	err := s.db.Do(ctx, func(ctx context.Context, c *dbclient.Client) error {
		r, err := c.Get(ctx, s.prefix+key, dbclient.Linearizable)
		val = r.Value
		return err
	})
	if errors.Is(err, dbclient.ErrNotFound) {
		return "", false, nil
	}
	return val, err == nil, err
}

func (s *DBStore) batch(ctx context.Context, ops []dbclient.Op) error {
	return s.db.Do(ctx, func(ctx context.Context, c *dbclient.Client) error {
		_, err := c.Batch(ctx, ops)
		return err
	})
}

func (s *DBStore) stateKey(task int32) string { return s.prefix + "state/" + strconv.Itoa(int(task)) }
func (s *DBStore) ownerKey(task int32) string { return s.prefix + "owner/" + strconv.Itoa(int(task)) }

// Assignments is the AssignmentStore half.
func (s *DBStore) Assignments() AssignmentStore { return dbAssignments{s} }

// States is the engine.StateStore half; it saves a worker's checkpoints in
// one batch.
func (s *DBStore) States() engine.BatchStore { return dbStates{s} }

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

// Save writes the assignment and every task's owner in one batch, so no
// worker sees one without the other.
func (d dbAssignments) Save(ctx context.Context, a engine.Assignment) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ops := []dbclient.Op{{Op: dbclient.OpPut, Key: d.s.prefix + "assignment", Value: string(data)}}
	for _, task := range slices.Sorted(maps.Keys(a.Tasks)) {
		ops = append(ops, dbclient.Op{Op: dbclient.OpPut, Key: d.s.ownerKey(task), Value: a.Tasks[task]})
	}
	return d.s.batch(ctx, ops)
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
	return d.SaveBatch(ctx, map[int32][]byte{task: data})[task]
}

// ErrFenced is a checkpoint refused because the task is no longer the
// writer's.
var ErrFenced = errors.New("task assigned to another worker")

// SaveBatch writes the checkpoints in one atomic batch. A task fenced off
// (its owner key names another worker) fails the whole batch; it is taken
// out and the rest written again.
func (d dbStates) SaveBatch(ctx context.Context, cps map[int32][]byte) map[int32]error {
	errs := map[int32]error{}
	todo := slices.Sorted(maps.Keys(cps))
	for len(todo) > 0 {
		var ops []dbclient.Op
		for _, task := range todo {
			if d.s.owner != "" {
				ops = append(ops, dbclient.Op{Op: dbclient.OpCAS, Key: d.s.ownerKey(task), Value: d.s.owner, ExpectedValue: &d.s.owner})
			}
			ops = append(ops, dbclient.Op{Op: dbclient.OpPut, Key: d.s.stateKey(task), Value: base64.StdEncoding.EncodeToString(cps[task])})
		}
		err := d.s.batch(ctx, ops)
		var conflict *dbclient.ConflictError
		if !errors.As(err, &conflict) {
			for _, task := range todo {
				errs[task] = err
			}
			return errs
		}
		fenced := slices.IndexFunc(todo, func(t int32) bool { return d.s.ownerKey(t) == conflict.Current.Key })
		if fenced < 0 {
			for _, task := range todo {
				errs[task] = fmt.Errorf("db store: %w", err)
			}
			return errs
		}
		errs[todo[fenced]] = fmt.Errorf("save state %d as %s: %w (owner is %q)", todo[fenced], d.s.owner, ErrFenced, conflict.Current.Value)
		todo = slices.Delete(todo, fenced, fenced+1)
	}
	return errs
}
