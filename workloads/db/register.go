package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

// Register is the linearizability workload: clients in every region read,
// write and compare-and-set a few keys. Every written value is unique, so
// the checker can tell which write a read saw.
type Register struct {
	regions Regions
	cfg     config
	keys    []string
	level   dbclient.Consistency
	mix     [3]int // read, write, cas weights
	seed    uint64
	clients []*registerClient
}

// RegisterOption configures a Register beyond the shared Options.
type RegisterOption func(*Register)

// Keys sets the registers (default r0..r2). Prefix them per run: the
// checker assumes every key starts absent.
func Keys(keys ...string) RegisterOption { return func(r *Register) { r.keys = keys } }

// ReadLevel sets the consistency of reads (default linearizable).
func ReadLevel(c dbclient.Consistency) RegisterOption { return func(r *Register) { r.level = c } }

// Mix sets the relative weights of reads, writes and CAS (default 2:1:1).
func Mix(read, write, cas int) RegisterOption {
	return func(r *Register) { r.mix = [3]int{read, write, cas} }
}

// Seed makes the clients' choices reproducible (default 1).
func Seed(s uint64) RegisterOption { return func(r *Register) { r.seed = s } }

// WithOptions applies shared workload Options.
func WithOptions(opts ...Option) RegisterOption {
	return func(r *Register) {
		for _, o := range opts {
			o(&r.cfg)
		}
	}
}

type registerClient struct {
	id   int // the process id in the history; a new one after an indefinite op
	conn *conn
	rng  *rand.Rand
	seq  int
	seen map[string]*string // last value this client saw per key (nil: absent)
}

// NewRegister checks the options and prepares one connection per client.
func NewRegister(regions Regions, opts ...RegisterOption) (*Register, error) {
	r := &Register{regions: regions, cfg: defaultConfig(), keys: []string{"r0", "r1", "r2"},
		level: dbclient.Linearizable, mix: [3]int{2, 1, 1}, seed: 1}
	for _, o := range opts {
		o(r)
	}
	if err := regions.Validate(); err != nil {
		return nil, err
	}
	if err := r.cfg.validate(); err != nil {
		return nil, err
	}
	if len(r.keys) == 0 || !r.level.Valid() || r.mix[0] < 0 || r.mix[1] < 0 || r.mix[2] < 0 || r.mix[0]+r.mix[1]+r.mix[2] == 0 {
		return nil, fmt.Errorf("register workload: need keys, a valid read level and a positive mix (got %d keys, %q, %v)", len(r.keys), r.level, r.mix)
	}
	for i := range r.cfg.clients {
		_, eps := regions.endpoints(i)
		r.clients = append(r.clients, &registerClient{
			id:   i,
			conn: newConn(eps, r.cfg),
			rng:  rand.New(rand.NewPCG(r.seed, uint64(i))),
			seen: map[string]*string{},
		})
	}
	return r, nil
}

// Run drives every client until ctx ends or each has done MaxOps
// operations, recording them in h. It may be called again, one call at a
// time (e.g. per phase); clients keep their ids and values stay unique.
func (r *Register) Run(ctx context.Context, h loadgen.History) {
	runClients(len(r.clients), func(i int) {
		c := r.clients[i]
		for range r.cfg.maxOps {
			if ctx.Err() != nil {
				return
			}
			wait := r.cfg.think
			if !r.step(ctx, c, h) {
				wait = max(wait, failureBackoff)
			}
			if !pause(ctx, wait) {
				return
			}
		}
	})
}

// step does one operation and reports whether the db answered it.
func (r *Register) step(ctx context.Context, c *registerClient, h loadgen.History) bool {
	key := r.keys[c.rng.IntN(len(r.keys))]
	opCtx, cancel := context.WithTimeout(ctx, r.cfg.opTimeout)
	defer cancel()
	cl := c.conn.client()
	n := c.rng.IntN(r.mix[0] + r.mix[1] + r.mix[2])
	if n < r.mix[0] {
		in := Input{Key: key, Consistency: r.level}
		call := time.Now()
		res, err := cl.Get(opCtx, key, r.level)
		ret := time.Now()
		out := Output{ServedBy: res.ServedBy}
		if r.level == dbclient.Stale {
			out.StalenessMs = res.Staleness.Milliseconds()
			if res.Staleness < 0 {
				out.StalenessMs = -1 // the node never heard from a leader
			}
		}
		switch {
		case err == nil:
			out.Found, out.Value, out.Version = true, res.Value, res.Version
			c.seen[key] = &res.Value
		case errors.Is(err, dbclient.ErrNotFound):
			err = nil
			c.seen[key] = nil
		}
		// A failed read changed nothing, whatever the reason.
		record(h, c.id, KindRead, in, out, err, call, ret)
		c.conn.failed(err)
		return err == nil
	}
	c.seq++
	value := fmt.Sprintf("c%d-%d", c.id, c.seq)
	in := Input{Key: key, Value: value}
	kind := KindWrite
	var (
		version uint64
		err     error
		call    = time.Now()
	)
	if n < r.mix[0]+r.mix[1] {
		version, err = cl.Put(opCtx, key, value)
	} else {
		kind = KindCAS
		in.Expect = c.seen[key]
		req := dbclient.CASRequest{Value: value, ExpectedValue: in.Expect}
		if in.Expect == nil {
			zero := uint64(0)
			req.ExpectedVersion = &zero
		}
		version, err = cl.CAS(opCtx, key, req)
	}
	ret := time.Now()
	out := Output{Version: version}
	var ce *dbclient.ConflictError
	switch {
	case err == nil:
		out.OK, out.Found, out.Value = true, true, value
		c.seen[key] = &in.Value
	case errors.As(err, &ce):
		out.Found, out.Value, out.Version = ce.Current.Version != 0, ce.Current.Value, ce.Current.Version
		c.seen[key] = nil
		if out.Found {
			c.seen[key] = &ce.Current.Value
		}
		err = nil // a failed comparison is an answer: OK=false
	default:
		out.Indefinite = indefinite(err)
	}
	record(h, c.id, kind, in, out, err, call, ret)
	c.conn.failed(err)
	if out.Indefinite {
		// The op may still take effect at any later time, so in the
		// history this process never finishes it; go on as a new one.
		c.id += len(r.clients)
	}
	return err == nil
}
