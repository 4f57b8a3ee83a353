package db

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

// The history workloads a scenario names in its load entries (see
// loadgen.RegisterHistory); each region's loadgen runs them against its own
// region's db nodes first, and all regions share the run's keys.
const (
	// WorkloadRegister reads (linearizable), writes and compare-and-sets a
	// few keys shared by every region: checked for linearizability.
	WorkloadRegister = "db-register"
	// WorkloadSet adds unique keys, then reads every one back: checked for
	// lost writes.
	WorkloadSet = "db-set"
	// WorkloadStale only reads the register's keys at the stale level from
	// the region's own node: the age of what replicas serve, which goes on
	// when a region is cut off.
	WorkloadStale = "db-stale"
)

// dialTimeout bounds a client's connection attempt: the farthest region is
// a couple of hundred milliseconds away.
const dialTimeout = 500 * time.Millisecond

// registerKeys are the registers every region shares (prefixed per run).
var registerKeys = []string{"r0", "r1", "r2"}

func init() {
	loadgen.RegisterHistory(WorkloadRegister, func(s loadgen.HistorySpec) (loadgen.HistoryWorkload, error) {
		r, err := NewRegister(Regions{s.Region: s.Local}, Keys(prefixed(s.Prefix, registerKeys)...),
			Seed(uint64(s.Seed)), WithOptions(specOptions(s)...))
		return registerRun{r}, err
	})
	loadgen.RegisterHistory(WorkloadStale, func(s loadgen.HistorySpec) (loadgen.HistoryWorkload, error) {
		// No fallback: a replica cut off from the others keeps serving
		// its region, which is the point of measuring it.
		s.Remote = nil
		r, err := NewRegister(Regions{s.Region: s.Local}, Keys(prefixed(s.Prefix, registerKeys)...),
			ReadLevel(dbclient.Stale), Mix(1, 0, 0), Seed(uint64(s.Seed)), WithOptions(specOptions(s)...))
		return registerRun{r}, err
	})
	loadgen.RegisterHistory(WorkloadSet, func(s loadgen.HistorySpec) (loadgen.HistoryWorkload, error) {
		// Each region adds keys of its own: set keys are unique per run
		// and region.
		set, err := NewSet(Regions{s.Region: s.Local}, s.Prefix+s.Region+"/", specOptions(s)...)
		return setRun{set}, err
	})
}

func prefixed(prefix string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = prefix + k
	}
	return out
}

// specOptions are the options every db history workload takes from its
// spec. The HTTP client keeps a connection per client alive.
func specOptions(s loadgen.HistorySpec) []Option {
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: s.Clients,
		// A killed node's address answers nothing: give up on the dial
		// well before the operation's timeout, so the client moves on
		// to the next node (a failed dial is a definite failure).
		DialContext: (&net.Dialer{Timeout: min(s.OpTimeout()/2, dialTimeout)}).DialContext,
	}}
	return []Option{Clients(s.Clients), OpTimeout(s.OpTimeout()), Think(s.Think),
		Fallback(s.Remote...), HTTPOptions(dbclient.WithHTTPClient(hc))}
}

type registerRun struct{ *Register }

func (r registerRun) Finish(context.Context, loadgen.History) {}

type setRun struct{ *Set }

func (s setRun) Run(ctx context.Context, h loadgen.History)    { s.Add(ctx, h) }
func (s setRun) Finish(ctx context.Context, h loadgen.History) { s.ReadAll(ctx, h) }
