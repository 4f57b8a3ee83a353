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
	"runtime"
	"strconv"
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
	// lbProfileEnv names a directory: the lb process then writes lb.cpu and
	// lb.mem profiles there when it exits (go tool pprof lb.cpu).
	lbProfileEnv = "FAULTLINE_LB_BENCH_PROFILE"
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
	rps, p50, p99  float64 // p50 and p99 in µs
	cpu, clientCPU float64 // µs per request of the proxy's process and of this one
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
// slices, with as many threads each, and prints requests/s, p50, p99 and
// each proxy's CPU time per request side by side with the lb/HAProxy
// ratios, and the load average. On this shared 2-core machine the req/s
// ratio of one run moves by ±0.2 with the other load; the CPU per request
// moves much less. It runs once whatever b.N is (one run outlasts
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
	// One thread per core the Go side runs on, for both: GOMAXPROCS for the
	// lb, nbthread for HAProxy (which would otherwise pick its own).
	threads := runtime.GOMAXPROCS(0)
	lbCmd := func(addr string) *exec.Cmd {
		args := []string{"-test.run=^TestLBServeHelper$"}
		if dir := os.Getenv(lbProfileEnv); dir != "" {
			args = append(args, "-test.cpuprofile="+filepath.Join(dir, "lb.cpu"),
				"-test.memprofile="+filepath.Join(dir, "lb.mem"), "-test.memprofilerate=4096")
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), lbServeEnv+"="+addr, lbBackendEnv+"="+backendAddr,
			fmt.Sprintf("GOMAXPROCS=%d", threads))
		return cmd
	}
	names := []string{"faultline-lb"}
	lbAddr, lbPid := startPeer(b, lbCmd)
	urls := []string{"http://" + lbAddr + "/x"}
	pids := []int{lbPid}
	if _, err := os.Stat(haproxyBin); err != nil {
		fmt.Printf("HAProxy not installed at %s (apt-get install -y haproxy): measuring the lb alone\n", haproxyBin)
	} else {
		cfg := filepath.Join(b.TempDir(), "haproxy.cfg")
		haproxyCmd := func(addr string) *exec.Cmd {
			if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, backendAddr, threads)), 0o600); err != nil {
				b.Fatal(err)
			}
			return exec.Command(haproxyBin, "-f", cfg, "-db")
		}
		names = append(names, "haproxy")
		hAddr, hPid := startPeer(b, haproxyCmd)
		urls = append(urls, "http://"+hAddr+"/x")
		pids = append(pids, hPid)
	}

	loads := make([]*sliceLoad, len(urls))
	for i := range loads {
		loads[i] = newSliceLoad(pids[i])
	}
	load0 := loadAvg()
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

	// CPU per request is the proxies' cost with the machine's other load
	// mostly taken out; "client" is this process: the load and the backend.
	res := make([]peerResult, len(loads))
	fmt.Printf("\n%-14s %12s %10s %10s %16s %17s\n", "proxy", "req/s", "p50 µs", "p99 µs", "proxy cpu µs/req", "client cpu µs/req")
	for i, l := range loads {
		res[i] = l.result()
		fmt.Printf("%-14s %12.0f %10.0f %10.0f %16.1f %17.1f\n", names[i], res[i].rps, res[i].p50, res[i].p99, res[i].cpu, res[i].clientCPU)
		b.ReportMetric(res[i].rps, names[i]+"-req/s")
	}
	if len(res) == 2 {
		ours, theirs := res[0], res[1]
		fmt.Printf("%-14s %12.2f %10.2f %10.2f %16.2f   (req/s: ours/theirs; latency, cpu: theirs/ours; higher is better; goal >= 0.70)\n",
			"ratio", ours.rps/theirs.rps, theirs.p50/ours.p50, theirs.p99/ours.p99, theirs.cpu/ours.cpu)
		b.ReportMetric(ours.rps/theirs.rps, "rps-ratio")
	}
	fmt.Printf("threads: %d each (lb GOMAXPROCS, HAProxy nbthread); %d clients; load average %s before, %s after\n\n",
		threads, benchClients, load0, loadAvg())
}

// loadAvg is the 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// cpuTime is the CPU time all of pid's threads have run (0 for this
// process), from their schedstat: nanoseconds, where /proc/pid/stat counts
// 10 ms ticks. It is 0 where there is no /proc.
func cpuTime(pid int) time.Duration {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	tasks, _ := os.ReadDir(dir)
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// sliceLoad accumulates slices of load against one peer.
type sliceLoad struct {
	client         *http.Client
	hist           *hdrhistogram.Histogram
	n              int64
	elapsed        time.Duration
	pid            int           // the peer's process
	cpu, clientCPU time.Duration // the peer's and this process's, in the slices
}

func newSliceLoad(pid int) *sliceLoad {
	return &sliceLoad{
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}},
		hist:   hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3),
		pid:    pid,
	}
}

func (l *sliceLoad) result() peerResult {
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(l.n) }
	return peerResult{rps: float64(l.n) / l.elapsed.Seconds(),
		p50: float64(l.hist.ValueAtQuantile(50)), p99: float64(l.hist.ValueAtQuantile(99)),
		cpu: perReq(l.cpu), clientCPU: perReq(l.clientCPU)}
}

// run keeps benchClients keep-alive clients busy against url for d.
func (l *sliceLoad) run(url string, d time.Duration) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		count    atomic.Int64
	)
	cpu0, self0 := cpuTime(l.pid), cpuTime(0)
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
	l.cpu += cpuTime(l.pid) - cpu0
	l.clientCPU += cpuTime(0) - self0
	l.n += count.Load()
	return firstErr
}

// haproxyConfig is HAProxy doing what our lb does by default: HTTP mode with
// keep-alive on both sides (HAProxy's default, with idle server connections
// shared between clients: http-reuse safe), an X-Forwarded-For header, an
// active health check every 500 ms, and as many threads as the lb has.
func haproxyConfig(listen, backend string, threads int) string {
	return fmt.Sprintf(`global
    maxconn 4096
    nbthread %d
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
`, threads, listen, backend)
}

func startPeer(b *testing.B, start func(addr string) *exec.Cmd) (string, int) {
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
				return addr, cmd.Process.Pid
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.Fatalf("%s never proxied on %s", cmd.Path, addr)
	return "", 0
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
