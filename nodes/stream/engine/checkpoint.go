package engine

import (
	"context"
	"sync"
)

// BatchStore is a StateStore that can save several tasks' checkpoints in
// one write. A replicated store pays a consensus round and an fsync per
// write: one write per worker per checkpoint round instead of one per task
// is what lets a worker keep its state there at full speed.
type BatchStore interface {
	StateStore
	// SaveBatch saves every checkpoint it can and returns the error of each
	// task whose checkpoint it could not save (nil or empty: all saved).
	SaveBatch(ctx context.Context, cps map[int32][]byte) map[int32]error
}

type saveReq struct {
	task int32
	data []byte
	done chan error // buffered: the checkpointer never waits for the task
}

// checkpointer saves the tasks' checkpoints off their goroutines, so a task
// keeps processing while its state is written; the acks that wait for the
// checkpoint are released when it is saved. Requests that arrive while a
// write is under way go together in the next one (group commit).
type checkpointer struct {
	store StateStore
	reqs  chan saveReq
}

func newCheckpointer(store StateStore) *checkpointer {
	return &checkpointer{store: store, reqs: make(chan saveReq, 256)}
}

// submit queues a checkpoint; the returned channel yields the save's
// result. A task has at most one save in flight, so the queue (one slot per
// task) does not fill.
func (c *checkpointer) submit(ctx context.Context, task int32, data []byte) <-chan error {
	r := saveReq{task: task, data: data, done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		r.done <- ctx.Err()
	}
	return r.done
}

func (c *checkpointer) run(ctx context.Context) {
	var batch []saveReq
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		c.save(ctx, batch)
	}
}

func (c *checkpointer) save(ctx context.Context, batch []saveReq) {
	bs, ok := c.store.(BatchStore)
	if !ok || len(batch) == 1 {
		var wg sync.WaitGroup
		for _, r := range batch {
			wg.Go(func() { r.done <- c.store.Save(ctx, r.task, r.data) })
		}
		wg.Wait()
		return
	}
	cps := make(map[int32][]byte, len(batch))
	for _, r := range batch {
		cps[r.task] = r.data
	}
	errs := bs.SaveBatch(ctx, cps)
	for _, r := range batch {
		r.done <- errs[r.task]
	}
}
