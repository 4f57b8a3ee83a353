package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The lb under benchmark runs in its own process (this test binary again),
// as HAProxy does, so neither shares the client's CPU scheduler.
const (
	lbServeEnv   = "FAULTLINE_LB_BENCH_SERVE"
	lbBackendEnv = "FAULTLINE_LB_BENCH_BACKEND"
	haproxyBin   = "/usr/sbin/haproxy"
	benchClients = 16
	// benchBody is a small page, so the figures measure the proxy, not copies.
	benchBody = 256
)

func TestLBServeHelper(t *testing.T) {
	addr := os.Getenv(lbServeEnv)
	if addr == "" {
		t.Skip("only runs as the benchmark's lb process")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := Run(ctx, []string{"--listen", addr, "--backends", os.Getenv(lbBackendEnv),
		"--health-interval", "500ms", "--timeout", "10s"})
	if err != nil {
		t.Fatal(err)
	}
}

// peerResult is one side's measured load.
type peerResult struct {
	rps, p50, p99 float64 // p50 and p99 in µs
}

// Rounds of load, alternating the peers, so that whatever else the machine
// does at the time weighs on both alike (this machine is shared: load
// drifting between two back-to-back runs moved the ratio by ±0.2).
const (
	benchRounds = 8
	benchSlice  = 500 * time.Millisecond
)

// BenchmarkVsHAProxy sends the same keep-alive GETs, from the same client
// with the same concurrency, to the same loopback backend through this lb
// and through Debian's HAProxy, each in its own process, in alternating
// slices, and prints requests/s, p50 and p99 side by side with the
// lb/HAProxy ratios. It runs once whatever b.N is (one run outlasts
// -benchtime).
func BenchmarkVsHAProxy(b *testing.B) {
	body := strings.Repeat("x", benchBody)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer backend.Close()
	backendAddr := backend.Listener.Addr().String()

	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	lbCmd := func(addr string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestLBServeHelper$")
		cmd.Env = append(os.Environ(), lbServeEnv+"="+addr, lbBackendEnv+"="+backendAddr)
		return cmd
	}
	names := []string{"faultline-lb"}
	urls := []string{"http://" + startPeer(b, lbCmd) + "/x"}
	if _, err := os.Stat(haproxyBin); err != nil {
		fmt.Printf("HAProxy not installed at %s (apt-get install -y haproxy): measuring the lb alone\n", haproxyBin)
	} else {
		cfg := filepath.Join(b.TempDir(), "haproxy.cfg")
		haproxyCmd := func(addr string) *exec.Cmd {
			if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, backendAddr)), 0o600); err != nil {
				b.Fatal(err)
			}
			return exec.Command(haproxyBin, "-f", cfg, "-db")
		}
		names = append(names, "haproxy")
		urls = append(urls, "http://"+startPeer(b, haproxyCmd)+"/x")
	}

	loads := make([]*sliceLoad, len(urls))
	for i := range loads {
		loads[i] = newSliceLoad()
	}
	b.ResetTimer()
	for round := range benchRounds {
		for k := range urls {
			i := (k + round) % len(urls) // alternate who goes first
			if err := loads[i].run(urls[i], benchSlice); err != nil {
				b.Fatalf("%s: %v", names[i], err)
			}
		}
	}
	b.StopTimer()

	res := make([]peerResult, len(loads))
	fmt.Printf("\n%-14s %12s %10s %10s\n", "proxy", "req/s", "p50 µs", "p99 µs")
	for i, l := range loads {
		res[i] = l.result()
		fmt.Printf("%-14s %12.0f %10.0f %10.0f\n", names[i], res[i].rps, res[i].p50, res[i].p99)
		b.ReportMetric(res[i].rps, names[i]+"-req/s")
	}
	if len(res) == 2 {
		ours, theirs := res[0], res[1]
		fmt.Printf("%-14s %12.2f %10.2f %10.2f   (req/s: ours/theirs; latency: theirs/ours; higher is better; goal >= 0.70)\n",
			"ratio", ours.rps/theirs.rps, theirs.p50/ours.p50, theirs.p99/ours.p99)
		b.ReportMetric(ours.rps/theirs.rps, "rps-ratio")
	}
	fmt.Println()
}

// sliceLoad accumulates slices of load against one peer.
type sliceLoad struct {
	client  *http.Client
	hist    *hdrhistogram.Histogram
	n       int64
	elapsed time.Duration
}

func newSliceLoad() *sliceLoad {
	return &sliceLoad{
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}},
		hist:   hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3),
	}
}

func (l *sliceLoad) result() peerResult {
	return peerResult{rps: float64(l.n) / l.elapsed.Seconds(),
		p50: float64(l.hist.ValueAtQuantile(50)), p99: float64(l.hist.ValueAtQuantile(99))}
}

// run keeps benchClients keep-alive clients busy against url for d.
func (l *sliceLoad) run(url string, d time.Duration) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		count    atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(d)
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var err error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err = get(l.client, url); err != nil {
					break
				}
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

// haproxyConfig is HAProxy doing what our lb does by default: HTTP mode with
// keep-alive on both sides, an X-Forwarded-For header, an active health
// check every 500 ms, one thread per core.
func haproxyConfig(listen, backend string) string {
	return fmt.Sprintf(`global
    maxconn 4096
defaults
    mode http
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    option forwardfor
frontend bench
    bind %s
    default_backend webs
backend webs
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    server web1 %s check inter 500ms fall 2 rise 1
`, listen, backend)
}

func startPeer(b *testing.B, start func(addr string) *exec.Cmd) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := start(addr)
	cmd.Stderr = os.Stderr // the helper's stdout is its own PASS line: noise here
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", cmd.Path, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	// Ready means a proxied request succeeds: the backend passed its check.
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for range 200 {
		resp, err := client.Get("http://" + addr + "/x")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.Fatalf("%s never proxied on %s", cmd.Path, addr)
	return ""
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
