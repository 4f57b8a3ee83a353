package netem

import (
	"github.com/faultline/faultline/internal/netnstest"

	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestParseComment(t *testing.T) {
	tests := []struct {
		in   string
		want Rule
		ok   bool
	}{
		{"faultline:out:10.203.0.5/32", Rule{Dir: Outbound, Peer: netip.MustParsePrefix("10.203.0.5/32")}, true},
		{"faultline:in:10.203.0.0/16", Rule{Dir: Inbound, Peer: netip.MustParsePrefix("10.203.0.0/16")}, true},
		{"faultline:in:*", Rule{Dir: Inbound}, true},
		{"faultline:both:*", Rule{}, false},
		{"faultline:in:10.203.0.1/16", Rule{}, false},
		{"faultline:in:fd00::/64", Rule{}, false},
		{"other:in:*", Rule{}, false},
		{"", Rule{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseComment(tt.in)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.comment(), "round trip")
		})
	}
}

func FuzzParseComment(f *testing.F) {
	f.Add("faultline:out:10.203.0.5/32")
	f.Add("faultline:in:*")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseComment(s)
		if err == nil {
			assert.Equal(t, s, r.comment())
		}
	})
}

// sleeper starts a process inside the named namespace, standing in for a
// container's init, and returns its pid.
func sleeper(t *testing.T, nsName string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", nsName, "sleep", "120")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	// ip netns exec enters the namespace, then execs: wait until it has.
	nsFile, err := netns.GetFromName(nsName)
	require.NoError(t, err)
	defer nsFile.Close()
	require.Eventually(t, func() bool {
		h, err := netns.GetFromPid(cmd.Process.Pid)
		if err != nil {
			return false
		}
		defer h.Close()
		return h.Equal(nsFile)
	}, 5*time.Second, 10*time.Millisecond)
	return cmd.Process.Pid
}

func TestRoutes(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	name := fmt.Sprintf("flnetem%d-n", os.Getpid())
	node := netnstest.NewNS(t, name)
	wan := netnstest.NewNS(t, fmt.Sprintf("flnetem%d-w", os.Getpid()))
	netnstest.Veth(t, node, "eth7", "10.203.10.2/24", wan, "eth0", "10.203.10.254/24")
	pid := sleeper(t, name)
	ctx := context.Background()

	routes := []Route{
		{Dst: netip.MustParsePrefix("10.203.20.0/24"), Via: netip.MustParseAddr("10.203.10.254")},
		{Dst: netip.MustParsePrefix("10.203.30.0/24"), Via: netip.MustParseAddr("10.203.10.254")},
	}
	require.NoError(t, InstallRoutes(ctx, pid, routes))
	require.NoError(t, InstallRoutes(ctx, pid, routes), "installing twice is harmless")

	h, err := netlink.NewHandleAt(node)
	require.NoError(t, err)
	defer h.Close()
	gwRoutes := func() []string {
		rs, err := h.RouteList(nil, netlink.FAMILY_V4)
		require.NoError(t, err)
		var out []string
		for _, r := range rs {
			if r.Gw != nil {
				out = append(out, r.Dst.String()+" via "+r.Gw.String())
			}
		}
		return out
	}
	assert.ElementsMatch(t, []string{"10.203.20.0/24 via 10.203.10.254", "10.203.30.0/24 via 10.203.10.254"}, gwRoutes())

	require.NoError(t, RemoveRoutes(ctx, pid, routes))
	assert.Empty(t, gwRoutes())
	require.NoError(t, RemoveRoutes(ctx, pid, routes), "removing twice is harmless")

	err = InstallRoutes(ctx, pid, []Route{{Dst: netip.MustParsePrefix("10.203.40.0/24"), Via: netip.MustParseAddr("10.203.99.1")}})
	require.ErrorContains(t, err, "no interface")
}

func TestFilter(t *testing.T) {
	netnstest.RequireNetAdmin(t)
	n1Name := fmt.Sprintf("flnetem%d-1", os.Getpid())
	n1 := netnstest.NewNS(t, n1Name)
	n2 := netnstest.NewNS(t, fmt.Sprintf("flnetem%d-2", os.Getpid()))
	netnstest.Veth(t, n1, "eth0", "10.203.11.1/24", n2, "eth0", "10.203.11.2/24")
	pid := sleeper(t, n1Name)
	ctx := context.Background()

	sink1, cli1 := udp(t, n1, "10.203.11.1:9"), udp(t, n1, "10.203.11.1:0")
	sink2, cli2 := udp(t, n2, "10.203.11.2:9"), udp(t, n2, "10.203.11.2:0")
	check := func(wantOut, wantIn bool) {
		t.Helper()
		assert.Equal(t, wantOut, reaches(t, cli1, "10.203.11.2:9", sink2), "n1 -> n2")
		assert.Equal(t, wantIn, reaches(t, cli2, "10.203.11.1:9", sink1), "n2 -> n1")
	}
	peer := netip.MustParsePrefix("10.203.11.2/32")
	rules := func() []Rule {
		t.Helper()
		r, err := Rules(ctx, pid)
		require.NoError(t, err)
		return r
	}

	assert.Empty(t, rules())
	check(true, true)

	require.NoError(t, Block(ctx, pid, peer, Outbound))
	require.NoError(t, Block(ctx, pid, peer, Outbound))
	assert.Equal(t, []Rule{{Dir: Outbound, Peer: peer}}, rules())
	check(false, true)

	require.NoError(t, Block(ctx, pid, netip.MustParsePrefix("10.203.11.0/24"), Inbound))
	assert.Len(t, rules(), 2)
	check(false, false)
	require.NoError(t, Unblock(ctx, pid, netip.MustParsePrefix("10.203.11.0/24"), Both))
	require.NoError(t, Unblock(ctx, pid, peer, Outbound))
	assert.Empty(t, rules())
	check(true, true)

	require.NoError(t, Isolate(ctx, pid))
	assert.ElementsMatch(t, []Rule{{Dir: Outbound}, {Dir: Inbound}}, rules())
	check(false, false)
	assert.True(t, reachesLoopback(t, n1), "isolation keeps loopback")

	require.NoError(t, Block(ctx, pid, peer, Both))
	require.NoError(t, Heal(ctx, pid))
	assert.Empty(t, rules())
	check(true, true)
	require.NoError(t, Heal(ctx, pid), "healing twice is harmless")

	require.Error(t, Block(ctx, pid, netip.Prefix{}, Both))
}

func udp(t *testing.T, ns netns.NsHandle, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	require.NoError(t, netnstest.InNS(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

// reaches sends one datagram from c to dst and reports whether sink got it.
func reaches(t *testing.T, c *net.UDPConn, dst string, sink *net.UDPConn) bool {
	t.Helper()
	nonce := fmt.Appendf(nil, "probe-%d", time.Now().UnixNano())
	if _, err := c.WriteToUDPAddrPort(nonce, netip.MustParseAddrPort(dst)); err != nil {
		return false // an output drop may surface as EPERM
	}
	buf := make([]byte, 64)
	require.NoError(t, sink.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
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

func reachesLoopback(t *testing.T, ns netns.NsHandle) bool {
	sink := udp(t, ns, "127.0.0.1:9")
	cli := udp(t, ns, "127.0.0.1:0")
	return reaches(t, cli, "127.0.0.1:9", sink)
}
