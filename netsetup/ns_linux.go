package netsetup

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/faultline/faultline/chaos/netem"
)

// InNamespace runs fn on a thread switched into the network namespace of
// pid. Sockets fn creates stay in that namespace after the thread switches
// back, so the controller can send and receive as the node would, without
// any tool in its image.
func InNamespace(pid int, fn func() error) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("netns of pid %d: %w", pid, err)
	}
	defer ns.Close()
	goruntime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		goruntime.UnlockOSThread()
		return fmt.Errorf("own netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		goruntime.UnlockOSThread()
		return fmt.Errorf("enter netns of pid %d: %w", pid, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and Go discards it when this goroutine
		// ends, rather than run other code in the node's namespace.
		return errors.Join(fnErr, fmt.Errorf("leave netns of pid %d: %w", pid, err))
	}
	goruntime.UnlockOSThread()
	return fnErr
}

// Shaping caps what a node sends with a token bucket on each of its
// interfaces (there is no netem here; TBF is in every kernel). It is the
// only root qdisc faultline installs, so finding a TBF means it is ours.
func Shape(ctx context.Context, pid int, bitsPerSecond int64) error {
	if bitsPerSecond <= 0 {
		return fmt.Errorf("shape pid %d: bandwidth must be positive, got %d", pid, bitsPerSecond)
	}
	return netem.WithHandle(ctx, pid, func(h *netlink.Handle) error {
		links, err := nonLoopback(h)
		if err != nil {
			return err
		}
		rate := uint64(bitsPerSecond / 8)
		// A burst of at least one MTU-sized packet (or 10 ms of traffic)
		// and a queue of ~50 ms keep TCP near the cap rather than far below.
		burst := uint32(max(rate/100, 3000))
		for _, l := range links {
			q := &netlink.Tbf{
				QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
				Rate:       rate,
				Buffer:     uint32(netlink.Xmittime(rate, burst)),
				Limit:      uint32(max(rate/20, uint64(2*burst))),
			}
			if err := h.QdiscReplace(q); err != nil {
				return fmt.Errorf("tbf on %s in pid %d: %w", l.Attrs().Name, pid, err)
			}
		}
		return nil
	})
}

// Unshape removes the caps Shape installed; none left is not an error.
func Unshape(ctx context.Context, pid int) error {
	return netem.WithHandle(ctx, pid, func(h *netlink.Handle) error {
		qs, err := shaped(h)
		if err != nil {
			return err
		}
		var errs []error
		for _, q := range qs {
			if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("delete tbf in pid %d: %w", pid, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Shaped lists the interfaces of pid's namespace that carry a cap.
func Shaped(ctx context.Context, pid int) ([]string, error) {
	var out []string
	err := netem.WithHandle(ctx, pid, func(h *netlink.Handle) error {
		qs, err := shaped(h)
		for _, q := range qs {
			out = append(out, fmt.Sprintf("tbf on link %d", q.Attrs().LinkIndex))
		}
		return err
	})
	return out, err
}

func shaped(h *netlink.Handle) ([]netlink.Qdisc, error) {
	links, err := nonLoopback(h)
	if err != nil {
		return nil, err
	}
	var out []netlink.Qdisc
	for _, l := range links {
		qs, err := h.QdiscList(l)
		if err != nil {
			return nil, fmt.Errorf("qdiscs of %s: %w", l.Attrs().Name, err)
		}
		for _, q := range qs {
			if q.Type() == "tbf" && q.Attrs().Parent == netlink.HANDLE_ROOT {
				out = append(out, q)
			}
		}
	}
	return out, nil
}

func nonLoopback(h *netlink.Handle) ([]netlink.Link, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().Flags&unix.IFF_LOOPBACK == 0 {
			out = append(out, l)
		}
	}
	return out, nil
}

// routesOf lists pid's routes through a gateway, as "dst via gw", sorted:
// the inter-region routes are the only ones a node has besides its default.
func routesOf(ctx context.Context, pid int) ([]string, error) {
	out := []string{}
	err := netem.WithHandle(ctx, pid, func(h *netlink.Handle) error {
		rs, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Gw == nil || r.Dst == nil || r.Dst.IP.IsUnspecified() {
				continue // connected routes and the default route
			}
			out = append(out, r.Dst.String()+" via "+r.Gw.String())
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}
