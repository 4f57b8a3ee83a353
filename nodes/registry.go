// Package nodes holds the registry of roles that the one node binary can run.
// Roles live in sub-packages (nodes/web, nodes/lb, …) and are wired in
// cmd/node with one Register line each, so a role package never depends on
// the binary that runs it.
package nodes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// RunFunc runs one role until ctx ends. args are the command-line arguments
// after the role name.
type RunFunc func(ctx context.Context, args []string) error

// ErrUsage marks errors caused by bad input (unknown role, bad flags), which
// the binary reports with exit code 2 instead of 1.
var ErrUsage = errors.New("usage")

var (
	mu    sync.RWMutex
	roles = map[string]RunFunc{}
)

// Register makes a role runnable by name. Registering a name twice is a
// programming error and panics, as does a nil RunFunc.
func Register(name string, run RunFunc) {
	if name == "" || run == nil {
		panic("nodes: Register needs a name and a RunFunc")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := roles[name]; dup {
		panic(fmt.Sprintf("nodes: role %q registered twice", name))
	}
	roles[name] = run
}

// Lookup returns the role registered under name.
func Lookup(name string) (RunFunc, error) {
	mu.RLock()
	defer mu.RUnlock()
	run, ok := roles[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown role %q (have %v)", ErrUsage, name, namesLocked())
	}
	return run, nil
}

// Names lists the registered roles, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(roles))
	for n := range roles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
