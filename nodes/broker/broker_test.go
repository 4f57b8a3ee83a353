package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/log"
	"github.com/faultline/faultline/nodes/broker/protocol"
)

func startCluster(t *testing.T, unclean bool) (*testCluster, *client.Client) {
	return startClusterLag(t, unclean, time.Second)
}

func startClusterLag(t *testing.T, unclean bool, lag time.Duration) (*testCluster, *client.Client) {
	t.Helper()
	c := newTestCluster(t, 3, unclean, lag)
	cl := client.New(c.bootstrap(), client.RequestTimeout(5*time.Second))
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, "3 registered brokers", func() bool {
		m, err := cl.Refresh(ctx)
		return err == nil && len(m.Brokers) == 3
	})
	return c, cl
}

// consumeAll reads every committed record of a partition, checking that no
// fetch returns a record at or above the high watermark it reports.
func consumeAll(t *testing.T, cl *client.Client, topic string, partition int32) []log.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	con := client.NewConsumer(cl, topic, client.FetchMaxWait(50*time.Millisecond), client.FetchMaxBytes(64<<10))
	var out []log.Record
	for {
		f, err := con.Poll(ctx, partition)
		require.NoError(t, err)
		for _, r := range f.Records {
			require.Less(t, r.Offset, f.HighWatermark, "record above the high watermark")
		}
		out = append(out, f.Records...)
		if con.Position(partition) >= f.HighWatermark {
			return out
		}
	}
}

