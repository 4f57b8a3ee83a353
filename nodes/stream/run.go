// Package stream is the stream role: `node stream master` assigns the word
// count topology's tasks to workers and moves them when a worker dies;
// `node stream worker` runs the tasks it is given. The engine lives in
// engine/, the programming model in topo/, the topology in wordcount/ and
// the master/worker protocol in cluster/.
package stream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/protocol"
	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/nodekit"
	"github.com/faultline/faultline/nodes/stream/cluster"
	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/topo"
	"github.com/faultline/faultline/nodes/stream/wordcount"
)

// Run runs the master or a worker: args[0] is the mode.
func Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: stream: want a mode, master or worker", nodes.ErrUsage)
	}
	switch args[0] {
	case "master":
		return runMaster(ctx, args[1:])
	case "worker":
		return runWorker(ctx, args[1:])
	}
	return fmt.Errorf("%w: stream: unknown mode %q (want master or worker)", nodes.ErrUsage, args[0])
}

// topologyFlags are the flags master and workers must agree on.
type topologyFlags struct {
	perSpout uint64
	failRate float64
	rate     float64
	brokers  string // non-empty: the spouts read the broker topic
	topic    string
}

func (t *topologyFlags) bind(fs *flag.FlagSet) {
	fs.Uint64Var(&t.perSpout, "per-spout", 0, "sentences per spout task; 0 runs without end")
	fs.Float64Var(&t.failRate, "fail-rate", 0, "chance that a bolt fails a tuple, to exercise replay")
	fs.Float64Var(&t.rate, "rate", 0, "new sentences a second per spout task; 0: as fast as the topology takes them")
	fs.StringVar(&t.brokers, "brokers", "", "broker addresses (host:port,...): spout task i reads partition i of --topic, which a feeder fills")
	fs.StringVar(&t.topic, "topic", "sentences", "the broker topic word count reads")
}

// config is word count as the flags shape it; with brokers, its spouts read
// the topic through c.
func (t *topologyFlags) config(c *client.Client) wordcount.Config {
	cfg := wordcount.Lecture(t.perSpout)
	cfg.FailRate = t.failRate
	cfg.Rate = t.rate
	if c != nil {
		cfg.Source = wordcount.SourceBroker(c, t.topic)
	}
	return cfg
}

func (t *topologyFlags) build(c *client.Client) (*topo.Topology, error) {
	return wordcount.Build(t.config(c))
}

// sinkFlags say where the sink writes the counts besides its state.
type sinkFlags struct {
	to string
	db string
}

func (f *sinkFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.to, "sink", "none", "where the sink also writes the counts: none, console (a line per checkpoint on stdout) or db (a key per word, see --sink-db)")
	fs.StringVar(&f.db, "sink-db", "", "db node URLs (http://host:port,...) for --sink db")
}

func (f *sinkFlags) writer() (wordcount.CountWriter, error) {
	switch f.to {
	case "none":
		return nil, nil
	case "console":
		return wordcount.Console{W: os.Stdout, Now: time.Now}, nil
	case "db":
		if f.db == "" {
			return nil, fmt.Errorf("%w: --sink db needs --sink-db", nodes.ErrUsage)
		}
		m, err := dbclient.NewMulti(strings.Split(f.db, ","), 2*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%w: --sink-db: %v", nodes.ErrUsage, err)
		}
		return wordcount.DB{Nodes: m}, nil
	}
	return nil, fmt.Errorf("%w: --sink %q: want none, console or db", nodes.ErrUsage, f.to)
}

// brokerClient is a client of --brokers, or nil without them.
func (t *topologyFlags) brokerClient() *client.Client {
	if t.brokers == "" {
		return nil
	}
	return client.New(strings.Split(t.brokers, ","))
}

