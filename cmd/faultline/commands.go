package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
)

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// signalContext ends on SIGINT or SIGTERM, so a run interrupted by Ctrl-C or
// by CI heals its faults and removes its containers before exiting.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runCmd() *cobra.Command {
	var (
		seed    int64
		seedSet bool
		out     string
		keep    bool
		unsafe  []string
		image   string
	)
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml",
		Short: "Start the scenario's topology, run load, faults and checks, write the report, tear down",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := loadScenario(args[0])
			if err != nil {
				return err
			}
			if seedSet = cmd.Flags().Changed("seed"); seedSet {
				sc.Seed = seed
			}
			if err := setUnsafe(sc, unsafe); err != nil {
				return err
			}
			if image != "" {
				sc.Topology.Image = image
			}
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			if err := ensureImage(ctx, rt, sc.Topology.Image, logf); err != nil {
				return err
			}
			if err := sweepOrphans(ctx, rt, logf); err != nil {
				return withCode(exitInfra, err)
			}
			eng := engine.New(rt, engine.WithOutDir(out), engine.WithKeep(keep), engine.WithLog(os.Stderr), engine.WithLiveProgress(isTerminal(os.Stderr)))
			logf("run %s: scenario %s (seed %d, %s), results in %s", eng.RunID(), sc.Name, sc.Seed, sc.Duration, eng.RunDir())
			sum, runErr := eng.Run(ctx, sc)
			if sum != nil {
				printVerdict(sum, eng.RunDir())
			}
			switch {
			case runErr != nil && errors.Is(runErr, engine.ErrInfra):
				return withCode(exitInfra, runErr)
			case runErr != nil:
				return withCode(exitFail, runErr)
			case sum.Verdict != results.VerdictPass:
				return withCode(exitFail, nil)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&seed, "seed", 0, "override the scenario's seed")
	cmd.Flags().StringVar(&out, "out", filepath.Join("results", "runs"), "folder for run folders")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the topology running after the run (remove it with `faultline down --all`)")
	// Two source trees testing side by side on one engine must not rebuild
	// each other's image under a running scenario (a restarted node would
	// come back with the other tree's code).
	cmd.Flags().StringVar(&image, "image", "", "node image tag to build and run instead of the topology's (e.g. one per working tree)")
	cmd.Flags().StringSliceVar(&unsafe, "unsafe", nil, "turn on an unsafe switch in the system under test, to prove the checks catch it: "+strings.Join(deploy.UnsafeSwitches(), ", "))
	return cmd
}

// setUnsafe turns the --unsafe switches on in the scenario's topology.
func setUnsafe(sc *scenarios.Scenario, switches []string) error {
	for _, s := range switches {
		if !slices.Contains(deploy.UnsafeSwitches(), s) {
			return withCode(exitUsage, fmt.Errorf("--unsafe %q: unknown switch (known: %s)", s, strings.Join(deploy.UnsafeSwitches(), ", ")))
		}
		if !slices.Contains(sc.Topology.Unsafe, s) {
			sc.Topology.Unsafe = append(sc.Topology.Unsafe, s)
		}
	}
	return nil
}

func printVerdict(s *results.Summary, dir string) {
	for _, c := range s.Checks {
		mark := "pass"
		if !c.Pass {
			mark = "FAIL"
		}
		logf("  %s  %-28s %s = %.4g", mark, c.Name, c.Expr, c.Value)
	}
	if s.Error != "" {
		logf("  error: %s", s.Error)
	}
	logf("verdict: %s — %s", s.Verdict, filepath.Join(dir, results.ReportFile))
}

func upCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "up [TOPOLOGY.yaml]",
		Short: "Start a topology to poke at by hand (default: topology/default.yaml)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			top, err := loadTopology(optionalArg(args))
			if err != nil {
				return err
			}
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			if err := ensureImage(ctx, rt, top.Image, logf); err != nil {
				return err
			}
			runID := upPrefix + engine.NewRunID()
			dep, err := deploy.Plan(top, runID, nil)
			if err != nil {
				return withCode(exitUsage, err)
			}
			began := time.Now()
			if err := engine.Start(ctx, rt, dep); err != nil {
				// A half-started topology is worth nothing: remove it.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				_ = rt.RemoveByLabel(cctx, runtime.Labels{runtime.LabelRun: runID})
				return withCode(exitInfra, err)
			}
			fmt.Printf("%s\n", runID)
			logf("topology %s is up as run %s (%d nodes healthy in %.2f s); remove it with `faultline down`",
				top.Name, runID, len(dep.Containers), time.Since(began).Seconds())
			return nil
		},
	}
}

func downCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down [RUN_ID]",
		Short: "Remove a topology started with `up` (default: every `up` run), or with --all every faultline resource",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			runs, err := faultlineRuns(ctx, rt)
			if err != nil {
				return withCode(exitInfra, err)
			}
			var targets []string
			for _, r := range runs {
				switch {
				case len(args) == 1:
					if r == args[0] {
						targets = append(targets, r)
					}
				case all, strings.HasPrefix(r, upPrefix), r == deploy.ComposeRunID:
					targets = append(targets, r)
				}
			}
			if len(args) == 1 && len(targets) == 0 {
				return withCode(exitUsage, fmt.Errorf("no run %q on this engine", args[0]))
			}
			for _, r := range targets {
				if err := rt.RemoveByLabel(ctx, runtime.Labels{runtime.LabelRun: r}); err != nil {
					return withCode(exitInfra, fmt.Errorf("remove run %s: %w", r, err))
				}
				logf("removed run %s", r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every faultline container and network on this engine, of any run")
	return cmd
}

// faultlineRuns lists the run ids that own containers or networks here.
func faultlineRuns(ctx context.Context, rt runtime.Runtime) ([]string, error) {
	seen := map[string]bool{}
	cs, err := rt.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if r, ok := c.Labels[runtime.LabelRun]; ok {
			seen[r] = true
		}
	}
	nets, err := rt.ListNetworks(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if r, ok := n.Labels[runtime.LabelRun]; ok {
			seen[r] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario and topology files; errors name file:line and field",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, f := range args {
				if err := validateFile(f); err != nil {
					var ee *exitError
					if errors.As(err, &ee) {
						err = ee.err
					}
					errs = append(errs, err)
					continue
				}
				fmt.Printf("%s: ok\n", f)
			}
			if len(errs) > 0 {
				return withCode(exitUsage, errors.Join(errs...))
			}
			return nil
		},
	}
}

func composeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compose [TOPOLOGY.yaml]",
		Short: "Print the docker-compose file equivalent to a topology (default: topology/default.yaml)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			top, err := loadTopology(optionalArg(args))
			if err != nil {
				return err
			}
			data, err := composeFor(top)
			if err != nil {
				return withCode(exitUsage, err)
			}
			_, err = os.Stdout.Write(data)
			return err
		},
	}
}

func composeFor(top *topology.Topology) ([]byte, error) {
	dep, err := deploy.Plan(top, deploy.ComposeRunID, nil)
	if err != nil {
		return nil, err
	}
	return deploy.Compose(dep)
}

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Rebuild a run's summary and reports (report.md, report.html, junit.xml) from the raw data in its folder",
		Long: "Recomputes the per-region figures, recovery and checks from the run's scenario.yaml and\n" +
			"raw/loadgen.jsonl, then rewrites summary.json and every report. A run folder without raw\n" +
			"data (older runs) gets its reports rebuilt from summary.json as it is.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if _, err := os.Stat(filepath.Join(dir, engine.RawLoadFile)); err == nil {
				if _, err := engine.Rebuild(dir, scenarioOptions()); err != nil {
					return withCode(exitUsage, fmt.Errorf("rebuild %s: %w", dir, err))
				}
				logf("recomputed %s from %s", filepath.Join(dir, results.SummaryFile), engine.RawLoadFile)
			} else {
				s, err := results.ReadSummary(dir)
				if err != nil {
					return withCode(exitUsage, err)
				}
				if err := results.WriteReports(dir, s); err != nil {
					return withCode(exitInfra, err)
				}
			}
			for _, r := range results.Reports {
				logf("wrote %s", filepath.Join(dir, r.File))
			}
			return nil
		},
	}
}

