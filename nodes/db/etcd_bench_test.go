package db

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// BenchmarkWriteThroughputVsEtcd measures, in the same run and under the
// same client concurrency, the write throughput of a 3-voter db cluster and
// of a 3-member etcd cluster (Debian's etcd-server), both on loopback with
// every write fsynced before it is acknowledged (our raft log with fsync on;
// etcd fsyncs its WAL on every commit by default). Both clusters run at
// once and take turns in half-second slices, eight each, so that load from
// the rest of this shared machine weighs on both alike (measured back to
// back, the ratio moved between 0.55 and 1.57 from one run to the next).
//
//	go test -run '^$' -bench WriteThroughputVsEtcd -benchtime 1x ./nodes/db
//
// Writes go to each system's leader (ours over its HTTP API, etcd's over
// its v3 JSON gateway, POST /v3/kv/put), 16-byte values, unique keys.
func BenchmarkWriteThroughputVsEtcd(b *testing.B) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		b.Skip("etcd not installed (Debian: apt-get install etcd-server): no peer to compare with")
	}
	const (
		slice  = 500 * time.Millisecond
		rounds = 8
	)
	for _, clients := range []int{8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			for range b.N {
				c := newCluster(b, 3)
				leader := c.nodes[c.leader()]
				hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: clients}}
				cl := dbclient.New("http://"+leader.httpAddr, dbclient.WithHTTPClient(hc))
				dbPut := func(ctx context.Context, key string) error {
					_, err := cl.Put(ctx, key, "0123456789abcdef")
					return err
				}
				etcd := startEtcd(b, etcdBin)
				etcdPut := func(ctx context.Context, key string) error { return etcd.put(ctx, key, "0123456789abcdef") }
				var ours, theirs writeRate
				for r := range rounds {
					ours = ours.add(driveWrites(b, clients, slice, fmt.Sprintf("db%d-", r), dbPut))
					theirs = theirs.add(driveWrites(b, clients, slice, fmt.Sprintf("etcd%d-", r), etcdPut))
				}
				b.ReportMetric(ours.rate(), "db-ops/s")
				b.ReportMetric(theirs.rate(), "etcd-ops/s")
				b.ReportMetric(ours.rate()/theirs.rate(), "db/etcd")
				b.Logf("%d clients, %d × %s each: db %.0f writes/s (p50 %.1f ms), etcd %.0f writes/s (p50 %.1f ms), ratio db/etcd %.2f",
					clients, rounds, slice, ours.rate(), ours.p50ms(), theirs.rate(), theirs.p50ms(), ours.rate()/theirs.rate())
			}
		})
	}
}

// writeRate is what slices of writing added up to.
type writeRate struct {
	writes  int64
	elapsed time.Duration
	lat     []time.Duration
}

func (w writeRate) add(o writeRate) writeRate {
	return writeRate{writes: w.writes + o.writes, elapsed: w.elapsed + o.elapsed, lat: append(w.lat, o.lat...)}
}

func (w writeRate) rate() float64 { return float64(w.writes) / w.elapsed.Seconds() }

func (w writeRate) p50ms() float64 {
	if len(w.lat) == 0 {
		return 0
	}
	lat := slices.Clone(w.lat)
	slices.Sort(lat)
	return float64(lat[len(lat)/2]) / float64(time.Millisecond)
}

// driveWrites runs clients writers for d (the first slice of each system
// warms its connections up and is counted too: both pay it alike) and
// returns the acknowledged writes. Any failed write fails the benchmark: a
// throughput with errors compares nothing. Keys are unique per slice.
func driveWrites(b *testing.B, clients int, d time.Duration, prefix string, put func(ctx context.Context, key string) error) writeRate {
	b.Helper()
	const warmup = 0
	ctx, cancel := context.WithTimeout(context.Background(), warmup+d+30*time.Second)
	defer cancel()
	var (
		done, failed    atomic.Int64
		mu              sync.Mutex
		lat             []time.Duration
		wg              sync.WaitGroup
		firstErr        atomic.Value
		start           = time.Now()
		countFrom, stop = start.Add(warmup), start.Add(warmup + d)
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				t0 := time.Now()
				err := put(ctx, fmt.Sprintf("bench-%sw%d-%d", prefix, w, i))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if !t0.Before(countFrom) {
					done.Add(1)
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d writes failed, first: %v", n, firstErr.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	return writeRate{writes: done.Load(), elapsed: time.Since(countFrom), lat: lat}
}

// etcdCluster is three etcd members on loopback, stopped by b.Cleanup.
type etcdCluster struct {
	hc     *http.Client
	leader string // base URL of the leader's client port
}

func freePort(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startEtcd(b *testing.B, bin string) *etcdCluster {
	b.Helper()
	dir := b.TempDir()
	type member struct {
		name         string
		client, peer int
	}
	var ms []member
	var initial []string
	for i := range 3 {
		m := member{name: fmt.Sprintf("e%d", i), client: freePort(b), peer: freePort(b)}
		ms = append(ms, m)
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", m.name, m.peer))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var procs []*exec.Cmd
	b.Cleanup(func() {
		cancel()
		for _, p := range procs {
			_ = p.Wait()
		}
	})
	for _, m := range ms {
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { logf.Close() })
		cmd := exec.CommandContext(ctx, bin,
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", m.client),
			"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", m.client),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.peer),
			"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.peer),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "faultline-bench",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			b.Fatalf("start etcd %s: %v", m.name, err)
		}
		procs = append(procs, cmd)
	}
	e := &etcdCluster{hc: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range ms {
			base := fmt.Sprintf("http://127.0.0.1:%d", m.client)
			var st struct {
				Header struct {
					MemberID string `json:"member_id"`
				} `json:"header"`
				Leader string `json:"leader"`
			}
			if err := e.call(context.Background(), base, "/v3/maintenance/status", struct{}{}, &st); err == nil &&
				st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
				e.leader = base
				return e
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("etcd cluster elected no leader in 30 s (logs in %s)", dir)
	return nil
}

func (e *etcdCluster) put(ctx context.Context, key, value string) error {
	req := map[string]string{
		"key":   base64.StdEncoding.EncodeToString([]byte(key)),
		"value": base64.StdEncoding.EncodeToString([]byte(value)),
	}
	return e.call(ctx, e.leader, "/v3/kv/put", req, nil)
}

func (e *etcdCluster) call(ctx context.Context, base, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errors.Join(fmt.Errorf("etcd %s: decode", path), err)
	}
	return nil
}
