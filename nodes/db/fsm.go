package db

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// initialMmap is address space, not memory or disk. A snapshot holds a read
// transaction while it streams the file, and bbolt makes writers wait for
// all readers whenever it has to grow the mapping; mapping generously up
// front keeps applies from stalling behind a snapshot.
const initialMmap = 64 << 20

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyApplied = []byte("applied")
)

// fsm is the replicated state: a bbolt file mapping key → (version, value).
// It is persistent, so it records the last applied raft index in the same
// transaction as the data and skips entries at or below it when raft
// replays its log after a restart; replaying a CAS onto a state that is
// already ahead of it would otherwise change its outcome.
type fsm struct {
	path   string
	noSync bool

	mu sync.RWMutex // held for writing only while Restore swaps the file
	db *bbolt.DB

	appliedMu sync.Mutex
	applied   uint64
	advanced  chan struct{} // closed and replaced whenever applied grows
}

type applyResult struct {
	res dbclient.WriteResult
	err error
}

func openFSM(path string, noSync bool) (*fsm, error) {
	f := &fsm{path: path, noSync: noSync, advanced: make(chan struct{})}
	if err := f.open(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fsm) open() error {
	db, err := bbolt.Open(f.path, 0o600, &bbolt.Options{Timeout: timeoutOpen, NoSync: f.noSync, InitialMmapSize: initialMmap})
	if err != nil {
		return fmt.Errorf("open state %s: %w", f.path, err)
	}
	var applied uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketKV); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("init state %s: %w", f.path, err)
	}
	f.db = db
	f.setApplied(applied)
	return nil
}

func (f *fsm) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.db.Close()
}

func (f *fsm) setApplied(idx uint64) {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	f.applied = idx
	close(f.advanced)
	f.advanced = make(chan struct{})
}

func (f *fsm) appliedIndex() uint64 {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.applied
}

// waitApplied blocks until the state includes raft index idx.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.appliedMu.Lock()
		applied, ch := f.applied, f.advanced
		f.appliedMu.Unlock()
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", idx, applied, ctx.Err())
		}
	}
}

func (f *fsm) get(key string) (dbclient.Entry, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var e dbclient.Entry
	var found bool
	err := f.db.View(func(tx *bbolt.Tx) error {
		e, found = readEntry(tx.Bucket(bucketKV), key)
		return nil
	})
	if err != nil {
		return dbclient.Entry{}, false, fmt.Errorf("get %q: %w", key, err)
	}
	return e, found, nil
}

func readEntry(b *bbolt.Bucket, key string) (dbclient.Entry, bool) {
	v := b.Get([]byte(key))
	if len(v) < 8 {
		return dbclient.Entry{}, false
	}
	return dbclient.Entry{Key: key, Version: binary.BigEndian.Uint64(v), Value: string(v[8:])}, true
}

func encodeEntry(version uint64, value string) []byte {
	out := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(out, version)
	return append(out, value...)
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: one bbolt transaction (one fsync)
// per batch raft hands over, not per entry.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()
	var last uint64
	err := f.db.Update(func(tx *bbolt.Tx) error {
		kv := tx.Bucket(bucketKV)
		meta := tx.Bucket(bucketMeta)
		applied := uint64(0)
		if v := meta.Get(keyApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		for i, l := range logs {
			if l.Index <= applied {
				continue
			}
			last = l.Index
			if l.Type != raft.LogCommand {
				continue
			}
			res, err := applyCommand(kv, l)
			if err != nil {
				out[i] = applyResult{err: err}
				continue
			}
			out[i] = applyResult{res: res}
		}
		if last == 0 {
			return nil
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], last)
		return meta.Put(keyApplied, buf[:])
	})
	if err != nil {
		// Raft has already counted these entries as applied; carrying on
		// would silently diverge from the other replicas.
		panic(fmt.Sprintf("db: apply up to index %d: %v", logs[len(logs)-1].Index, err))
	}
	if last != 0 {
		f.setApplied(last)
	}
	return out
}

// applyCommand applies one entry atomically: every CAS condition is checked
// (against the state as earlier ops of the same entry leave it) before
// anything is written, so a failed CAS leaves no partial batch behind.
func applyCommand(kv *bbolt.Bucket, l *raft.Log) (dbclient.WriteResult, error) {
	cmd, err := decodeCommand(l.Data)
	if err != nil {
		return dbclient.WriteResult{}, fmt.Errorf("index %d: %w", l.Index, err)
	}
	overlay := map[string]*dbclient.Entry{}
	lookup := func(key string) (dbclient.Entry, bool) {
		if e, ok := overlay[key]; ok {
			if e == nil {
				return dbclient.Entry{}, false
			}
			return *e, true
		}
		return readEntry(kv, key)
	}
	existed := false
	for _, op := range cmd.ops {
		cur, found := lookup(op.Key)
		switch op.Op {
		case dbclient.OpDelete:
			existed = existed || found
			overlay[op.Key] = nil
			continue
		case dbclient.OpCAS:
			if !casMatches(op, cur, found) {
				conflict := cur
				if !found {
					conflict = dbclient.Entry{Key: op.Key}
				}
				return dbclient.WriteResult{OK: false, Conflict: &conflict}, nil
			}
		}
		overlay[op.Key] = &dbclient.Entry{Key: op.Key, Value: op.Value, Version: l.Index}
	}
	for key, e := range overlay {
		if e == nil {
			err = kv.Delete([]byte(key))
		} else {
			err = kv.Put([]byte(key), encodeEntry(e.Version, e.Value))
		}
		if err != nil {
			return dbclient.WriteResult{}, fmt.Errorf("index %d: write %q: %w", l.Index, key, err)
		}
	}
	return dbclient.WriteResult{OK: true, Version: l.Index, Existed: existed}, nil
}

func casMatches(op dbclient.Op, cur dbclient.Entry, found bool) bool {
	if op.ExpectedVersion != nil {
		if *op.ExpectedVersion == 0 {
			if found {
				return false
			}
		} else if !found || cur.Version != *op.ExpectedVersion {
			return false
		}
	}
	if op.ExpectedValue != nil && (!found || cur.Value != *op.ExpectedValue) {
		return false
	}
	return true
}

// Snapshot implements raft.FSM. Raft calls it on the apply goroutine, so the
// read transaction opened here sees exactly the state at the snapshot index;
// Persist then copies the bbolt file from it while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

type fsmSnapshot struct {
	tx *bbolt.Tx
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore implements raft.FSM: the snapshot is a whole bbolt file, written
// next to the live one and renamed over it.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore: close state: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := f.open(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	err = errors.Join(err, out.Sync(), out.Close())
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}
