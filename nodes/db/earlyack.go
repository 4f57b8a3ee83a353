package db

import (
	"sync"

	"github.com/hashicorp/raft"
)

// earlyAckStore wraps the leader's raft log store for --unsafe-ack-before-commit.
// Raft's leader writes a new entry to its own log before it replicates it;
// this wrapper tells the waiting request its index at that moment, so the
// write is acknowledged while the leader is still the only node holding it.
// That is the classic async-replication bug, kept on purpose so faultline's
// lost-write checker has something to catch.
type earlyAckStore struct {
	raft.LogStore

	mu      sync.Mutex
	waiters map[uint64]chan uint64 // request id → receives the entry's index
}

func newEarlyAckStore(s raft.LogStore) *earlyAckStore {
	return &earlyAckStore{LogStore: s, waiters: map[uint64]chan uint64{}}
}

// register returns the channel that receives reqID's index once stored, and
// a func to drop the registration when the caller stops waiting.
func (s *earlyAckStore) register(reqID uint64) (<-chan uint64, func()) {
	ch := make(chan uint64, 1)
	s.mu.Lock()
	s.waiters[reqID] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.waiters, reqID)
		s.mu.Unlock()
	}
}

func (s *earlyAckStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *earlyAckStore) StoreLogs(logs []*raft.Log) error {
	if err := s.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) == 0 {
		return nil
	}
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		id, ok := commandReqID(l.Data)
		if !ok {
			continue
		}
		if ch, ok := s.waiters[id]; ok {
			ch <- l.Index
			delete(s.waiters, id)
		}
	}
	return nil
}
