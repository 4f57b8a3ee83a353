// Package netem is the host side of faultline's emulated network: it acts
// inside a container's network namespace (found from its init pid) without
// any tool in the image. It installs the routes that send inter-region
// traffic through the wan router, and nftables drop rules that cut nodes
// of one region off from each other, whose traffic never crosses the wan.
package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Route sends Dst via the gateway Via, which must be in a subnet of one of
// the namespace's interfaces (a region's wan address, .254).
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// InstallRoutes adds (or replaces) routes in the network namespace of pid.
func InstallRoutes(ctx context.Context, pid int, routes []Route) error {
	return WithHandle(ctx, pid, func(h *netlink.Handle) error {
		for _, r := range routes {
			nr, err := toNetlink(h, r)
			if err != nil {
				return fmt.Errorf("route %s in pid %d: %w", r, pid, err)
			}
			if err := h.RouteReplace(nr); err != nil {
				return fmt.Errorf("add route %s in pid %d: %w", r, pid, err)
			}
		}
		return nil
	})
}

// RemoveRoutes deletes routes from the namespace of pid; routes already
// gone are not an error.
func RemoveRoutes(ctx context.Context, pid int, routes []Route) error {
	return WithHandle(ctx, pid, func(h *netlink.Handle) error {
		var errs []error
		for _, r := range routes {
			nr, err := toNetlink(h, r)
			if err != nil {
				errs = append(errs, fmt.Errorf("route %s in pid %d: %w", r, pid, err))
				continue
			}
			if err := h.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s in pid %d: %w", r, pid, err))
			}
		}
		return errors.Join(errs...)
	})
}

// toNetlink finds the interface by the gateway's subnet: interface names and
// order inside containers are not stable.
func toNetlink(h *netlink.Handle, r Route) (*netlink.Route, error) {
	if !r.Dst.Addr().Is4() || !r.Via.Is4() {
		return nil, errors.New("only IPv4 routes")
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if ok && netip.PrefixFrom(ip, ones).Masked().Contains(r.Via) {
			dst := r.Dst.Masked()
			return &netlink.Route{
				LinkIndex: a.LinkIndex,
				Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)},
				Gw:        r.Via.AsSlice(),
			}, nil
		}
	}
	return nil, fmt.Errorf("no interface in the subnet of %s", r.Via)
}

// WithHandle runs fn with a netlink handle inside the network namespace of
// pid (a container's init), so links, routes and qdiscs can be changed from
// the host without any tool in the container.
func WithHandle(ctx context.Context, pid int, fn func(*netlink.Handle) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("netns of pid %d: %w", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns of pid %d: %w", pid, err)
	}
	defer h.Close()
	return fn(h)
}
