package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/nodes/wan"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/docker"
	"github.com/faultline/faultline/topology"
)

// tcpConn opens a TCP connection from node from to node to, both ends
// created inside the nodes' namespaces so that the bytes take the nodes'
// own path (routes, wan, drop rules).
func tcpConn(tb testing.TB, n *netsetup.Net, from, to string) (client, server *net.TCPConn) {
	tb.Helper()
	ctx := context.Background()
	dst, ok := n.Node(to)
	require.True(tb, ok, "node %s", to)
	toPid, err := n.Pid(ctx, to)
	require.NoError(tb, err)
	fromPid, err := n.Pid(ctx, from)
	require.NoError(tb, err)
	var ln *net.TCPListener
	require.NoError(tb, netsetup.InNamespace(toPid, func() (err error) {
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: dst.IP.AsSlice()})
		return err
	}))
	defer ln.Close()
	require.NoError(tb, ln.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(tb, netsetup.InNamespace(fromPid, func() (err error) {
		client, err = net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
		return err
	}))
	server, err = ln.AcceptTCP()
	if err != nil {
		client.Close()
	}
	require.NoError(tb, err)
	tb.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// tcpRate streams from node from to node to for d and returns the goodput
// the receiver saw in bit/s, leaving out the first warm of it (slow start).
func tcpRate(tb testing.TB, n *netsetup.Net, from, to string, d, warm time.Duration) float64 {
	tb.Helper()
	client, server := tcpConn(tb, n, from, to)
	type result struct {
		bytes int64
		dur   time.Duration
		err   error
	}
	got := make(chan result, 1)
	go func() { // reads until the sender closes or the deadline passes
		var r result
		_ = server.SetReadDeadline(time.Now().Add(d + 30*time.Second))
		buf := make([]byte, 256<<10)
		var first, from, last time.Time
		for {
			k, err := server.Read(buf)
			now := time.Now()
			if k > 0 {
				switch {
				case first.IsZero():
					first = now
				case from.IsZero() && now.Sub(first) >= warm:
					from = now
				case !from.IsZero():
					r.bytes += int64(k)
					last = now
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = err
				}
				r.dur = last.Sub(from)
				got <- r
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	require.NoError(tb, client.SetWriteDeadline(time.Now().Add(d)))
	for {
		// The deadline ends the stream; what the kernel holds is still
		// delivered before the FIN and is counted with its real time.
		if _, err := client.Write(buf); err != nil {
			require.ErrorIs(tb, err, os.ErrDeadlineExceeded)
			break
		}
	}
	require.NoError(tb, client.CloseWrite())
	r := <-got
	require.NoError(tb, r.err)
	require.Positive(tb, r.dur, "the stream outlasted its warm-up")
	return float64(r.bytes*8) / r.dur.Seconds()
}

// wanTable is the routing table through which the wan role steers region
// traffic into its TUN (its --table default).
const wanTable = 100

// bypassWAN removes the wan's policy rules, so that its container forwards
// between regions in the kernel like a plain router, and returns what puts
// them back.
func bypassWAN(tb testing.TB, n *netsetup.Net) (restore func()) {
	tb.Helper()
	ctx := context.Background()
	pid, err := n.Pid(ctx, deploy.WANNode)
	require.NoError(tb, err)
	var rules []netlink.Rule
	require.NoError(tb, netsetup.InNamespace(pid, func() error {
		all, err := netlink.RuleList(unix.AF_INET)
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.Table == wanTable {
				rules = append(rules, r)
				if err := netlink.RuleDel(steer(r)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	require.NotEmpty(tb, rules, "the wan steers regions into its TUN")
	return func() {
		require.NoError(tb, netsetup.InNamespace(pid, func() error {
			for _, r := range rules {
				if err := netlink.RuleAdd(steer(r)); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// steer is a wan rule as the wan role makes it: iif REGION lookup TABLE.
func steer(r netlink.Rule) *netlink.Rule {
	out := netlink.NewRule()
	out.Family, out.IifName, out.Table, out.Priority = unix.AF_INET, r.IifName, r.Table, r.Priority
	return out
}

const benchTopology = `
name: wan-bench
regions:
  - {name: a, subnet: 10.207.1.0/24, nodes: [{role: web, count: 1}]}
  - {name: b, subnet: 10.207.2.0/24, nodes: [{role: web, count: 1}]}
links:
  - {between: [a, b], rtt: 10ms}
`

// BenchmarkWANForwarding measures TCP throughput between two regions'
// containers through the emulator at zero added delay and, in the same run,
// through the same wan container forwarding in the kernel (its TUN rules
// removed). One op streams 3 s each way, so `make bench`'s -benchtime 3s
// runs it once.
func BenchmarkWANForwarding(b *testing.B) {
	ctx := context.Background()
	rt, err := docker.New(ctx)
	require.NoError(b, err)
	b.Cleanup(func() { _ = rt.Close() })
	top, err := topology.Parse("wan-bench.yaml", []byte(benchTopology))
	require.NoError(b, err)
	require.NoError(b, ensureImage(ctx, rt, top.Image, b.Logf))
	runID := "bench-" + engine.NewRunID()
	b.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.RemoveByLabel(cctx, runtime.Labels{runtime.LabelRun: runID})
	})
	dep, err := deploy.Plan(top, runID, nil)
	require.NoError(b, err)
	require.NoError(b, engine.Start(ctx, rt, dep))
	n, err := netsetup.Discover(ctx, rt, runID)
	require.NoError(b, err)
	links, err := n.WAN().Links(ctx)
	require.NoError(b, err)
	for i := range links {
		links[i].Link = wan.Link{} // zero added delay, no cap
	}
	require.NoError(b, n.WAN().SetLinks(ctx, links))

	const d, warm = 3 * time.Second, 500 * time.Millisecond
	var emu, kernel float64
	b.ResetTimer()
	for range b.N {
		emu += tcpRate(b, n, "web-a-1", "web-b-1", d, warm)
		restore := bypassWAN(b, n)
		kernel += tcpRate(b, n, "web-a-1", "web-b-1", d, warm)
		restore()
	}
	b.StopTimer()
	emu, kernel = emu/float64(b.N), kernel/float64(b.N)
	b.ReportMetric(emu/1e6, "emulator-Mbit/s")
	b.ReportMetric(kernel/1e6, "kernel-Mbit/s")
	b.ReportMetric(emu/kernel, "ratio")
	b.Logf("through the emulator %.0f Mbit/s, kernel forwarding %.0f Mbit/s, ratio %.2f", emu/1e6, kernel/1e6, emu/kernel)
}
