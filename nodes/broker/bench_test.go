package broker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes/broker/client"
)

const benchMsgSize = 100

// benchResult is one run's throughput and publish-to-ack latency.
type benchResult struct {
	msgsPerSec float64
	p99        time.Duration
}

func report(b *testing.B, lat []time.Duration, elapsed time.Duration) benchResult {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := benchResult{msgsPerSec: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p99 = lat[len(lat)*99/100]
	}
	b.ReportMetric(r.msgsPerSec, "msgs/s")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op") // per-op time is meaningless next to msgs/s
	return r
}

// BenchmarkPublish100B measures a batched producer sending 100-byte
// messages to one partition, acknowledged by the leader alone (1 replica)
// or after replication to all three (acks=all, min.insync=2), side by side
// with NATS JetStream (1 and 3 replicas) when nats-server is installed.
// Latency is publish to acknowledgement with the producer saturating the
// system, so it includes queueing in the client.
func BenchmarkPublish100B(b *testing.B) {
	results := map[string]benchResult{}
	var mu sync.Mutex
	record := func(name string, r benchResult) {
		mu.Lock()
		defer mu.Unlock()
		results[name] = r
	}
	for _, replicas := range []int{1, 3} {
		name := fmt.Sprintf("faultline/replicas=%d", replicas)
		b.Run(name, func(b *testing.B) { record(name, benchFaultline(b, replicas)) })
		jsName := fmt.Sprintf("jetstream/replicas=%d", replicas)
		b.Run(jsName, func(b *testing.B) { record(jsName, benchJetStream(b, replicas)) })
	}
	for _, replicas := range []int{1, 3} {
		f, okF := results[fmt.Sprintf("faultline/replicas=%d", replicas)]
		j, okJ := results[fmt.Sprintf("jetstream/replicas=%d", replicas)]
		if okF && okJ && j.msgsPerSec > 0 && f.p99 > 0 {
			// Printed, not logged: `make bench` shows it without -v.
			fmt.Printf("replicas=%d: faultline %.0f msgs/s p99 %v | jetstream %.0f msgs/s p99 %v | throughput ratio %.2f, p99 ratio %.2f\n",
				replicas, f.msgsPerSec, f.p99, j.msgsPerSec, j.p99, f.msgsPerSec/j.msgsPerSec, float64(f.p99)/float64(j.p99))
		}
	}
}

var benchTopics int

func benchFaultline(b *testing.B, replicas int) benchResult {
	c := newTestCluster(b, 3, false, 5*time.Second)
	cl := client.New(c.bootstrap(), client.RequestTimeout(10*time.Second))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	waitFor(b, "3 registered brokers", func() bool {
		m, err := cl.Refresh(ctx)
		return err == nil && len(m.Brokers) == 3
	})
	benchTopics++
	topic := fmt.Sprintf("bench-%d", benchTopics)
	minISR := min(replicas, 2)
	if err := cl.CreateTopic(ctx, topic, client.TopicConfig{Partitions: 1, ReplicationFactor: int32(replicas), MinISR: int32(minISR)}); err != nil {
		b.Fatal(err)
	}
	c.ledPartition(topic, 0)
	p, err := client.NewProducer(ctx, cl, topic, client.Acks(client.AcksAll), client.BatchSize(2000), client.Linger(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchMsgSize)
	lat := make([]time.Duration, b.N)
	var failed sync.Map
	var wg sync.WaitGroup
	wg.Add(b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		sent := time.Now()
		p.SendAsync(ctx, client.Message{Value: payload}, func(r client.Result) {
			lat[i] = time.Since(sent)
			if r.Err != nil {
				failed.Store(i, r.Err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	failed.Range(func(k, v any) bool {
		b.Fatalf("message %v: %v", k, v)
		return false
	})
	_ = p.Close()
	return report(b, lat, elapsed)
}
