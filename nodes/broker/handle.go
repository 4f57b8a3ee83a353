package broker

import (
	"context"
	"errors"
	"time"

	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

// Bounds on client-supplied waits so a request cannot pin a handler.
const (
	maxWait      = 30 * time.Second
	maxFetchSize = 8 << 20
)

func (b *Broker) handle(ctx context.Context, req protocol.Request) protocol.Message {
	switch r := req.(type) {
	case *protocol.ProduceRequest:
		return b.produce(ctx, r)
	case *protocol.FetchRequest:
		return b.fetch(ctx, r)
	case *protocol.MetadataRequest:
		st, _ := b.ctrl.Watch()
		leader, _ := b.ctrl.Leader()
		return st.Metadata(leader, r.Topics)
	case *protocol.HeartbeatRequest, *protocol.AlterISRRequest:
		return errResponse(b.controllerLocal(ctx, req))
	case *protocol.CreateTopicRequest:
		b.topicDefaults(r)
		return errResponse(b.toController(ctx, r))
	}
	return &protocol.ErrResponse{Err: protocol.InvalidRequest}
}

// topicDefaults fills what the client left to the broker's configuration.
func (b *Broker) topicDefaults(r *protocol.CreateTopicRequest) {
	if r.ReplicationFactor == 0 {
		r.ReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	if r.MinISR == 0 {
		r.MinISR = b.cfg.DefaultMinISR
	}
	r.Unclean = r.Unclean || b.cfg.UncleanLeaderElection
}

func errResponse(err error) *protocol.ErrResponse {
	if err == nil {
		return &protocol.ErrResponse{}
	}
	return &protocol.ErrResponse{Err: protocol.CodeOf(err), Message: err.Error()}
}

func clampWait(ms int32) time.Duration {
	return min(max(time.Duration(ms)*time.Millisecond, 0), maxWait)
}

func (b *Broker) produce(ctx context.Context, r *protocol.ProduceRequest) *protocol.ProduceResponse {
	fail := func(c protocol.ErrorCode) *protocol.ProduceResponse {
		return &protocol.ProduceResponse{Err: c, BaseOffset: -1}
	}
	p := b.lookup(r.Topic, r.Partition)
	if p == nil {
		return fail(protocol.UnknownTopicOrPartition)
	}
	if len(r.Records) == 0 {
		return fail(protocol.InvalidRequest)
	}
	recs := make([]log.Record, len(r.Records))
	for i, rec := range r.Records {
		recs[i] = log.Record{Key: rec.Key, Value: rec.Value}
	}

	p.mu.Lock()
	if p.leader != b.cfg.ID {
		p.mu.Unlock()
		return fail(protocol.NotLeader)
	}
	if r.Acks == -1 && int32(len(p.isr)) < p.minISR {
		p.mu.Unlock()
		return fail(protocol.NotEnoughReplicas)
	}
	epoch := p.epoch
	first, last, err := p.log.Append(epoch, recs)
	if err != nil {
		p.mu.Unlock()
		b.cfg.Logger.Error("append", "topic", r.Topic, "partition", r.Partition, "error", err)
		return fail(protocol.Unknown)
	}
	p.advanceHWLocked()
	p.notifyLocked()
	p.mu.Unlock()

	if r.Acks != -1 {
		return &protocol.ProduceResponse{BaseOffset: first}
	}
	wctx, cancel := context.WithTimeout(ctx, clampWait(r.TimeoutMs))
	defer cancel()
	for {
		p.mu.Lock()
		leader, curEpoch, hw, isr, minISR, changed := p.leader, p.epoch, p.hw, len(p.isr), p.minISR, p.changed
		p.mu.Unlock()
		switch {
		case leader != b.cfg.ID || curEpoch != epoch:
			// The records may survive under the new leader or not: the
			// producer must retry (at-least-once).
			return fail(protocol.NotLeader)
		case hw > last && int32(isr) >= minISR:
			return &protocol.ProduceResponse{BaseOffset: first}
		case hw > last:
			return fail(protocol.NotEnoughReplicasAfterAppend)
		}
		select {
		case <-changed:
		case <-wctx.Done():
			return fail(protocol.RequestTimedOut)
		}
	}
}

func (b *Broker) fetch(ctx context.Context, r *protocol.FetchRequest) *protocol.FetchResponse {
	resp := &protocol.FetchResponse{DivergingEpoch: -1, DivergingEnd: -1}
	p := b.lookup(r.Topic, r.Partition)
	if p == nil {
		resp.Err = protocol.UnknownTopicOrPartition
		return resp
	}
	maxBytes := int(min(max(r.MaxBytes, 1), maxFetchSize))
	wctx, cancel := context.WithTimeout(ctx, clampWait(r.MaxWaitMs))
	defer cancel()
	for {
		p.mu.Lock()
		if p.leader != b.cfg.ID {
			p.mu.Unlock()
			resp.Err = protocol.NotLeader
			return resp
		}
		resp.LeaderEpoch = p.epoch
		if r.ReplicaID >= 0 {
			if div := b.followerFetchLocked(p, r, resp); div {
				p.mu.Unlock()
				return resp
			}
		}
		upTo := p.hw
		if r.ReplicaID >= 0 {
			upTo = p.log.EndOffset()
		}
		resp.HighWatermark, resp.LogStart = p.hw, p.log.StartOffset()
		changed := p.changed
		p.mu.Unlock()

		data, err := p.log.Read(r.Offset, maxBytes, upTo)
		if errors.Is(err, log.ErrOutOfRange) {
			resp.Err = protocol.OffsetOutOfRange
			return resp
		}
		if err != nil {
			b.cfg.Logger.Error("read", "topic", r.Topic, "partition", r.Partition, "error", err)
			resp.Err = protocol.Unknown
			return resp
		}
		if len(data) > 0 {
			resp.Records = data
			return resp
		}
		select {
		case <-changed:
		case <-wctx.Done():
			return resp
		}
	}
}

// followerFetchLocked records a follower's position (its fetch offset is
// its log end) and reports whether its log diverged from the leader's, in
// which case resp tells it where to truncate.
func (b *Broker) followerFetchLocked(p *partition, r *protocol.FetchRequest, resp *protocol.FetchResponse) bool {
	if r.Offset > 0 && r.LastFetchedEpoch >= 0 {
		epoch, end := p.log.EpochEnd(r.LastFetchedEpoch)
		if epoch != r.LastFetchedEpoch || end < r.Offset {
			resp.DivergingEpoch, resp.DivergingEnd = epoch, end
			return true
		}
	}
	f := p.followers[r.ReplicaID]
	if f == nil {
		return false // not a replica of this partition
	}
	if r.Offset >= f.leoAtLastFetch {
		f.caughtUp = time.Now()
	}
	f.leo = r.Offset
	f.leoAtLastFetch = p.log.EndOffset()
	p.advanceHWLocked()
	return false
}
