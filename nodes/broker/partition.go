package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/faultline/faultline/nodes/broker/controller"
	"github.com/faultline/faultline/nodes/broker/log"
)

// partition is one partition replica on this broker: its log, and the
// replication state this broker keeps as its leader or follower.
type partition struct {
	topic string
	id    int32
	log   *log.Log

	mu       sync.Mutex
	leader   int32
	epoch    int32
	replicas []int32
	isr      []int32 // as committed by the controller
	pending  []int32 // an ISR change in flight; counted for the HW meanwhile
	minISR   int32
	hw       int64
	// followers is the leader's view of each follower.
	followers map[int32]*follower
	// changed is closed (and replaced) on every append, high watermark or
	// metadata change: long-polling fetches and acks=all producers wait on it.
	changed chan struct{}
	// stopFetch stops this follower's fetcher; nil while leading.
	stopFetch func()
}

type follower struct {
	leo int64 // its log end, as of its last fetch
	// leoAtLastFetch is the leader's log end when it answered the previous
	// fetch: a follower that has reached it is caught up even while new
	// records keep arriving (Kafka's lastCaughtUpTime rule).
	leoAtLastFetch int64
	caughtUp       time.Time
}

func (p *partition) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// update applies the controller's view of the partition.
func (p *partition) update(me int32, t *controller.Topic, meta controller.Partition, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	roleChanged := meta.Leader != p.leader || meta.Epoch != p.epoch
	p.replicas, p.isr, p.minISR = meta.Replicas, meta.ISR, t.MinISR
	if roleChanged {
		p.leader, p.epoch = meta.Leader, meta.Epoch
		p.pending = nil
		p.followers = nil
		if meta.Leader == me {
			// A new leader gives every follower a full lag window to show
			// up before it asks to drop it from the ISR.
			p.followers = map[int32]*follower{}
			for _, r := range meta.Replicas {
				if r != me {
					p.followers[r] = &follower{leo: -1, caughtUp: now}
				}
			}
		}
	}
	if p.leader == me {
		p.advanceHWLocked()
	}
	p.notifyLocked()
}

// hwISR is the set the high watermark waits for: the committed ISR plus any
// member being added, so a replica joining cannot be elected while missing
// records committed during its admission.
func (p *partition) hwISRLocked() []int32 {
	set := slices.Clone(p.isr)
	for _, id := range p.pending {
		if !slices.Contains(set, id) {
			set = append(set, id)
		}
	}
	return set
}

// advanceHWLocked moves the leader's high watermark to the smallest log end
// across the in-sync set. It never moves back.
func (p *partition) advanceHWLocked() {
	hw := p.log.EndOffset()
	for _, id := range p.hwISRLocked() {
		if id == p.leader {
			continue
		}
		f := p.followers[id]
		if f == nil || f.leo < 0 {
			return // unknown position: cannot advance yet
		}
		hw = min(hw, f.leo)
	}
	if hw > p.hw {
		p.hw = hw
		p.notifyLocked()
	}
}

// wantISR is the ISR the leader would like: members lagging longer than
// maxLag dropped, caught-up replicas added.
func (p *partition) wantISRLocked(now time.Time, maxLag time.Duration) []int32 {
	var want []int32
	for _, r := range p.replicas {
		if r == p.leader {
			want = append(want, r)
			continue
		}
		f := p.followers[r]
		if f == nil {
			continue
		}
		inSync := slices.Contains(p.isr, r)
		fresh := now.Sub(f.caughtUp) <= maxLag
		switch {
		case inSync && fresh:
			want = append(want, r)
		case !inSync && fresh && f.leo >= p.hw && f.leo >= 0:
			want = append(want, r)
		}
	}
	slices.Sort(want)
	return want
}