// feed creates the topic word count reads (a partition per spout task,
// replicated three times where there are three brokers, acknowledged by
// two), unless a feeder before it did, and writes the input into it.
func (t *topologyFlags) feed(ctx context.Context, c *client.Client) error {
	cfg := t.config(nil)
	rf := min(3, len(strings.Split(t.brokers, ",")))
	err := c.CreateTopic(ctx, t.topic, client.TopicConfig{Partitions: int32(cfg.Spouts), ReplicationFactor: int32(rf), MinISR: int32(min(2, rf))})
	if err != nil && !errors.Is(err, protocol.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", t.topic, err)
	}
	return wordcount.Feed(ctx, c, t.topic, cfg.Spouts, t.perSpout, t.rate)
}

// RunFeeder is the feeder role: the source a broker-fed word count reads,
// writing its input into the topic. It is a process of its own, as a real
// source is: the stream master and workers can die without the input
// stopping, and a feeder started again carries on where the topic ends.
func RunFeeder(ctx context.Context, args []string) error {
	var common nodekit.Flags
	var tf topologyFlags
	fs := nodekit.NewFlagSet("feeder", &common)
	tf.bind(fs)
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	c := tf.brokerClient()
	if c == nil {
		return fmt.Errorf("%w: feeder: --brokers is required", nodes.ErrUsage)
	}
	defer c.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return nodekit.Serve(ctx, nodekit.NewServer(common.Listen, http.NotFoundHandler(), nodekit.NewRegistry()))
	})
	// The source outlives a broker outage: it starts again where the
	// partitions end.
	g.Go(func() error {
		for {
			err := tf.feed(ctx, c)
			if err == nil || ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(os.Stderr, "feeder: %v; feeding again in 1 s\n", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	})
	return g.Wait()
}

func runMaster(ctx context.Context, args []string) error {
	var common nodekit.Flags
	var tf topologyFlags
	fs := nodekit.NewFlagSet("stream master", &common)
	tf.bind(fs)
	minWorkers := fs.Int("workers", 1, "workers to wait for before the first assignment")
	ackers := fs.Int("ackers", 2, "acker tasks")
	hbTimeout := fs.Duration("heartbeat-timeout", 3*time.Second, "silence after which a worker counts as dead")
	db := fs.String("db", "", "db node URLs (http://host:port,...) keeping the assignment and checkpoints; empty: in memory, lost with the master")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	if *minWorkers < 1 || *ackers < 1 || *hbTimeout <= 0 {
		return fmt.Errorf("%w: stream master: --workers and --ackers must be ≥ 1, --heartbeat-timeout > 0", nodes.ErrUsage)
	}
	tp, err := tf.build(nil)
	if err != nil {
		return fmt.Errorf("stream master: %w", err)
	}
	var assignments cluster.AssignmentStore = &cluster.MemAssignmentStore{}
	var states engine.StateStore = engine.NewMemStateStore()
	if *db != "" {
		store, err := cluster.NewDBStore(strings.Split(*db, ","), "stream/")
		if err != nil {
			return fmt.Errorf("%w: stream master: %v", nodes.ErrUsage, err)
		}
		assignments, states = store.Assignments(), store.States()
	}
	m := cluster.NewMaster(tp, assignments, states,
		cluster.WithMinWorkers(*minWorkers), cluster.WithAckers(*ackers), cluster.WithHeartbeatTimeout(*hbTimeout))
	srv := nodekit.NewServer(common.Listen, m.Handler(), nodekit.NewRegistry())
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.Run(ctx) })
	g.Go(func() error { return nodekit.Serve(ctx, srv) })
	return g.Wait()
}

