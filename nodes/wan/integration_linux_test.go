package wan

import (
	"github.com/faultline/faultline/internal/netnstest"

	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

// testbed is two regions joined by a router namespace:
//
//	a1 10.203.1.2 ─ 10.203.1.1 ┐
//	a2 10.203.1.6 ─ 10.203.1.5 ┼ router ─ 10.203.2.1 ─ 10.203.2.2 b1
//
// Region a is 10.203.1.0/24, region b 10.203.2.0/24. a1↔a2 crosses the
// router too, so intra-region traffic exercises the engine's pass-through.
type testbed struct {
	router, a1, a2, b1 netns.NsHandle
	api                *http.Client
}

const (
	addrA1 = "10.203.1.2"
	addrA2 = "10.203.1.6"
	addrB1 = "10.203.2.2"
	apiURL = "http://127.0.0.1:18080"
)

func newTestbed(tb testing.TB) *testbed {
	netnstest.RequireNetAdmin(tb)
	prefix := fmt.Sprintf("flwan%d-", os.Getpid())
	t := &testbed{
		router: netnstest.NewNS(tb, prefix+"r"),
		a1:     netnstest.NewNS(tb, prefix+"a1"),
		a2:     netnstest.NewNS(tb, prefix+"a2"),
		b1:     netnstest.NewNS(tb, prefix+"b1"),
	}
	netnstest.Veth(tb, t.router, "ra1", "10.203.1.1/30", t.a1, "eth0", addrA1+"/30")
	netnstest.Veth(tb, t.router, "ra2", "10.203.1.5/30", t.a2, "eth0", addrA2+"/30")
	netnstest.Veth(tb, t.router, "rb1", "10.203.2.1/30", t.b1, "eth0", addrB1+"/30")
	netnstest.RouteVia(tb, t.a1, "10.203.0.0/16", "10.203.1.1")
	netnstest.RouteVia(tb, t.a2, "10.203.0.0/16", "10.203.1.5")
	netnstest.RouteVia(tb, t.b1, "10.203.0.0/16", "10.203.2.1")
	require.NoError(tb, netnstest.InNS(t.router, func() error {
		return writeSysctls(map[string]string{"ipv4/ip_forward": "1"})
	}))
	t.api = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = netnstest.InNS(t.router, func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	return t
}

// startWAN runs the role in the router namespace until stop is called or
// the test ends.
func (t *testbed) startWAN(tb testing.TB, links string, extra ...string) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine instead of
		// returning to the pool inside the router namespace.
		runtime.LockOSThread()
		if err := netns.Set(t.router); err != nil {
			done <- err
			return
		}
		done <- Run(ctx, append([]string{
			"--regions", "a=10.203.1.0/24,b=10.203.2.0/24",
			"--links", links, "--listen", "127.0.0.1:18080", "--seed", "7",
		}, extra...))
	}()
	var once sync.Once
	var runErr error
	stop = func() {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		require.NoError(tb, runErr)
	}
	tb.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := t.api.Get(apiURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return stop
		}
		select {
		case err := <-done:
			once.Do(func() { runErr = err })
			tb.Fatalf("wan exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(tb, time.Now().Before(deadline), "wan API never came up: %v", err)
	}
}

func (t *testbed) call(tb testing.TB, method, path, body string) string {
	tb.Helper()
	req, err := http.NewRequest(method, apiURL+path, strings.NewReader(body))
	require.NoError(tb, err)
	resp, err := t.api.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	require.Less(tb, resp.StatusCode, 300, "%s %s: %s", method, path, b)
	return string(b)
}

// udp opens a UDP socket in ns bound to addr.
func udp(tb testing.TB, ns netns.NsHandle, addr string) *net.UDPConn {
	tb.Helper()
	var c *net.UDPConn
	require.NoError(tb, netnstest.InNS(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(mustAddrPort(addr)))
		return err
	}))
	tb.Cleanup(func() { c.Close() })
	return c
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// echo answers every datagram on c until c is closed.
func echo(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// rtts sends n sequential probes from c to dst and returns the round trip
// of each answered one.
func rtts(tb testing.TB, c *net.UDPConn, dst string, n int) []time.Duration {
	tb.Helper()
	to := mustAddrPort(dst)
	var out []time.Duration
	buf := make([]byte, 64)
	for i := range uint32(n) {
		msg := binary.BigEndian.AppendUint32(nil, i)
		start := time.Now()
		_, err := c.WriteToUDPAddrPort(msg, to)
		require.NoError(tb, err)
		require.NoError(tb, c.SetReadDeadline(time.Now().Add(time.Second)))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if n == 4 && bytes.Equal(buf[:4], msg) {
				out = append(out, time.Since(start))
				break
			}
		}
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// reaches sends one datagram from c to dst and reports whether sink got it.
func reaches(tb testing.TB, c *net.UDPConn, dst string, sink *net.UDPConn) bool {
	tb.Helper()
	nonce := fmt.Appendf(nil, "probe-%d", time.Now().UnixNano())
	_, err := c.WriteToUDPAddrPort(nonce, mustAddrPort(dst))
	require.NoError(tb, err)
	buf := make([]byte, 64)
	require.NoError(tb, sink.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	for {
		n, _, err := sink.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		if bytes.Equal(buf[:n], nonce) {
			return true
		}
	}
}

func TestWANIntegration(t *testing.T) {
	t.Run("offload", func(t *testing.T) { testWAN(t) })
	t.Run("no-offload", func(t *testing.T) { testWAN(t, "--offload=false") })
}

// statsAB returns the packets and bytes forwarded from region a to b.
func (t *testbed) statsAB(tb testing.TB) (pkts, bytes uint64) {
	var stats []LinkStats
	require.NoError(tb, json.Unmarshal([]byte(t.call(tb, "GET", "/stats", "")), &stats))
	for _, s := range stats {
		if s.From == "a" && s.To == "b" {
			return s.ForwardedPackets, s.ForwardedBytes
		}
	}
	return 0, 0
}

func testWAN(t *testing.T, flags ...string) {
	offload := !slices.Contains(flags, "--offload=false")
	tb := newTestbed(t)
	tb.startWAN(t, "a:b:35ms,b:a:35ms", flags...)

	echoB := udp(t, tb.b1, addrB1+":7")
	go echo(echoB)
	echoA2 := udp(t, tb.a2, addrA2+":7")
	go echo(echoA2)
	cliA := udp(t, tb.a1, addrA1+":0")

	t.Run("inter-region RTT", func(t *testing.T) {
		r := rtts(t, cliA, addrB1+":7", 100)
		require.Greater(t, len(r), 95)
		p50 := median(r)
		t.Logf("a1->b1 RTT p50 %v (configured 70ms) over %d probes", p50, len(r))
		assert.GreaterOrEqual(t, p50, 70*time.Millisecond-100*time.Microsecond, "released early")
		if raceEnabled {
			assert.Less(t, p50, 140*time.Millisecond)
		} else {
			assert.InDelta(t, 70*time.Millisecond, p50, float64(time.Millisecond+70*time.Millisecond/20))
		}
	})
	t.Run("intra-region RTT", func(t *testing.T) {
		r := rtts(t, cliA, addrA2+":7", 500)
		require.Greater(t, len(r), 490)
		p50 := median(r)
		t.Logf("a1->a2 RTT p50 %v through the engine", p50)
		assert.Less(t, p50, time.Millisecond)
	})
	t.Run("loss", func(t *testing.T) {
		tb.call(t, "PUT", "/links", `[{"from":"a","to":"b","loss":0.1}]`)
		sink := udp(t, tb.b1, addrB1+":9")
		require.NoError(t, sink.SetReadBuffer(8<<20))
		const n = 5000
		var got atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			seen := make([]bool, n)
			buf := make([]byte, 64)
			for {
				sink.SetReadDeadline(time.Now().Add(time.Second))
				k, _, err := sink.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if i := binary.BigEndian.Uint32(buf[:k]); k == 4 && i < n && !seen[i] {
					seen[i] = true
					got.Add(1)
				}
			}
		}()
		to := mustAddrPort(addrB1 + ":9")
		for i := range uint32(n) {
			_, err := cliA.WriteToUDPAddrPort(binary.BigEndian.AppendUint32(nil, i), to)
			require.NoError(t, err)
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // stay far below any socket buffer
			}
		}
		<-done
		loss := 1 - float64(got.Load())/n
		t.Logf("loss %.2f%% over %d packets (configured 10%%)", loss*100, n)
		assert.InDelta(t, 0.10, loss, 0.02)
	})
	t.Run("bandwidth", func(t *testing.T) {
		tb.call(t, "PUT", "/links", `[{"from":"a","to":"b","bandwidth":"10mbit"}]`)
		p0, b0 := tb.statsAB(t)
		start := time.Now()
		bps := tcpThroughput(t, tb, 4*time.Second)
		wire := time.Since(start)
		p1, b1 := tb.statsAB(t)
		assert.LessOrEqual(t, (b1-b0)/(p1-p0), uint64(1500), "a capped link must see MTU-sized packets")
		// The cap counts IP bytes; TCP payload is 1448 of every 1500.
		ideal := 10e6 * 1448 / 1500
		t.Logf("TCP goodput a1->b1 %.2f Mbit/s (ideal %.2f), link carried %.2f Mbit/s of IP under a 10 Mbit/s cap",
			bps/1e6, ideal/1e6, float64((b1-b0)*8)/wire.Seconds()/1e6)
		assert.LessOrEqual(t, bps, 10e6*1.02, "cap exceeded")
		if raceEnabled {
			assert.Greater(t, bps, ideal/3)
		} else {
			assert.InEpsilon(t, ideal, bps, 0.10)
		}
	})
	t.Run("partitions", func(t *testing.T) {
		tb.call(t, "PUT", "/links", `[]`)
		sinkA := udp(t, tb.a1, addrA1+":9")
		sinkB := udp(t, tb.b1, addrB1+":10")
		cliB := udp(t, tb.b1, addrB1+":0")
		require.True(t, reaches(t, cliA, addrB1+":10", sinkB))
		require.True(t, reaches(t, cliB, addrA1+":9", sinkA))

		tb.call(t, "POST", "/partitions", `{"src":["a"],"dst":["b"]}`)
		tb.call(t, "POST", "/partitions", `{"src":["b"],"dst":["a"]}`)
		assert.False(t, reaches(t, cliA, addrB1+":10", sinkB), "a->b during a full partition")
		assert.False(t, reaches(t, cliB, addrA1+":9", sinkA), "b->a during a full partition")

		tb.call(t, "DELETE", "/partitions", "")
		id := tb.call(t, "POST", "/partitions", `{"src":["10.203.1.2"],"dst":["b"]}`)
		assert.False(t, reaches(t, cliA, addrB1+":10", sinkB), "a->b cut one way")
		assert.True(t, reaches(t, cliB, addrA1+":9", sinkA), "b->a open one way")
		assert.Contains(t, tb.call(t, "GET", "/stats", ""), `"partition_drops"`)

		var created struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(id), &created))
		tb.call(t, "DELETE", "/partitions/"+created.ID, "")
		healed := time.Now()
		r := rtts(t, cliA, addrB1+":7", 1)
		require.Len(t, r, 1, "no echo within 1s of the heal")
		t.Logf("echo answered %v after heal", time.Since(healed))
	})
	t.Run("zero-delay bulk", func(t *testing.T) {
		tb.call(t, "PUT", "/links", `[]`)
		p0, b0 := tb.statsAB(t)
		bps := tcpThroughput(t, tb, 2*time.Second)
		p1, b1 := tb.statsAB(t)
		avg := (b1 - b0) / (p1 - p0)
		t.Logf("TCP a1->b1 %.0f Mbit/s, %d bytes per packet through the engine", bps/1e6, avg)
		if offload {
			assert.Greater(t, avg, uint64(1500), "offload should carry GSO segments")
		} else {
			assert.LessOrEqual(t, avg, uint64(1500))
		}
	})
	t.Run("TCP outlives a partition", func(t *testing.T) {
		ln := tcpListen(t, tb.b1, addrB1+":7000")
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.Copy(c, c)
		}()
		c := tcpDial(t, tb.a1, addrB1+":7000")
		defer c.Close()
		roundTrip := func(msg string, within time.Duration) error {
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(within))
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c, buf); err != nil {
				return err
			}
			if string(buf) != msg {
				return fmt.Errorf("echo %q, want %q", buf, msg)
			}
			return nil
		}
		require.NoError(t, roundTrip("before", 5*time.Second))
		tb.call(t, "POST", "/partitions", `{"src":["a"],"dst":["b"]}`)
		tb.call(t, "POST", "/partitions", `{"src":["b"],"dst":["a"]}`)
		err := roundTrip("during", 2*time.Second)
		require.Error(t, err, "echo crossed a partition")
		tb.call(t, "DELETE", "/partitions", "")
		// The echo of "during" arrives after TCP's next retransmission.
		buf := make([]byte, 6)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		assert.Equal(t, "during", string(buf))
		require.NoError(t, roundTrip("after", 5*time.Second))
	})
}

