package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/faultline/faultline/runtime"
)

// CreateNetwork makes a bridge network with a fixed IPAM subnet, which static
// container addresses require. Engine 20.10 accepts duplicate names, so the
// name is checked here first.
func (r *Runtime) CreateNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	subnet, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return fmt.Errorf("create network %s: subnet: %w", spec.Name, err)
	}
	existing, err := r.cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", spec.Name)})
	if err != nil {
		return fmt.Errorf("create network %s: %w", spec.Name, err)
	}
	for _, n := range existing.Items {
		if n.Name == spec.Name {
			return fmt.Errorf("create network %s: network with name %s already exists", spec.Name, spec.Name)
		}
	}
	_, err = r.cli.NetworkCreate(ctx, spec.Name, client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.Masked()}}},
		Labels: spec.Labels,
	})
	return wrap("create network", spec.Name, err)
}

// RemoveNetwork fails while a container is attached (the engine refuses).
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	_, err := r.cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	return wrap("remove network", name, err)
}

func (r *Runtime) ListNetworks(ctx context.Context, selector runtime.Labels) ([]runtime.NetworkInfo, error) {
	res, err := r.cli.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter(selector)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []runtime.NetworkInfo
	for _, n := range res.Items {
		info := runtime.NetworkInfo{ID: n.ID, Name: n.Name, Labels: n.Labels}
		if len(n.IPAM.Config) > 0 {
			info.Subnet = n.IPAM.Config[0].Subnet.String()
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b runtime.NetworkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// removeNetworkStale removes a network whose containers are all gone. Engine
// 20.10 can keep an endpoint of a container removed in parallel with others;
// such endpoints are force-disconnected and the removal retried once.
func (r *Runtime) removeNetworkStale(ctx context.Context, name string) error {
	err := r.RemoveNetwork(ctx, name)
	if err == nil || errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	ins, ierr := r.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(ierr) {
		return nil // removed meanwhile, by another run's sweep
	}
	if ierr != nil {
		return errors.Join(err, ierr)
	}
	var stale int
	for id, ep := range ins.Network.Containers {
		if _, cerr := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(cerr) {
			continue // a live container is not ours to cut off
		}
		// The engine finds a stale endpoint by its old container name.
		target := cmp.Or(ep.Name, id)
		if _, derr := r.cli.NetworkDisconnect(ctx, name, client.NetworkDisconnectOptions{Container: target, Force: true}); derr != nil {
			return errors.Join(err, fmt.Errorf("disconnect stale endpoint %s: %w", id, derr))
		}
		stale++
	}
	if stale == 0 {
		return err
	}
	return r.RemoveNetwork(ctx, name)
}
