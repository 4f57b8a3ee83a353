// Package db holds the workloads that drive faultline's replicated db role
// (nodes/db) through dbclient and record every operation in a
// loadgen.History for the checkers under checkers/.
package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

// Operation kinds recorded in the history.
const (
	KindRead  = "read"  // Get at Input.Consistency
	KindWrite = "write" // unconditional Put
	KindCAS   = "cas"   // compare-and-set on the value
	KindAdd   = "add"   // the set workload's unique Put
	KindFinal = "final-read"
)

// Input is an operation's request as recorded.
type Input struct {
	Key         string               `json:"key"`
	Consistency dbclient.Consistency `json:"consistency,omitempty"`
	Value       string               `json:"value,omitempty"`
	// Expect is a CAS's expected value; nil means "the key must not exist".
	Expect *string `json:"expect,omitempty"`
}

// Output is an operation's outcome as recorded. A failed operation also has
// loadgen.Operation.Error set; Indefinite says whether it may still have
// taken effect (a checker must then treat its return as never seen).
type Output struct {
	Found   bool   `json:"found,omitempty"`
	Value   string `json:"value,omitempty"`
	Version uint64 `json:"version,omitempty"`
	// OK is a CAS's verdict; a failed comparison is OK=false with the key's
	// current state in Found/Value/Version.
	OK          bool   `json:"ok,omitempty"`
	Indefinite  bool   `json:"indefinite,omitempty"`
	StalenessMs int64  `json:"staleness_ms,omitempty"`
	ServedBy    string `json:"served_by,omitempty"`
}

// Decode returns op's Input and Output.
func Decode(op loadgen.Operation) (Input, Output, error) {
	var in Input
	var out Output
	if err := json.Unmarshal(op.Input, &in); err != nil {
		return in, out, fmt.Errorf("decode %s input: %w", op.Kind, err)
	}
	if len(op.Output) > 0 {
		if err := json.Unmarshal(op.Output, &out); err != nil {
			return in, out, fmt.Errorf("decode %s output: %w", op.Kind, err)
		}
	}
	return in, out, nil
}

func record(h loadgen.History, client int, kind string, in Input, out Output, err error, call, ret time.Time) {
	op := loadgen.Operation{Client: client, Kind: kind, Call: call, Return: ret}
	op.Input, _ = json.Marshal(in) // plain structs of strings and numbers cannot fail
	op.Output, _ = json.Marshal(out)
	if err != nil {
		op.Error = err.Error()
	}
	h.Record(op)
}

// indefinite is dbclient.Indefinite, except that a refused or timed-out
// connection reached no server, so that write certainly did not happen.
func indefinite(err error) bool {
	return dbclient.Indefinite(err) && !errors.Is(err, syscall.ECONNREFUSED) && !dialFailed(err)
}

// dialFailed: the connection was never made, so nothing was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// failureBackoff spaces a client's retries after a failed operation, so a
// dead endpoint does not turn into thousands of failed ops in the history.
const failureBackoff = 50 * time.Millisecond

// Regions lists db endpoints ("http://host:port") per region; clients are
// spread over the regions in turn, so every region has clients.
type Regions map[string][]string

// Validate rejects an empty map or a region without endpoints.
func (r Regions) Validate() error {
	if len(r) == 0 {
		return errors.New("db workload: no regions")
	}
	for name, eps := range r {
		if len(eps) == 0 {
			return fmt.Errorf("db workload: region %q has no endpoints", name)
		}
	}
	return nil
}

// endpoints returns, for client i, its region and the region's endpoints
// rotated so that clients of one region start on different nodes.
func (r Regions) endpoints(i int) (string, []string) {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	name := names[i%len(names)]
	eps := r[name]
	k := (i / len(names)) % len(eps)
	return name, append(append([]string(nil), eps[k:]...), eps[:k]...)
}

// conn is one client's connection to its region: on a failure it moves on
// to the region's next endpoint, as a client with a list of replicas would.
type conn struct {
	clients []*dbclient.Client
	cur     int
}

func newConn(eps []string, cfg config) *conn {
	c := &conn{}
	for _, ep := range append(slices.Clone(eps), cfg.fallback...) {
		c.clients = append(c.clients, dbclient.New(ep, cfg.httpOpts...))
	}
	return c
}

func (c *conn) client() *dbclient.Client { return c.clients[c.cur] }

// failed rotates to the next endpoint after an error that was not an
// answer about the data itself.
func (c *conn) failed(err error) {
	var ce *dbclient.ConflictError
	if err == nil || errors.As(err, &ce) || errors.Is(err, dbclient.ErrNotFound) {
		return
	}
	c.cur = (c.cur + 1) % len(c.clients)
}

// config is shared by both workloads.
type config struct {
	clients   int
	opTimeout time.Duration
	think     time.Duration
	maxOps    int
	httpOpts  []dbclient.Option
	fallback  []string
}

func defaultConfig() config {
	return config{clients: 6, opTimeout: 2 * time.Second, maxOps: 100_000}
}

// Option configures a workload.
type Option func(*config)

// Clients sets the number of concurrent clients (default 6).
func Clients(n int) Option { return func(c *config) { c.clients = n } }

// OpTimeout bounds each request (default 2 s); a write that times out is
// recorded as indefinite.
func OpTimeout(d time.Duration) Option { return func(c *config) { c.opTimeout = d } }

// Think makes each client pause between operations (default none).
func Think(d time.Duration) Option { return func(c *config) { c.think = d } }

// MaxOps bounds the operations of one client per run (default 100000), so
// a run ends by itself even without a deadline.
func MaxOps(n int) Option { return func(c *config) { c.maxOps = n } }

// Fallback adds endpoints every client moves on to, in order, after its
// region's own have failed: the other regions' nodes, nearest first.
func Fallback(endpoints ...string) Option {
	return func(c *config) { c.fallback = append(c.fallback, endpoints...) }
}

// HTTPOptions passes options to every dbclient.
func HTTPOptions(opts ...dbclient.Option) Option {
	return func(c *config) { c.httpOpts = append(c.httpOpts, opts...) }
}

func (c config) validate() error {
	if c.clients < 1 {
		return fmt.Errorf("db workload: %d clients", c.clients)
	}
	if c.opTimeout <= 0 || c.maxOps < 1 || c.think < 0 {
		return errors.New("db workload: op timeout and max ops must be positive")
	}
	return nil
}

// runClients runs body once per client and waits for all of them.
func runClients(n int, body func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(i)
		}()
	}
	wg.Wait()
}

// pause sleeps d unless ctx ends first; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