func TestProduceConsumeOrderPerPartition(t *testing.T) {
	_, cl := startCluster(t, false)
	createTopic(t, cl, "orders", client.TopicConfig{Partitions: 3, MinISR: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tests := []struct {
		name        string
		partitioner client.Partitioner
	}{
		{"key hash", client.HashPartitioner()},
		{"round robin", client.RoundRobin()},
	}
	sent := 0
	for _, tt := range tests {
		p, err := client.NewProducer(ctx, cl, "orders", client.WithPartitioner(tt.partitioner), client.Linger(2*time.Millisecond), client.BatchSize(100))
		require.NoError(t, err)
		var mu sync.Mutex
		var errs []error
		perPartition := map[int32]int{}
		for i := range 600 {
			key := fmt.Sprintf("key-%d", i%7)
			p.SendAsync(ctx, client.Message{Key: []byte(key), Value: []byte(fmt.Sprintf("%s|%s|%d", tt.name, key, i))}, func(r client.Result) {
				mu.Lock()
				defer mu.Unlock()
				if r.Err != nil {
					errs = append(errs, r.Err)
				}
				perPartition[r.Partition]++
			})
		}
		require.NoError(t, p.Close())
		require.Empty(t, errs)
		sent += 600
		assert.Len(t, perPartition, 3, "%s spreads over every partition", tt.name)
	}

	total := 0
	keyPartition := map[string]int32{}
	for part := int32(0); part < 3; part++ {
		last := map[string]int{} // per producer run and key, the last sequence seen
		for _, r := range consumeAll(t, cl, "orders", part) {
			total++
			fields := strings.Split(string(r.Value), "|")
			require.Len(t, fields, 3)
			seq, err := strconv.Atoi(fields[2])
			require.NoError(t, err)
			run := fields[0] + fields[1]
			if prev, ok := last[run]; ok {
				require.Greater(t, seq, prev, "order within a partition")
			}
			last[run] = seq
			if fields[0] == "key hash" {
				if kp, ok := keyPartition[fields[1]]; ok {
					require.Equal(t, kp, part, "one key, one partition")
				}
				keyPartition[fields[1]] = part
			}
		}
	}
	assert.Equal(t, sent, total)
}

// ackLog records what a producer was told, to check against what consumers
// read at the end.
type ackLog struct {
	mu    sync.Mutex
	acked map[int64]string // offset -> value (one partition)
	order []int            // sequence numbers in ack order
	fails int
}

func TestAcksAllSurvivesRepeatedLeaderKills(t *testing.T) {
	c, cl := startCluster(t, false)
	const topic = "durable"
	createTopic(t, cl, topic, client.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinISR: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	p, err := client.NewProducer(ctx, cl, topic, client.Acks(client.AcksAll), client.Linger(time.Millisecond),
		client.BatchSize(50), client.DeliveryTimeout(20*time.Second))
	require.NoError(t, err)
	acks := &ackLog{acked: map[int64]string{}}
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		// Bounded in count and by ctx; waits for each batch of 20 so the
		// test controls the rate.
		for i := 0; i < 200000; i += 20 {
			select {
			case <-stop:
				return
			default:
			}
			var wg sync.WaitGroup
			for j := i; j < i+20; j++ {
				wg.Add(1)
				v := fmt.Sprintf("m-%06d", j)
				p.SendAsync(ctx, client.Message{Value: []byte(v)}, func(r client.Result) {
					defer wg.Done()
					acks.mu.Lock()
					defer acks.mu.Unlock()
					if r.Err != nil {
						acks.fails++
						return
					}
					acks.acked[r.Offset] = v
					acks.order = append(acks.order, j)
				})
			}
			wg.Wait()
		}
	}()

	countAcked := func() int {
		acks.mu.Lock()
		defer acks.mu.Unlock()
		return len(acks.acked)
	}
	var failovers []time.Duration
	for kill := range 3 {
		before := countAcked()
		waitFor(t, "progress before the kill", func() bool { return countAcked() > before+200 })
		pm := c.ledPartition(topic, 0)
		waitFor(t, "a full ISR", func() bool {
			pm = c.partitionMeta(topic, 0)
			return len(pm.ISR) == 3 && pm.Leader > 0
		})
		victim := pm.Leader
		t.Logf("kill %d: leader %d (epoch %d), %d acked so far", kill, victim, pm.Epoch, countAcked())
		killed := time.Now()
		c.kill(victim)
		waitFor(t, "a new leader", func() bool {
			pm := c.ledPartition(topic, 0)
			return pm.Leader > 0 && pm.Leader != victim
		})
		atKill := countAcked()
		waitFor(t, "acks after the failover", func() bool { return countAcked() > atKill+50 })
		failovers = append(failovers, time.Since(killed))
		c.start(victim)
	}
	close(stop)
	<-produced
	require.NoError(t, p.Close())
	t.Logf("failover (kill to acks flowing again): %v", failovers)

	waitFor(t, "a leader", func() bool { return c.partitionMeta(topic, 0).Leader > 0 })
	recs := consumeAll(t, cl, topic, 0)
	byOffset := map[int64]string{}
	for _, r := range recs {
		byOffset[r.Offset] = string(r.Value)
	}
	acks.mu.Lock()
	defer acks.mu.Unlock()
	lost := 0
	for off, v := range acks.acked {
		if byOffset[off] != v {
			lost++
		}
	}
	require.Zero(t, lost, "acknowledged records lost (of %d acked, %d failed sends)", len(acks.acked), acks.fails)
	// Order: the first copy of each value appears in send order.
	seen := map[string]bool{}
	prev, dups := -1, 0
	for _, r := range recs {
		v := string(r.Value)
		if seen[v] {
			dups++
			continue
		}
		seen[v] = true
		seq, err := strconv.Atoi(strings.TrimPrefix(v, "m-"))
		require.NoError(t, err)
		require.Greater(t, seq, prev, "order in the partition")
		prev = seq
	}
	t.Logf("acked %d, failed %d, consumed %d, duplicates %d", len(acks.acked), acks.fails, len(recs), dups)
	require.Greater(t, len(acks.acked), 600)
}

func TestFewerInSyncThanMinimumRefusesProduce(t *testing.T) {
	c, cl := startCluster(t, false)
	const topic = "strict"
	createTopic(t, cl, topic, client.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinISR: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pm := c.ledPartition(topic, 0)
	for _, id := range pm.Replicas {
		if id != pm.Leader {
			c.kill(id)
		}
	}
	// Wait for the leader itself to know (its metadata copy may trail the
	// controller's); before that a write can be appended and then refused
	// with NotEnoughReplicasAfterAppend, unacknowledged but visible.
	waitFor(t, "the leader to see its ISR shrink", func() bool {
		lp := c.brokers[pm.Leader].lookup(topic, 0)
		if lp == nil {
			return false
		}
		lp.mu.Lock()
		defer lp.mu.Unlock()
		return len(lp.isr) == 1
	})
	p, err := client.NewProducer(ctx, cl, topic, client.DeliveryTimeout(time.Second))
	require.NoError(t, err)
	for i := range 5 {
		r := p.Send(ctx, client.Message{Value: []byte(fmt.Sprint(i))})
		require.ErrorIs(t, r.Err, protocol.NotEnoughReplicas)
		require.Equal(t, int64(-1), r.Offset)
	}
	require.NoError(t, p.Close())
	assert.Empty(t, consumeAll(t, cl, topic, 0), "nothing was acknowledged, nothing is visible")

	// acks=1 still works: min.insync only guards acks=all.
	p1, err := client.NewProducer(ctx, cl, topic, client.Acks(client.AcksLeader))
	require.NoError(t, err)
	require.NoError(t, p1.Send(ctx, client.Message{Value: []byte("x")}).Err)
	require.NoError(t, p1.Close())
}

func TestConsumersNeverReadAboveHighWatermark(t *testing.T) {
	// A lag window long enough that the dead followers are still in the
	// ISR while the test looks.
	c, cl := startClusterLag(t, false, 5*time.Second)
	const topic = "hw"
	createTopic(t, cl, topic, client.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinISR: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := client.NewProducer(ctx, cl, topic, client.Acks(client.AcksLeader))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Send(ctx, client.Message{Value: []byte("committed")}).Err)
	waitFor(t, "the first record to commit", func() bool { return len(consumeAll(t, cl, topic, 0)) == 1 })

	// With both followers dead but still in the ISR, acks=1 writes reach the
	// leader's log and stay above the high watermark.
	pm := c.ledPartition(topic, 0)
	for _, id := range pm.Replicas {
		if id != pm.Leader {
			c.kill(id)
		}
	}
	for i := range 10 {
		require.NoError(t, p.Send(ctx, client.Message{Value: []byte(fmt.Sprint("uncommitted-", i))}).Err)
	}
	con := client.NewConsumer(cl, topic, client.FetchMaxWait(10*time.Millisecond))
	f, err := con.Fetch(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, f.Records, 1, "only the committed record is visible")
	assert.Equal(t, int64(1), f.HighWatermark)
	f, err = con.Fetch(ctx, 0, 1)
	require.NoError(t, err)
	for _, r := range f.Records {
		require.Less(t, r.Offset, f.HighWatermark)
	}

	// Once the leader drops the dead followers from the ISR, the records
	// commit and become visible.
	waitFor(t, "the ISR to shrink", func() bool { return len(c.partitionMeta(topic, 0).ISR) == 1 })
	waitFor(t, "the records to commit", func() bool { return len(consumeAll(t, cl, topic, 0)) == 11 })
}

func TestUncleanElection(t *testing.T) {
	tests := []struct {
		name     string
		unclean  bool
		wantLoss bool
	}{
		{"clean election waits for the in-sync replica", false, false},
		{"unclean election loses acknowledged records", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cl := startCluster(t, tt.unclean)
			const topic = "risky"
			createTopic(t, cl, topic, client.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinISR: 1})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pm := c.ledPartition(topic, 0)
			leader := pm.Leader
			var followers []int32
			for _, id := range pm.Replicas {
				if id != leader {
					followers = append(followers, id)
					c.kill(id)
				}
			}
			waitFor(t, "the ISR to shrink to the leader", func() bool {
				return len(c.partitionMeta(topic, 0).ISR) == 1
			})
			p, err := client.NewProducer(ctx, cl, topic, client.Acks(client.AcksLeader))
			require.NoError(t, err)
			acked := map[int64]string{}
			for i := range 50 {
				v := fmt.Sprint("v", i)
				r := p.Send(ctx, client.Message{Value: []byte(v)})
				require.NoError(t, r.Err)
				acked[r.Offset] = v
			}
			require.NoError(t, p.Close())

			// The only in-sync replica dies; the out-of-sync ones return.
			c.kill(leader)
			for _, id := range followers {
				c.start(id)
			}
			if tt.unclean {
				waitFor(t, "an unclean leader", func() bool {
					pm := c.ledPartition(topic, 0)
					return pm.Leader > 0 && pm.Leader != leader
				})
			} else {
				// Offline once the dead leader is fenced, and until the
				// in-sync replica is back: check a while.
				waitFor(t, "the dead leader fenced", func() bool {
					return c.partitionMeta(topic, 0).Leader == -1
				})
				for range 10 {
					pm := c.partitionMeta(topic, 0)
					require.Equal(t, int32(-1), pm.Leader, "old leader %d, followers %v: %+v", leader, followers, pm)
					time.Sleep(100 * time.Millisecond)
				}
				c.start(leader)
				waitFor(t, "the in-sync replica to lead again", func() bool {
					return c.partitionMeta(topic, 0).Leader == leader
				})
			}
			recs := consumeAll(t, cl, topic, 0)
			got := map[int64]string{}
			for _, r := range recs {
				got[r.Offset] = string(r.Value)
			}
			lost := 0
			for off, v := range acked {
				if got[off] != v {
					lost++
				}
			}
			if tt.wantLoss {
				assert.Equal(t, len(acked), lost, "the unclean leader never had them")
				// The old leader rejoins as a follower and truncates its
				// diverged log: the loss is permanent.
				c.start(leader)
				waitFor(t, "the old leader back in sync", func() bool {
					return len(c.partitionMeta(topic, 0).ISR) == 3
				})
				assert.Empty(t, consumeAll(t, cl, topic, 0))
			} else {
				assert.Zero(t, lost)
			}
		})
	}
}

func TestUnknownTopicAndBadRequests(t *testing.T) {
	_, cl := startCluster(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	short, shortCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer shortCancel()
	_, err := client.NewProducer(short, cl, "nope")
	require.ErrorIs(t, err, protocol.UnknownTopicOrPartition)
	err = cl.CreateTopic(ctx, "big", client.TopicConfig{Partitions: 1, ReplicationFactor: 4})
	require.True(t, errors.Is(err, protocol.InvalidReplicationFactor), "got %v", err)
	createTopic(t, cl, "dup", client.TopicConfig{Partitions: 1})
	require.ErrorIs(t, cl.CreateTopic(ctx, "dup", client.TopicConfig{Partitions: 1}), protocol.TopicAlreadyExists)
}
