package netsetup

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/faultline/faultline/chaos/netem"
	"github.com/faultline/faultline/runtime"
)

// Leftovers lists what faults may leave behind and a healed run must not
// have: paused containers, nftables drop rules or tables, bandwidth caps,
// missing or extra routes, wan partitions, and wan links that differ from
// base (nil: links are not compared). An empty list means a clean network.
func (n *Net) Leftovers(ctx context.Context, base []string) ([]string, error) {
	var out []string
	var errs []error
	for _, node := range n.Nodes() {
		info, err := n.rt.Inspect(ctx, node.Container)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect %s: %w", node.Name, err))
			continue
		}
		if info.State == runtime.StatePaused {
			out = append(out, node.Name+": paused")
		}
		if info.State != runtime.StateRunning {
			if info.State != runtime.StatePaused {
				out = append(out, fmt.Sprintf("%s: %s", node.Name, info.State))
			}
			continue
		}
		pid, err := n.Pid(ctx, node.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules, err := netem.Rules(ctx, pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules of %s: %w", node.Name, err))
		}
		for _, r := range rules {
			out = append(out, fmt.Sprintf("%s: drop rule %s", node.Name, r))
		}
		if has, err := netem.HasTable(ctx, pid); err != nil {
			errs = append(errs, fmt.Errorf("nftables of %s: %w", node.Name, err))
		} else if has {
			out = append(out, node.Name+": nftables table faultline")
		}
		caps, err := Shaped(ctx, pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("qdiscs of %s: %w", node.Name, err))
		}
		for _, c := range caps {
			out = append(out, node.Name+": "+c)
		}
		got, err := routesOf(ctx, pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes of %s: %w", node.Name, err))
			continue
		}
		want := make([]string, 0)
		for _, r := range n.Routes(node.Region) {
			want = append(want, r.String())
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			out = append(out, fmt.Sprintf("%s: routes %v, want %v", node.Name, got, want))
		}
	}
	if w := n.wan; w != nil {
		ps, err := w.Partitions(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, p := range ps {
			out = append(out, fmt.Sprintf("wan: partition %s %v -> %v", p.ID, p.Src, p.Dst))
		}
		if base != nil {
			links, err := w.Links(ctx)
			if err != nil {
				errs = append(errs, err)
			}
			if got := LinkStrings(links); !slices.Equal(got, base) {
				out = append(out, fmt.Sprintf("wan: links %v, want %v", got, base))
			}
		}
	}
	return out, errors.Join(errs...)
}
