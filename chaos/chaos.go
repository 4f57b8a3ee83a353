// Package chaos breaks things on purpose and always puts them back. A fault
// kind registers itself by name; a Fault is one injected instance with Inject
// and Heal; Run plays a schedule of faults and heals each one in the same
// call that injected it, whether its time ran out, the run ended, or the run
// was aborted.
package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/runtime"
)

// Env is what a fault acts through.
type Env struct {
	Runtime runtime.Runtime
	// RunID confines every fault to the containers of one run: a fault
	// refuses to touch a container that lacks this run's label.
	RunID string
	// Container maps a node name to its container's name; nil means they are
	// the same.
	Container func(node string) string
	// Resolve turns a target that names a role's current holder rather
	// than a node (a scenario's {role: db, pick: leader}, scheduled as
	// "@leader:db") into node names, at the moment the fault is injected.
	// Plain node and region names are never passed to it; nil leaves every
	// target as it is.
	Resolve func(ctx context.Context, target string) ([]string, error)
}

// resolve applies env.Resolve to the targets that start with "@".
func (e Env) resolve(ctx context.Context, targets []string) ([]string, error) {
	if e.Resolve == nil {
		return targets, nil
	}
	var out []string
	for _, t := range targets {
		if !strings.HasPrefix(t, "@") {
			out = append(out, t)
			continue
		}
		nodes, err := e.Resolve(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", t, err)
		}
		out = append(out, nodes...)
	}
	return out, nil
}

func (e Env) container(node string) string {
	if e.Container == nil {
		return node
	}
	return e.Container(node)
}

// Fault is one injected fault.
type Fault interface {
	Inject(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Spec names a fault kind and its concrete targets: node names, or region
// names for region-down, link and region partitions.
type Spec struct {
	Kind    string
	Targets []string
	// Peers is the other side of a partition (node or region names); empty
	// means everything else in the run.
	Peers []string
	// OneWay cuts (or changes) only the direction from Targets to Peers.
	OneWay bool
	// Link holds the values a link fault sets (unset ones keep their value)
	// and the bandwidth cap of a slow fault.
	Link LinkChange
}

// LinkChange is a partial change of a wan link; nil fields are unchanged.
// RTT is a round trip, as in topology files: each direction gets half.
type LinkChange struct {
	RTT, Jitter  *time.Duration
	Loss         *float64
	BandwidthBps *int64
}

// Factory makes a Fault of one kind.
type Factory func(env Env, spec Spec) (Fault, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a fault kind available by name. It panics on a duplicate,
// which is a programming error found at start-up.
func Register(kind string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("chaos: kind registered twice: " + kind)
	}
	registry[kind] = f
}

// Kinds lists the registered fault kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// New makes a fault of spec.Kind.
func New(env Env, spec Spec) (Fault, error) {
	registryMu.RLock()
	f, ok := registry[spec.Kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown fault kind %q (known: %v)", spec.Kind, Kinds())
	}
	if len(spec.Targets) == 0 {
		return nil, fmt.Errorf("fault %s: no targets", spec.Kind)
	}
	return f(env, spec)
}

// ownContainer checks that name belongs to env's run before anything is done
// to it, so a typo or a stale plan can never hit someone else's container.
func ownContainer(ctx context.Context, env Env, name string) error {
	info, err := env.Runtime.Inspect(ctx, env.container(name))
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if info.Labels[runtime.LabelRun] != env.RunID {
		return fmt.Errorf("refusing to touch %s: it is not part of run %s", name, env.RunID)
	}
	return nil
}
