package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/netsetup"
)

func probeCmd() *cobra.Command {
	var (
		runID string
		o     netsetup.ProbeOptions
	)
	cmd := &cobra.Command{
		Use:   "probe FROM TO",
		Short: "Measure RTT and loss between two nodes of a running topology, through the emulated network",
		Long: "Sends --count UDP echoes from FROM's network namespace to an echo socket in TO's, opened from the host," +
			" so packets take the nodes' own path (routes, wan, partitions) and no tool is needed in either image.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			if runID, err = upRun(ctx, rt, runID); err != nil {
				return err
			}
			n, err := netsetup.Discover(ctx, rt, runID)
			if err != nil {
				return withCode(exitInfra, err)
			}
			r, err := n.Probe(ctx, args[0], args[1], o)
			if err != nil {
				return withCode(exitInfra, err)
			}
			fmt.Printf("%s -> %s: %d sent, rtt p50 %v p99 %v, loss %.1f%% out %.1f%% back\n", args[0], args[1], r.Sent,
				r.Percentile(0.5).Round(10*time.Microsecond), r.Percentile(0.99).Round(10*time.Microsecond), 100*r.LossOut(), 100*r.LossBack())
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "the `up` run to probe (default: the only one)")
	cmd.Flags().IntVar(&o.Count, "count", 200, "packets to send")
	cmd.Flags().DurationVar(&o.Interval, "interval", 10*time.Millisecond, "time between packets")
	cmd.Flags().DurationVar(&o.Wait, "wait", time.Second, "how long to wait for late echoes")
	return cmd
}
