// Package runtime is the seam between faultline and whatever runs its
// containers. Docker is the implementation today (runtime/docker); an
// in-memory implementation (runtime/memory) lets the scenario engine be tested
// in milliseconds. Both must pass the one contract suite in
// runtime/runtimetest, so a test that passes against memory means something
// against Docker.
package runtime

import (
	"context"
	"errors"
	"time"
)

// Labels every faultline resource carries. Cleanup and chaos select by these,
// never by generated names, so that a run only ever touches what it made.
const (
	LabelRun    = "faultline.run"
	LabelRegion = "faultline.region"
	LabelRole   = "faultline.role"
	LabelNode   = "faultline.node"
	// LabelOwnerPID records the controller process that made a resource, so
	// the next run can tell a crashed run's leftovers from a live run's.
	LabelOwnerPID = "faultline.owner-pid"
)

// ErrNotFound is returned (wrapped) when a named container or network does not exist.
var ErrNotFound = errors.New("not found")

// Labels is a set of key/value labels; as a selector, every pair must match.
type Labels map[string]string

// Matches reports whether have carries every label in l.
func (l Labels) Matches(have map[string]string) bool {
	for k, v := range l {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// NetworkSpec describes one isolated network (a region's LAN).
type NetworkSpec struct {
	Name   string
	Subnet string // CIDR, e.g. 10.201.1.0/24
	Labels Labels
}

// NetworkInfo is what Inspect-like calls report of a network.
type NetworkInfo struct {
	ID     string
	Name   string
	Subnet string
	Labels Labels
}

// Attachment places a container on a network, optionally at a fixed address.
type Attachment struct {
	Network string
	IP      string // empty: the runtime chooses
}

// HealthCheck is run inside the container; exit 0 means healthy.
type HealthCheck struct {
	Cmd      []string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
	// HTTPPort and HTTPPath, when set, name an HTTP endpoint answering 200
	// when the container is healthy. A runtime that can reach the
	// container's address probes it directly while waiting for health: on a
	// busy 2-core machine one `docker exec` of Cmd can take seconds, and the
	// engine's own schedule of Cmd runs only every Interval.
	HTTPPort int
	HTTPPath string
}

// ContainerSpec describes one node's container.
type ContainerSpec struct {
	Name     string
	Image    string
	Cmd      []string
	Env      map[string]string
	Labels   Labels
	Networks []Attachment
	// Ports are container TCP ports published on 127.0.0.1 at a port the
	// runtime chooses; Inspect reports where.
	Ports   []int
	CapAdd  []string
	Devices []string // host device paths, e.g. /dev/net/tun
	Sysctls map[string]string
	Health  *HealthCheck
}

// State is a container's lifecycle state.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateExited  State = "exited"
)

// ContainerInfo is a container as the runtime sees it now.
type ContainerInfo struct {
	ID     string
	Name   string
	Labels Labels
	State  State
	// Healthy is true once the health check has passed since the last start
	// (always true for a running container without a health check).
	Healthy bool
	Pid     int               // host PID of the container's init, 0 when not running
	IPs     map[string]string // network name -> address
	Ports   map[int]string    // container port -> "127.0.0.1:NNNNN"
}

// Runtime runs containers on isolated networks. Every method takes a context
// and must return when it is done. Names are the names given in specs.
type Runtime interface {
	CreateNetwork(ctx context.Context, spec NetworkSpec) error
	RemoveNetwork(ctx context.Context, name string) error
	ListNetworks(ctx context.Context, selector Labels) ([]NetworkInfo, error)

	// Create makes a container without starting it.
	Create(ctx context.Context, spec ContainerSpec) error
	Start(ctx context.Context, name string) error
	// Stop sends SIGTERM and, after grace, SIGKILL.
	Stop(ctx context.Context, name string, grace time.Duration) error
	// Kill sends SIGKILL; the container ends up exited.
	Kill(ctx context.Context, name string) error
	Pause(ctx context.Context, name string) error
	Unpause(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Remove(ctx context.Context, name string) error

	Inspect(ctx context.Context, name string) (ContainerInfo, error)
	List(ctx context.Context, selector Labels) ([]ContainerInfo, error)
	// WaitHealthy blocks until the container is running and healthy, or ctx ends.
	WaitHealthy(ctx context.Context, name string) error

	// RemoveByLabel removes every container and then every network matching
	// selector. Containers are stopped and removed before their networks (the
	// engine can otherwise leave stale endpoints behind).
	RemoveByLabel(ctx context.Context, selector Labels) error

	Close() error
}
