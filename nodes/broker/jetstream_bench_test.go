package broker

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// startJetStream runs n nats-server processes with JetStream on loopback
// ports (clustered when n > 1) and returns a client URL. The processes are
// killed at the end of the benchmark.
func startJetStream(b *testing.B, n int) string {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		b.Skip("nats-server not installed (apt-get install nats-server)")
	}
	ports := make([]string, n)
	cports := make([]string, n)
	for i := range n {
		ports[i] = portOf(b, freeAddr(b))
		cports[i] = portOf(b, freeAddr(b))
	}
	dir := b.TempDir()
	for i := range n {
		args := []string{"-js", "-a", "127.0.0.1", "-p", ports[i], "-n", fmt.Sprintf("js-%d", i), "-sd", filepath.Join(dir, fmt.Sprint(i))}
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, "nats://127.0.0.1:"+cports[j])
				}
			}
			args = append(args, "--cluster_name", "bench", "--cluster", "nats://127.0.0.1:"+cports[i], "--routes", strings.Join(routes, ","))
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			b.Fatalf("start nats-server: %v", err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	waitFor(b, "nats-server to listen", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+ports[0], time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return "nats://127.0.0.1:" + ports[0]
}

func portOf(b *testing.B, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	return port
}

// benchJetStream publishes 100-byte messages asynchronously (JetStream's
// batched mode: many publishes in flight, acknowledged after the stream's
// replicas have them) and measures the same figures as benchFaultline.
func benchJetStream(b *testing.B, replicas int) benchResult {
	url := startJetStream(b, replicas)
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	// The JetStream cluster needs a meta leader before it takes a stream.
	waitFor(b, "a JetStream stream", func() bool {
		_, err := js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench"}, Replicas: replicas, Storage: nats.FileStorage})
		return err == nil
	})
	payload := make([]byte, benchMsgSize)
	lat := make([]time.Duration, b.N)
	type inflight struct {
		f    nats.PubAckFuture
		sent time.Time
	}
	futures := make(chan inflight, 8192)
	waited := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		// Acks arrive in publish order, so waiting on them in order times
		// each one when it lands.
		i := 0
		for in := range futures {
			select {
			case <-in.f.Ok():
			case err := <-in.f.Err():
				waited <- fmt.Errorf("message %d: %w", i, err)
				for range futures {
				}
				return
			case <-ctx.Done():
				waited <- ctx.Err()
				for range futures {
				}
				return
			}
			lat[i] = time.Since(in.sent)
			i++
		}
		waited <- nil
	}()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		sent := time.Now()
		// Block (like the faultline producer) rather than fail while the
		// in-flight window is full.
		f, err := js.PublishAsync("bench", payload, nats.StallWait(time.Minute))
		if err != nil {
			close(futures)
			b.Fatal(err)
		}
		futures <- inflight{f, sent}
	}
	close(futures)
	if err := <-waited; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return report(b, lat, elapsed)
}
