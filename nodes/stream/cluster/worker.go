package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
)

// WorkerConfig is one worker (Storm's supervisor and worker in one).
type WorkerConfig struct {
	ID        string
	Master    string        // base URL, e.g. http://127.0.0.1:7000
	Listener  net.Listener  // accepts tuples from other workers
	Advertise string        // address others dial; default the listener's
	Every     time.Duration // heartbeat period
	Client    *http.Client
	// Store keeps the worker's checkpoints; nil keeps them at the master.
	// A replicated store the worker writes itself (DBStore.States) keeps
	// the worker going while the master is down.
	Store  engine.StateStore
	Engine []engine.Option
}

// RunWorker heartbeats to the master and applies each new assignment until
// ctx ends. The master being unreachable stops nothing: the worker keeps
// running its tasks and keeps trying.
func RunWorker(ctx context.Context, t *topo.Topology, c WorkerConfig) (*engine.Worker, <-chan error) {
	if c.Advertise == "" {
		c.Advertise = c.Listener.Addr().String()
	}
	if c.Every <= 0 {
		c.Every = 500 * time.Millisecond
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 2 * time.Second}
	}
	store := c.Store
	if store == nil {
		store = &HTTPStateStore{Base: c.Master, Worker: c.ID, Client: c.Client}
	}
	w := engine.Start(ctx, c.ID, t, c.Listener, append([]engine.Option{engine.WithStateStore(store)}, c.Engine...)...)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		errc <- heartbeatLoop(ctx, w, c)
		w.Wait()
	}()
	return w, errc
}

func heartbeatLoop(ctx context.Context, w *engine.Worker, c WorkerConfig) error {
	tick := time.NewTicker(c.Every)
	defer tick.Stop()
	var applied uint64
	for {
		a, err := beat(ctx, c)
		if err == nil && a.Version > applied {
			if err := w.Apply(a); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("worker %s: %w", c.ID, err)
			}
			applied = a.Version
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func beat(ctx context.Context, c WorkerConfig) (engine.Assignment, error) {
	var a engine.Assignment
	body, _ := json.Marshal(Heartbeat{ID: c.ID, Addr: c.Advertise})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Master+"/heartbeat", bytes.NewReader(body))
	if err != nil {
		return a, err
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return a, fmt.Errorf("heartbeat: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("heartbeat: %s", resp.Status)
	}
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

// HTTPStateStore keeps checkpoints at the master. With Worker set, the
// master refuses saves for tasks it no longer assigns to that worker.
type HTTPStateStore struct {
	Base   string
	Worker string
	Client *http.Client
}

// Save PUTs a checkpoint.
func (s *HTTPStateStore) Save(ctx context.Context, task int32, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/state/%d?worker=%s", s.Base, task, url.QueryEscape(s.Worker)), bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("save state %d: %w", task, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("save state %d: %s", task, resp.Status)
	}
	return nil
}

// Load GETs a checkpoint.
func (s *HTTPStateStore) Load(ctx context.Context, task int32) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/state/%d", s.Base, task), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("load state %d: %w", task, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load state %d: %s", task, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
