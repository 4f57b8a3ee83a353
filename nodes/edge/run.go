package edge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/nodekit"
)

// Run runs the edge role until ctx ends.
func Run(ctx context.Context, args []string) error {
	var f nodekit.Flags
	fs := nodekit.NewFlagSet("edge", &f)
	origin := fs.String("origin", "", "origin URL, the origin region's lb (http://host:port)")
	memory := fs.String("memory", "64m", "memory bound for cached objects (bytes, or with k, m, g)")
	stale := fs.Duration("stale-if-error", 0, "serve a copy up to this long past its lifetime when the origin fails (0: never)")
	timeout := fs.Duration("origin-timeout", 5*time.Second, "one origin request's timeout")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	mem, err := ParseSize(*memory)
	if err != nil {
		return fmt.Errorf("%w: edge: --memory: %v", nodes.ErrUsage, err)
	}
	reg := nodekit.NewRegistry()
	e, err := New(*origin, reg, WithMemory(mem), WithStaleIfError(*stale), WithOriginTimeout(*timeout))
	if err != nil {
		return fmt.Errorf("%w: edge: %v", nodes.ErrUsage, err)
	}
	return nodekit.Serve(ctx, nodekit.NewServer(f.Listen, e, reg))
}

// ParseSize reads a byte count such as 1048576, 512k, 64m or 1g (binary
// multiples; an optional trailing b or ib is accepted).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		}
		if shift > 0 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional k, m or g", s)
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n << shift, nil
}
