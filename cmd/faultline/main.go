// Command faultline is the controller: it starts a multi-region topology as
// containers, drives load at it, breaks it on purpose, checks what survived
// and writes a report. See DESIGN.md for the contracts.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes (DESIGN.md).
const (
	exitPass  = 0
	exitFail  = 1 // a check failed
	exitUsage = 2 // bad input or usage
	exitInfra = 3 // Docker unreachable, build failed, a node never became healthy
)

// exitError carries an exit code out of a command; commands return it
// instead of calling os.Exit so that deferred cleanup always runs.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil && code == 0 {
		return nil
	}
	return &exitError{code: code, err: err}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitPass
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "faultline:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors are usage errors (unknown flag, wrong arg count).
	fmt.Fprintln(os.Stderr, "faultline:", err)
	return exitUsage
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "faultline",
		Short:         "A multi-datacenter testbed: start regions, drive load, break things, measure what users felt",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), upCmd(), downCmd(), validateCmd(), composeCmd(), reportCmd(), compareCmd(), chaosCmd(), imagesCmd(), probeCmd())
	return root
}
