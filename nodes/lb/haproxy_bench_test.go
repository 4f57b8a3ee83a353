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

// peerResult is one side's last measured run.
type peerResult struct {
	rps, p50, p99 float64 // p50 and p99 in µs
}

// BenchmarkVsHAProxy sends the same keep-alive GETs, from the same client
// with the same concurrency, to the same loopback backend through this lb
// and through Debian's HAProxy, each in its own process, and prints
// requests/s, p50 and p99 side by side with the lb/HAProxy ratios.
func BenchmarkVsHAProxy(b *testing.B) {
	body := strings.Repeat("x", benchBody)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer backend.Close()
	backendAddr := backend.Listener.Addr().String()

	peers := []struct {
		name  string
		start func(b *testing.B, addr string) *exec.Cmd
	}{
		{"faultline-lb", func(b *testing.B, addr string) *exec.Cmd {
			exe, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^TestLBServeHelper$")
			cmd.Env = append(os.Environ(), lbServeEnv+"="+addr, lbBackendEnv+"="+backendAddr)
			return cmd
		}},
		{"haproxy", func(b *testing.B, addr string) *exec.Cmd {
			if _, err := os.Stat(haproxyBin); err != nil {
				b.Skipf("HAProxy not installed at %s (apt-get install -y haproxy); skipping the peer", haproxyBin)
			}
			cfg := filepath.Join(b.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, backendAddr)), 0o600); err != nil {
				b.Fatal(err)
			}
			return exec.Command(haproxyBin, "-f", cfg, "-db")
		}},
	}
	results := map[string]peerResult{}
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			addr := startPeer(b, p.start)
			results[p.name] = proxyLoad(b, "http://"+addr+"/x")
		})
	}
	ours, okOurs := results["faultline-lb"]
	theirs, okTheirs := results["haproxy"]
	if !okOurs || !okTheirs {
		return
	}
	// Printed, not logged: a parent benchmark's log shows only with -v.
	fmt.Printf("\n%-14s %12s %10s %10s\n%-14s %12.0f %10.0f %10.0f\n%-14s %12.0f %10.0f %10.0f\n%-14s %12.2f %10.2f %10.2f   (req/s: ours/theirs, higher is better; latency: theirs/ours, higher is better; goal >= 0.70)\n\n",
		"proxy", "req/s", "p50 µs", "p99 µs",
		"faultline-lb", ours.rps, ours.p50, ours.p99,
		"haproxy", theirs.rps, theirs.p50, theirs.p99,
		"ratio", ours.rps/theirs.rps, theirs.p50/ours.p50, theirs.p99/ours.p99)
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

func startPeer(b *testing.B, start func(*testing.B, string) *exec.Cmd) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := start(b, addr)
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

// proxyLoad runs b.N GETs over benchClients keep-alive connections and
// reports requests/s, p50 and p99 (µs).
func proxyLoad(b *testing.B, url string) peerResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		all      = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		firstErr error
		wg       sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			var err error
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err = get(client, url); err != nil {
					break
				}
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
		b.Fatalf("load: %v", firstErr)
	}
	r := peerResult{rps: float64(b.N) / elapsed.Seconds(),
		p50: float64(all.ValueAtQuantile(50)), p99: float64(all.ValueAtQuantile(99))}
	b.ReportMetric(r.rps, "req/s")
	b.ReportMetric(r.p50, "p50-µs")
	b.ReportMetric(r.p99, "p99-µs")
	return r
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
