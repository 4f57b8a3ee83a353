package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/faultline/faultline/nodes/stream/topo"
)

// StateStore keeps task checkpoints where they outlive the worker that
// wrote them. MemStateStore is the in-process one; the cluster package
// serves one from the master.
type StateStore interface {
	Save(ctx context.Context, task int32, data []byte) error
	// Load returns nil data when the task has no checkpoint.
	Load(ctx context.Context, task int32) ([]byte, error)
}

// MemStateStore is a StateStore in memory.
type MemStateStore struct {
	mu sync.Mutex
	m  map[int32][]byte
}

// NewMemStateStore returns an empty store.
func NewMemStateStore() *MemStateStore { return &MemStateStore{m: map[int32][]byte{}} }

// Save stores a copy of data.
func (s *MemStateStore) Save(_ context.Context, task int32, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[task] = append([]byte(nil), data...)
	return nil
}

// Load returns the last saved checkpoint.
func (s *MemStateStore) Load(_ context.Context, task int32) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.m[task]...), nil
}

// dedup remembers which tuples a stateful task applied, per spout task, so
// replays are recognised. Messages below the spout's mark are complete and
// checkpointed everywhere: their keys are dropped at the next checkpoint and
// any tuple from them that still arrives is a stale duplicate.
type dedup map[int32]*srcSeen

type srcSeen struct {
	mark uint64
	keys map[uint64]uint64 // key → seq
}

func (d dedup) seen(t *topo.Meta) bool {
	s := d[t.Spout]
	if s == nil {
		return false
	}
	if t.Seq < s.mark {
		return true
	}
	_, ok := s.keys[t.Key]
	return ok
}

func (d dedup) add(t *topo.Meta) {
	s := d[t.Spout]
	if s == nil {
		s = &srcSeen{keys: map[uint64]uint64{}}
		d[t.Spout] = s
	}
	s.mark = max(s.mark, t.Mark)
	s.keys[t.Key] = t.Seq
}

// prune drops the keys of complete messages; it runs before each
// checkpoint, which scans everything anyway. It copies the live keys into a
// fresh map: deleting most of a map in place leaves tombstones that make
// every later lookup probe longer (seen in profiles).
func (d dedup) prune() {
	for _, s := range d {
		live := make(map[uint64]uint64, len(s.keys)/2)
		for k, seq := range s.keys {
			if seq >= s.mark {
				live[k] = seq
			}
		}
		s.keys = live
	}
}

// Checkpoint layout: uvarint len(dedup section) | dedup | task snapshot.
// dedup: count, then per spout: task, mark, nkeys, per key: key, seq.
func encodeCheckpoint(d dedup, snapshot []byte) []byte {
	var sec []byte
	sec = binary.AppendUvarint(sec, uint64(len(d)))
	for spout, s := range d {
		sec = binary.AppendUvarint(sec, uint64(uint32(spout)))
		sec = binary.AppendUvarint(sec, s.mark)
		sec = binary.AppendUvarint(sec, uint64(len(s.keys)))
		for k, seq := range s.keys {
			sec = binary.LittleEndian.AppendUint64(sec, k)
			sec = binary.AppendUvarint(sec, seq)
		}
	}
	out := binary.AppendUvarint(make([]byte, 0, len(sec)+len(snapshot)+binary.MaxVarintLen64), uint64(len(sec)))
	out = append(out, sec...)
	return append(out, snapshot...)
}

var errCorrupt = errors.New("corrupt checkpoint")

func decodeCheckpoint(data []byte) (dedup, []byte, error) {
	r := reader{b: data}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return nil, nil, errCorrupt
	}
	sec := reader{b: r.b[:n]}
	snapshot := r.b[n:]
	d := dedup{}
	for range sec.count(3) {
		spout := int32(uint32(sec.uvarint()))
		s := &srcSeen{mark: sec.uvarint(), keys: map[uint64]uint64{}}
		for range sec.count(9) {
			k := sec.u64()
			s.keys[k] = sec.uvarint()
		}
		d[spout] = s
	}
	if sec.err != nil || len(sec.b) != 0 {
		return nil, nil, fmt.Errorf("%w: dedup section", errCorrupt)
	}
	return d, snapshot, nil
}

// reader decodes little-endian and varint fields, remembering the first
// error so decoders check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// count reads an element count and rejects counts the remaining input
// cannot hold (each element needs at least min bytes), so corrupt input
// cannot make a decoder loop or allocate without bound.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}