func tcpListen(tb testing.TB, ns netns.NsHandle, addr string) net.Listener {
	tb.Helper()
	var ln net.Listener
	require.NoError(tb, netnstest.InNS(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}))
	tb.Cleanup(func() { ln.Close() })
	return ln
}

func tcpDial(tb testing.TB, ns netns.NsHandle, addr string) net.Conn {
	tb.Helper()
	var c net.Conn
	require.NoError(tb, netnstest.InNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	}))
	return c
}

// tcpThroughput streams from a1 to b1 for d and returns the receiver's
// goodput in bits/s, ignoring the first quarter (slow start).
func tcpThroughput(tb testing.TB, t *testbed, d time.Duration) float64 {
	tb.Helper()
	ln := tcpListen(tb, t.b1, addrB1+":0")
	type result struct {
		bytes int64
		dur   time.Duration
		err   error
	}
	res := make(chan result, 1)
	warm := d / 4
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		start := time.Now()
		var counted int64
		var from time.Time
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if from.IsZero() && time.Since(start) >= warm {
				from = time.Now()
			} else if !from.IsZero() {
				counted += int64(n)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				res <- result{bytes: counted, dur: time.Since(from), err: err}
				return
			}
		}
	}()
	c := tcpDial(tb, t.a1, ln.Addr().String())
	chunk := make([]byte, 64<<10)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		c.SetWriteDeadline(end)
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	c.Close()
	r := <-res
	require.NoError(tb, r.err)
	return float64(r.bytes*8) / r.dur.Seconds()
}

// BenchmarkForwarding compares TCP throughput a1->b1 through plain kernel
// forwarding and through the emulator with zero delay, with and without
// offloads. Run with -bench Forwarding -benchtime 2x; each op streams 3s.
func BenchmarkForwarding(b *testing.B) {
	t := newTestbed(b)
	measure := func(b *testing.B) {
		var sum float64
		for range b.N {
			sum += tcpThroughput(b, t, 3*time.Second)
		}
		b.ReportMetric(sum/float64(b.N)/1e6, "Mbit/s")
	}
	b.Run("kernel", measure)
	for _, mode := range []struct {
		name  string
		flags []string
	}{{"emulator", []string{"--offload=false"}}, {"emulator-offload", nil}} {
		stop := t.startWAN(b, "", mode.flags...)
		b.Run(mode.name, measure)
		stop()
	}
}
