package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/results"
)

func compareCmd() *cobra.Command {
	var (
		tolerance float64
		failOnReg bool
	)
	cmd := &cobra.Command{
		Use:   "compare RUN_A RUN_B",
		Short: "Show the key figures of two runs side by side and flag regressions of B against A",
		Long: "Compares per-region requests, error rate and latency (p50/p99/max), startup and recovery times.\n" +
			"A figure regresses when it got worse by more than --tolerance (relative) and by more than its noise floor.\n" +
			"Exit codes: 0 no regression (or no --fail-on-regression), 1 a regression with --fail-on-regression, 2 bad input.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tolerance < 0 {
				return withCode(exitUsage, fmt.Errorf("--tolerance must be ≥ 0, got %g", tolerance))
			}
			var runs [2]*results.Summary
			for i, dir := range args {
				s, err := results.ReadSummary(dir)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("read run %s: %w", dir, err))
				}
				runs[i] = s
			}
			c := results.Compare(runs[0], runs[1], tolerance)
			if err := c.Text(cmd.OutOrStdout()); err != nil {
				return withCode(exitInfra, err)
			}
			if failOnReg && len(c.Regressions()) > 0 {
				return withCode(exitFail, nil)
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&tolerance, "tolerance", results.DefaultTolerance, "relative change allowed before a figure counts as a regression (0.2 = 20%)")
	cmd.Flags().BoolVar(&failOnReg, "fail-on-regression", false, "exit 1 when any figure regressed")
	return cmd
}