func chaosCmd() *cobra.Command {
	var (
		runID     string
		dur       time.Duration
		peers     []string
		oneWay    bool
		rtt       time.Duration
		jitter    time.Duration
		loss      float64
		bandwidth string
	)
	cmd := &cobra.Command{
		Use:   "chaos KIND TARGET...",
		Short: "Inject one fault into a running `up` topology, hold it for --for, then heal it",
		Long: "Kinds: " + strings.Join(chaos.Kinds(), ", ") + `.
TARGETs are node names (web-us-east-1), or region names for region-down,
region-isolate and link
(link takes two regions). The fault is healed when --for ends or on Ctrl-C.

  faultline chaos kill web-us-east-1 --for 10s
  faultline chaos partition us-east --peer eu-west --oneway
  faultline chaos link us-east eu-west --rtt 300ms --loss 0.05
  faultline chaos slow web-eu-west-1 --bandwidth 1mbit`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(chaos.Kinds(), args[0]) {
				return withCode(exitUsage, fmt.Errorf("unknown fault kind %q (known: %v)", args[0], chaos.Kinds()))
			}
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			if runID, err = upRun(ctx, rt, runID); err != nil {
				return err
			}
			spec := chaos.Spec{Kind: args[0], Targets: args[1:], Peers: peers, OneWay: oneWay}
			flags := cmd.Flags()
			if flags.Changed("rtt") {
				spec.Link.RTT = &rtt
			}
			if flags.Changed("jitter") {
				spec.Link.Jitter = &jitter
			}
			if flags.Changed("loss") {
				if loss < 0 || loss > 1 {
					return withCode(exitUsage, fmt.Errorf("--loss %v: must be a fraction in [0,1]", loss))
				}
				spec.Link.Loss = &loss
			}
			if flags.Changed("bandwidth") {
				bps, err := topology.ParseBandwidth(bandwidth)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("--bandwidth: %w", err))
				}
				spec.Link.BandwidthBps = &bps
			}
			env := chaos.Env{Runtime: rt, RunID: runID, Container: func(n string) string { return deploy.ContainerName(runID, n) }}
			start := time.Now()
			faults := chaos.Play(ctx, env, start, []chaos.Step{{For: dur, Spec: spec}},
				func(ev chaos.Event) {
					msg := fmt.Sprintf("t=%.1fs %s %s %v", ev.T, ev.Action, ev.Kind, ev.Targets)
					if ev.Error != "" {
						msg += ": " + ev.Error
					}
					logf("%s", msg)
				})
			if f := faults[0]; f.Error != "" {
				return withCode(exitInfra, errors.New(f.Error))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "the `up` run to act on (default: the only one)")
	cmd.Flags().DurationVar(&dur, "for", 10*time.Second, "how long the fault holds before it is healed")
	cmd.Flags().StringSliceVar(&peers, "peer", nil, "partition: the other side (nodes or regions; default everything else)")
	cmd.Flags().BoolVar(&oneWay, "oneway", false, "partition/link: only the direction from TARGETs to peers")
	cmd.Flags().DurationVar(&rtt, "rtt", 0, "link: round-trip time to set")
	cmd.Flags().DurationVar(&jitter, "jitter", 0, "link: jitter to set")
	cmd.Flags().Float64Var(&loss, "loss", 0, "link: loss fraction to set, 0..1")
	cmd.Flags().StringVar(&bandwidth, "bandwidth", "", "link/slow: bandwidth cap, e.g. 10mbit")
	return cmd
}

func imagesCmd() *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the node image from this source tree (skipped when it is up to date)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, rt, done, err := dockerSession()
			if err != nil {
				return err
			}
			defer done()
			if err := ensureImage(ctx, rt, tag, logf); err != nil {
				return err
			}
			logf("image %s is up to date", tag)
			return nil
		},
	}
	cmd.Flags().StringVar(&tag, "tag", topology.Default().Image, "image tag")
	return cmd
}

// isTerminal reports whether f is a character device (a terminal), where the
// progress can be redrawn in place.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// upPrefix marks the run ids of topologies started with `faultline up`.
const upPrefix = "up-"

// upRun resolves which `up` topology a command acts on: the one named, or
// the only one running.
func upRun(ctx context.Context, rt runtime.Runtime, named string) (string, error) {
	if named != "" {
		return named, nil
	}
	runs, err := faultlineRuns(ctx, rt)
	if err != nil {
		return "", withCode(exitInfra, err)
	}
	var ups []string
	for _, r := range runs {
		if strings.HasPrefix(r, upPrefix) {
			ups = append(ups, r)
		}
	}
	if len(ups) != 1 {
		return "", withCode(exitUsage, fmt.Errorf("found %d `up` topologies (%v): name one with --run", len(ups), ups))
	}
	return ups[0], nil
}

// optionalArg is the first argument, or "" when there is none.
func optionalArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
