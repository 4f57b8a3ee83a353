package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/bradfitz/gomemcache/memcache"
)

// serveEnv makes the test binary a cache server process, so that the
// benchmark measures our server in its own process, as it measures memcached.
const serveEnv = "FAULTLINE_CACHE_BENCH_SERVE"

func TestServeHelper(t *testing.T) {
	addr := os.Getenv(serveEnv)
	if addr == "" {
		t.Skip("only runs as the benchmark's server process")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Run(ctx, []string{"--cache-listen", addr, "--listen", "127.0.0.1:0", "--memory", "64m"}); err != nil {
		t.Fatal(err)
	}
}

const (
	benchWorkers = 16
	benchKeys    = 10_000
	benchValue   = 100
)

// BenchmarkVsMemcached runs the same gomemcache workload, with the same
// client concurrency, against this cache and against Debian's memcached,
// each in its own process on loopback. Compare ops/s, p50 and p99 per mix.
func BenchmarkVsMemcached(b *testing.B) {
	servers := []struct {
		name  string
		start func(b *testing.B, addr string) *exec.Cmd
	}{
		{"faultline", func(b *testing.B, addr string) *exec.Cmd {
			exe, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^TestServeHelper$")
			cmd.Env = append(os.Environ(), serveEnv+"="+addr)
			return cmd
		}},
		{"memcached", func(b *testing.B, addr string) *exec.Cmd {
			bin, err := exec.LookPath("memcached")
			if err != nil {
				b.Skip("memcached not installed (apt-get install -y memcached); skipping the peer")
			}
			_, port, _ := net.SplitHostPort(addr)
			return exec.Command(bin, "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64", "-u", "root")
		}},
	}
	mixes := []struct {
		name     string
		setEvery int // one op in setEvery is a set, the rest gets; 1 = all sets
	}{
		{"get", 0}, {"set", 1}, {"get90set10", 10},
	}
	results := map[string]mixResult{}
	for _, mix := range mixes {
		for _, srv := range servers {
			b.Run(mix.name+"/"+srv.name, func(b *testing.B) {
				addr := startProcess(b, srv.start)
				results[mix.name+"/"+srv.name] = runMix(b, addr, mix.setEvery)
			})
		}
	}
	// Printed, not logged: a parent benchmark's log shows only with -v.
	fmt.Printf("\n%-22s %12s %10s %10s\n", "mix/server", "ops/s", "p50 µs", "p99 µs")
	for _, mix := range mixes {
		ours, ok1 := results[mix.name+"/faultline"]
		theirs, ok2 := results[mix.name+"/memcached"]
		for _, srv := range servers {
			if r, ok := results[mix.name+"/"+srv.name]; ok {
				fmt.Printf("%-22s %12.0f %10.0f %10.0f\n", mix.name+"/"+srv.name, r.ops, r.p50, r.p99)
			}
		}
		if ok1 && ok2 {
			fmt.Printf("%-22s %12.2f %10.2f %10.2f\n", mix.name+" ratio", ours.ops/theirs.ops, theirs.p50/ours.p50, theirs.p99/ours.p99)
		}
	}
	fmt.Printf("(ratio: ops/s ours/memcached, latency memcached/ours; higher is better; goal >= 0.70)\n\n")
}

// mixResult is one server's last measured run of one mix.
type mixResult struct{ ops, p50, p99 float64 }

func startProcess(b *testing.B, start func(*testing.B, string) *exec.Cmd) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := start(b, addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", cmd.Path, err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.Fatalf("%s never listened on %s", cmd.Path, addr)
	return ""
}

func runMix(b *testing.B, addr string, setEvery int) mixResult {
	mc := memcache.New(addr)
	mc.Timeout = 10 * time.Second
	mc.MaxIdleConns = benchWorkers
	defer mc.Close()
	value := make([]byte, benchValue)
	key := func(i int) string { return "key:" + strconv.Itoa(i%benchKeys) }
	for i := range benchKeys {
		if err := mc.Set(&memcache.Item{Key: key(i), Value: value}); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}

	var (
		next     atomic.Int64
		mu       sync.Mutex
		all      = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		firstErr error
		wg       sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var err error
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				t0 := time.Now()
				if setEvery > 0 && i%setEvery == 0 {
					err = mc.Set(&memcache.Item{Key: key(i * 7919), Value: value})
				} else {
					_, err = mc.Get(key(i * 7919))
				}
				if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
					break
				}
				err = nil
				h.RecordValue(max(1, time.Since(t0).Microseconds()))
			}
			mu.Lock()
			all.Merge(h)
			if firstErr == nil && err != nil {
				firstErr = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(fmt.Errorf("workload: %w", firstErr))
	}
	r := mixResult{ops: float64(b.N) / elapsed.Seconds(),
		p50: float64(all.ValueAtQuantile(50)), p99: float64(all.ValueAtQuantile(99))}
	b.ReportMetric(r.ops, "ops/s")
	b.ReportMetric(r.p50, "p50-µs")
	b.ReportMetric(r.p99, "p99-µs")
	return r
}
