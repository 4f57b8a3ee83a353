package db

import (
	"sync"

	"github.com/hashicorp/raft"
)

// closingStable guards raft's StableStore across shutdown. hashicorp/raft
// handles heartbeats on the transport's connection goroutines, which neither
// Raft.Shutdown nor NetworkTransport.Close waits for; one still in flight can
// save a new term after the store was closed, and raft panics when that save
// fails. Failing the save would crash the process, and pretending it
// succeeded would acknowledge what was never persisted, so a save after close
// waits until the process ends: the heartbeat is never answered.
type closingStable struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
	never  chan struct{}
}

func newClosingStable(s raft.StableStore) *closingStable {
	return &closingStable{StableStore: s, never: make(chan struct{})}
}

func (s *closingStable) Set(key, val []byte) error {
	s.enter()
	defer s.mu.RUnlock()
	return s.StableStore.Set(key, val)
}

func (s *closingStable) SetUint64(key []byte, val uint64) error {
	s.enter()
	defer s.mu.RUnlock()
	return s.StableStore.SetUint64(key, val)
}

// enter takes the read lock for a write, or parks the caller forever once
// the store is closed.
func (s *closingStable) enter() {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		<-s.never
	}
}

// close waits for writes in flight and turns later ones away; call it before
// closing the underlying store.
func (s *closingStable) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
