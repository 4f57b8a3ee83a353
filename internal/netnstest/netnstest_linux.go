// Package netnstest builds throwaway network namespaces joined by veth pairs
// for tests that need real kernel networking (the WAN emulator, the netns
// fault plumbing). Everything it makes is removed when the test ends.
package netnstest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireNetAdmin skips tests that build network namespaces when they cannot.
func RequireNetAdmin(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces and a TUN device")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		tb.Skipf("needs /dev/net/tun: %v", err)
	}
}

// InNS runs fn on a thread switched into ns. Sockets and devices created by
// fn stay in ns after the thread switches back.
func InNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked so Go discards it rather than reuse it in ns.
		runtime.LockOSThread()
		return fmt.Errorf("restore netns: %w", err)
	}
	return fnErr
}

// NewNS creates a named namespace with loopback up and removes it when the
// test ends, whatever happens.
func NewNS(tb testing.TB, name string) netns.NsHandle {
	tb.Helper()
	var ns netns.NsHandle
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		require.NoError(tb, err)
		defer orig.Close()
		_ = netns.DeleteNamed(name) // left over from a killed run
		ns, err = netns.NewNamed(name)
		require.NoError(tb, netns.Set(orig))
		require.NoError(tb, err, "create netns %s", name)
	}()
	tb.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	require.NoError(tb, err)
	defer h.Close()
	lo, err := h.LinkByName("lo")
	require.NoError(tb, err)
	require.NoError(tb, h.LinkSetUp(lo))
	return ns
}

// Veth connects two namespaces with addresses aAddr (in a) and bAddr (in b),
// both CIDR strings. Deleting a namespace deletes its end and so the pair.
func Veth(tb testing.TB, a netns.NsHandle, aName, aAddr string, b netns.NsHandle, bName, bAddr string) {
	tb.Helper()
	tmp := fmt.Sprintf("flnv%d", os.Getpid()%100000)
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tmp, Namespace: netlink.NsFd(int(a))}, PeerName: tmp + "p", PeerNamespace: netlink.NsFd(int(b))}
	require.NoError(tb, netlink.LinkAdd(l), "add veth")
	for _, end := range []struct {
		ns        netns.NsHandle
		tmp, name string
		addr      string
	}{{a, tmp, aName, aAddr}, {b, tmp + "p", bName, bAddr}} {
		h, err := netlink.NewHandleAt(end.ns)
		require.NoError(tb, err)
		link, err := h.LinkByName(end.tmp)
		require.NoError(tb, err)
		require.NoError(tb, h.LinkSetName(link, end.name))
		addr, err := netlink.ParseAddr(end.addr)
		require.NoError(tb, err)
		require.NoError(tb, h.AddrAdd(link, addr))
		require.NoError(tb, h.LinkSetUp(link))
		h.Close()
	}
}

// RouteVia adds dst via gw in ns.
func RouteVia(tb testing.TB, ns netns.NsHandle, dst, gw string) {
	tb.Helper()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(tb, err)
	defer h.Close()
	_, d, err := net.ParseCIDR(dst)
	require.NoError(tb, err)
	require.NoError(tb, h.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(gw)}))
}