func runWorker(ctx context.Context, args []string) error {
	var common nodekit.Flags
	var tf topologyFlags
	fs := nodekit.NewFlagSet("stream worker", &common)
	tf.bind(fs)
	master := fs.String("master", "", "master base URL, e.g. http://stream-master:8080")
	dataListen := fs.String("data-listen", ":7100", "TCP address for tuples from other workers")
	advertise := fs.String("advertise", "", "address other workers dial (default: node name and the data port)")
	acking := fs.Bool("acking", true, "track every sentence until fully processed, replaying on timeout")
	timeout := fs.Duration("message-timeout", 10*time.Second, "time before an unfinished sentence is replayed")
	maxPending := fs.Int("max-pending", 2000, "unacked sentences per spout task")
	heartbeat := fs.Duration("heartbeat", 500*time.Millisecond, "heartbeat period")
	var sf sinkFlags
	sf.bind(fs)
	db := fs.String("db", "", "db node URLs (http://host:port,...) where the worker keeps its tasks' checkpoints itself; empty: at the master")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	if *master == "" {
		return fmt.Errorf("%w: stream worker: --master is required", nodes.ErrUsage)
	}
	id := common.Node
	if id == "" {
		return fmt.Errorf("%w: stream worker: --node (or $%s) is required", nodes.ErrUsage, nodekit.EnvNode)
	}
	bc := tf.brokerClient()
	if bc != nil {
		defer bc.Close()
	}
	cfg := tf.config(bc)
	sink, err := sf.writer()
	if err != nil {
		return fmt.Errorf("stream worker: %w", err)
	}
	cfg.Sink = sink
	tp, err := wordcount.Build(cfg)
	if err != nil {
		return fmt.Errorf("stream worker: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *dataListen)
	if err != nil {
		return fmt.Errorf("stream worker listen %s: %w", *dataListen, err)
	}
	if *advertise == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		*advertise = net.JoinHostPort(id, port)
	}
	var store engine.StateStore
	if *db != "" {
		s, err := cluster.NewDBStore(strings.Split(*db, ","), "stream/", cluster.WithOwner(id))
		if err != nil {
			return fmt.Errorf("%w: stream worker: %v", nodes.ErrUsage, err)
		}
		store = s.States()
	}
	var opts []engine.Option
	if *acking {
		opts = append(opts, engine.WithAcking(*timeout, *maxPending))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, errc := cluster.RunWorker(ctx, tp, cluster.WorkerConfig{
		ID: id, Master: *master, Listener: ln, Advertise: *advertise, Every: *heartbeat, Store: store, Engine: opts,
	})
	reg := nodekit.NewRegistry()
	registerStats(reg, w)
	srv := nodekit.NewServer(common.Listen, http.NotFoundHandler(), reg)
	serveErr := nodekit.Serve(ctx, srv)
	cancel()
	return errors.Join(serveErr, <-errc)
}

// registerStats exports a worker's counters, and per component (label
// component) Storm UI's figures.
func registerStats(reg prometheus.Registerer, w *engine.Worker) {
	for name, v := range map[string]interface{ Load() int64 }{
		"emitted":  &w.Stats.Emitted,
		"acked":    &w.Stats.Acked,
		"failed":   &w.Stats.Failed,
		"replayed": &w.Stats.Replayed,
		"executed": &w.Stats.Executed,
		"dropped":  &w.Stats.Dropped,
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "stream", Name: name + "_total", Help: "stream worker tuples or messages " + name,
		}, func() float64 { return float64(v.Load()) }))
	}
	for comp, cs := range w.Components() {
		for name, m := range map[string]struct {
			v     interface{ Load() int64 }
			scale float64
			help  string
		}{
			"emitted_total":          {&cs.Emitted, 1, "tuples the component emitted"},
			"executed_total":         {&cs.Executed, 1, "tuples the component executed"},
			"acked_total":            {&cs.Acked, 1, "spout messages fully processed"},
			"failed_total":           {&cs.Failed, 1, "spout messages failed or timed out; tuples a bolt failed"},
			"replayed_total":         {&cs.Replayed, 1, "spout messages emitted again"},
			"complete_seconds_total": {&cs.CompleteNanos, 1e-9, "sum over acked messages of emit-to-ack time"},
			"busy_seconds_total":     {&cs.BusyNanos, 1e-9, "time the component's tasks spent executing"},
		} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "stream", Subsystem: "component", Name: name, Help: m.help,
				ConstLabels: prometheus.Labels{"component": comp},
			}, func() float64 { return float64(m.v.Load()) * m.scale }))
		}
	}
}
