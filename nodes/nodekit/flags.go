// Package nodekit is what every role shares: the common flags, an HTTP server
// that adds /healthz and /metrics to the role's handler, and HTTP metrics.
package nodekit

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/faultline/faultline/nodes"
)

// Env variables the runtime sets on every container; flags override them.
const (
	EnvNode   = "FAULTLINE_NODE"
	EnvRegion = "FAULTLINE_REGION"
)

// Flags are the flags every role accepts.
type Flags struct {
	Listen string
	Node   string
	Region string
}

// Bind adds --listen, --node and --region to fs.
func (f *Flags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.Listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&f.Node, "node", os.Getenv(EnvNode), "node name (default $"+EnvNode+")")
	fs.StringVar(&f.Region, "region", os.Getenv(EnvRegion), "region name (default $"+EnvRegion+")")
}

// NewFlagSet returns a flag set for a role that reports errors instead of
// exiting, with the common flags already bound to f.
func NewFlagSet(role string, f *Flags) *flag.FlagSet {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is returned and printed once by the binary
	f.Bind(fs)
	return fs
}

// Parse parses args into fs and marks failures (including -h) as usage errors.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", nodes.ErrUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", nodes.ErrUsage, fs.Name(), fs.Args())
	}
	return nil
}
