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
		// Both servers take the mix in alternating slices, so load from the
		// shared machine weighs on both alike; one run outlasts -benchtime,
		// so it runs once whatever b.N is.
		b.Run(mix.name, func(b *testing.B) {
			var names []string
			var loads []*mixLoad
			for _, srv := range servers {
				if srv.name == "memcached" {
					if _, err := exec.LookPath("memcached"); err != nil {
						fmt.Println("memcached not installed (apt-get install -y memcached): measuring our cache alone")
						continue
					}
				}
				l, err := newMixLoad(startProcess(b, srv.start), mix.setEvery)
				if err != nil {
					b.Fatalf("%s: %v", srv.name, err)
				}
				defer l.mc.Close()
				names, loads = append(names, srv.name), append(loads, l)
			}
			b.ResetTimer()
			for round := range benchRounds {
				for k := range loads {
					i := (k + round) % len(loads)
					if err := loads[i].run(benchSlice); err != nil {
						b.Fatalf("%s: %v", names[i], err)
					}
				}
			}
			b.StopTimer()
			for i, l := range loads {
				r := l.result()
				results[mix.name+"/"+names[i]] = r
				b.ReportMetric(r.ops, names[i]+"-ops/s")
			}
		})
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

const (
	benchRounds = 8
	benchSlice  = 500 * time.Millisecond
)

// mixLoad accumulates slices of one mix against one server.
type mixLoad struct {
	mc       *memcache.Client
	setEvery int
	next     atomic.Int64
	hist     *hdrhistogram.Histogram
	n        int64
	elapsed  time.Duration
}

func newMixLoad(addr string, setEvery int) (*mixLoad, error) {
	mc := memcache.New(addr)
	mc.Timeout = 10 * time.Second
	mc.MaxIdleConns = benchWorkers
	value := make([]byte, benchValue)
	for i := range benchKeys {
		if err := mc.Set(&memcache.Item{Key: benchKey(i), Value: value}); err != nil {
			mc.Close()
			return nil, fmt.Errorf("preload: %w", err)
		}
	}
	return &mixLoad{mc: mc, setEvery: setEvery, hist: hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)}, nil
}

func benchKey(i int) string { return "key:" + strconv.Itoa(i%benchKeys) }

func (l *mixLoad) result() mixResult {
	return mixResult{ops: float64(l.n) / l.elapsed.Seconds(),
		p50: float64(l.hist.ValueAtQuantile(50)), p99: float64(l.hist.ValueAtQuantile(99))}
}

// run keeps benchWorkers clients busy with the mix for d.
func (l *mixLoad) run(d time.Duration) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		count    atomic.Int64
	)
	value := make([]byte, benchValue)
	start := time.Now()
	deadline := start.Add(d)
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var err error
			for time.Now().Before(deadline) {
				i := int(l.next.Add(1)) - 1
				t0 := time.Now()
				if l.setEvery > 0 && i%l.setEvery == 0 {
					err = l.mc.Set(&memcache.Item{Key: benchKey(i * 7919), Value: value})
				} else {
					_, err = l.mc.Get(benchKey(i * 7919))
				}
				if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
					break
				}
				err = nil
				h.RecordValue(max(1, time.Since(t0).Microseconds()))
				count.Add(1)
			}
			mu.Lock()
			l.hist.Merge(h)
			if firstErr == nil && err != nil {
				firstErr = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	l.elapsed += time.Since(start)
	l.n += count.Load()
	return firstErr
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
