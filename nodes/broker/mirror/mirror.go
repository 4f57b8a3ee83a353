// Package mirror is the `mirror` role: it copies a topic from one broker
// cluster (a region's) to another, partition by partition and in order,
// like Kafka's MirrorMaker, and reports how far behind its source it is.
// Copying is at least once: a batch whose outcome is unknown is sent again.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/protocol"
	"github.com/faultline/faultline/nodes/nodekit"
)

// StatusPath serves the mirror's Status as JSON.
const StatusPath = "/mirror/status"

// Status is what the mirror reports.
type Status struct {
	// Started is false until the topic was found at the source and every
	// partition's copy began.
	Started bool `json:"started"`
	// LagMS is how far behind the source's present the target is
	// guaranteed to be, the worst over partitions: the time since the
	// newer of the last copied record's source timestamp and the start of
	// the last read that found the copy caught up. It grows while the
	// source cannot be read, and drains once the copy catches up. With an
	// idle source it stays under a read's long-poll wait (fetchWait).
	LagMS   float64 `json:"lag_ms"`
	Copied  int64   `json:"copied"` // records written to the target
	Errors  int64   `json:"errors"` // failed reads or writes (retried)
	Source  string  `json:"source"`
	Topic   string  `json:"topic"`
	Parts   int     `json:"partitions"`
	LastErr string  `json:"last_error,omitempty"`
}

// Config configures a mirror.
type Config struct {
	Source, Target []string // broker addresses
	SourceName     string   // for Status (e.g. the source region)
	Topic          string
	// Partitions and ReplicationFactor create the target topic when it is
	// missing: Partitions 0 copies the source's count, 0 RF takes the
	// target brokers' default.
	ReplicationFactor int32
	MinISR            int32
}

// fetchWait bounds a read's long poll; it is also the lag's floor with an
// idle source.
const fetchWait = 200 * time.Millisecond

// opTimeout bounds one read or one batch's write.
const opTimeout = 5 * time.Second

// Mirror copies Config.Topic until its context ends.
type Mirror struct {
	cfg    Config
	mu     sync.Mutex
	parts  []*partState
	status Status
}

type partState struct {
	lastTS     time.Time // source timestamp of the last copied record
	caughtUpAt time.Time // start of the last read that found the copy caught up
}

// New returns a mirror for cfg.
func New(cfg Config) *Mirror {
	return &Mirror{cfg: cfg, status: Status{Source: cfg.SourceName, Topic: cfg.Topic}}
}

// Status is the mirror's current status.
func (m *Mirror) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	if st.Started {
		now := time.Now()
		for _, p := range m.parts {
			since := p.lastTS
			if p.caughtUpAt.After(since) {
				since = p.caughtUpAt
			}
			st.LagMS = max(st.LagMS, float64(now.Sub(since))/float64(time.Millisecond))
		}
	}
	return st
}

func (m *Mirror) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status.Errors++
	m.status.LastErr = err.Error()
}

// Run copies until ctx ends.
func (m *Mirror) Run(ctx context.Context) error {
	src := client.New(m.cfg.Source, client.RequestTimeout(opTimeout))
	defer src.Close()
	dst := client.New(m.cfg.Target, client.RequestTimeout(opTimeout))
	defer dst.Close()
	n, err := m.setup(ctx, src, dst)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for p := range int32(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.copyPartition(ctx, src, dst, p)
		}()
	}
	wg.Wait()
	return nil
}

// setup waits for the source topic and makes sure the target has it with
// as many partitions.
func (m *Mirror) setup(ctx context.Context, src, dst *client.Client) (int, error) {
	for {
		n, err := m.trySetup(ctx, src, dst)
		if err == nil {
			m.mu.Lock()
			m.parts = make([]*partState, n)
			now := time.Now()
			for i := range m.parts {
				m.parts[i] = &partState{caughtUpAt: now}
			}
			m.status.Started, m.status.Parts = true, n
			m.mu.Unlock()
			return n, nil
		}
		m.fail(err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (m *Mirror) trySetup(ctx context.Context, src, dst *client.Client) (int, error) {
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n, err := src.Partitions(sctx, m.cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	err = dst.CreateTopic(sctx, m.cfg.Topic, client.TopicConfig{Partitions: int32(n), ReplicationFactor: m.cfg.ReplicationFactor, MinISR: m.cfg.MinISR})
	if err != nil && !errors.Is(err, protocol.TopicAlreadyExists) {
		return 0, fmt.Errorf("target: %w", err)
	}
	got, err := dst.Partitions(sctx, m.cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	if got != n {
		return 0, fmt.Errorf("target topic %s has %d partitions, source %d", m.cfg.Topic, got, n)
	}
	return n, nil
}

// copyPartition reads partition p of the source from offset 0 and writes
// each read's records to the target's partition p, moving on only once the
// target acknowledged all of them (acks=all).
func (m *Mirror) copyPartition(ctx context.Context, src, dst *client.Client, p int32) {
	con := client.NewConsumer(src, m.cfg.Topic, client.FetchMaxWait(fetchWait))
	var prod *client.Producer
	defer func() {
		if prod != nil {
			_ = prod.Close()
		}
	}()
	for ctx.Err() == nil {
		if prod == nil {
			pctx, cancel := context.WithTimeout(ctx, opTimeout)
			var err error
			prod, err = client.NewProducer(pctx, dst, m.cfg.Topic, client.Acks(client.AcksAll),
				client.WithPartitioner(func([]byte, int) int { return int(p) }), client.DeliveryTimeout(opTimeout))
			cancel()
			if err != nil {
				m.fail(fmt.Errorf("target producer: %w", err))
				prod = nil
				sleep(ctx, 500*time.Millisecond)
				continue
			}
		}
		sent := time.Now()
		fctx, cancel := context.WithTimeout(ctx, opTimeout)
		f, err := con.Fetch(fctx, p, con.Position(p))
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.fail(fmt.Errorf("read %s/%d: %w", m.cfg.Topic, p, err))
				sleep(ctx, 100*time.Millisecond)
			}
			continue
		}
		if err := m.write(ctx, prod, f); err != nil {
			if ctx.Err() == nil {
				m.fail(fmt.Errorf("write %s/%d: %w", m.cfg.Topic, p, err))
				sleep(ctx, 100*time.Millisecond)
			}
			continue // the same records again: at least once
		}
		next := con.Position(p)
		if k := len(f.Records); k > 0 {
			next = f.Records[k-1].Offset + 1
			con.Seek(p, next)
		}
		m.mu.Lock()
		ps := m.parts[p]
		if k := len(f.Records); k > 0 {
			ps.lastTS = time.Unix(0, f.Records[k-1].Timestamp)
			m.status.Copied += int64(k)
		}
		if next >= f.HighWatermark {
			ps.caughtUpAt = sent
		}
		m.mu.Unlock()
	}
}

// write sends a read's records and waits until every one is acknowledged.
func (m *Mirror) write(ctx context.Context, prod *client.Producer, f client.Fetched) error {
	if len(f.Records) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	results := make(chan error, len(f.Records))
	for _, r := range f.Records {
		prod.SendAsync(wctx, client.Message{Key: r.Key, Value: r.Value}, func(res client.Result) { results <- res.Err })
	}
	var errs []error
	for range f.Records {
		if err := <-results; err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Run is the mirror role's entry point.
func Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var httpAddr, source, target string
	var cfg Config
	fs.StringVar(&httpAddr, "http", ":8080", "HTTP listen address for /healthz, /metrics and "+StatusPath)
	fs.StringVar(&source, "source", "", "source cluster brokers, host:port,...")
	fs.StringVar(&cfg.SourceName, "source-region", "", "the source's name, for the status")
	fs.StringVar(&target, "target", "", "target cluster brokers, host:port,...")
	fs.StringVar(&cfg.Topic, "topic", "", "topic to copy")
	var rf, minISR int
	fs.IntVar(&rf, "replication-factor", 0, "replication factor of the target topic if the mirror creates it (0: the target's default)")
	fs.IntVar(&minISR, "min-insync-replicas", 0, "min.insync.replicas of the target topic if the mirror creates it (0: the target's default)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: mirror: %v", nodes.ErrUsage, err)
	}
	cfg.Source, cfg.Target = splitList(source), splitList(target)
	cfg.ReplicationFactor, cfg.MinISR = int32(rf), int32(minISR)
	if fs.NArg() > 0 || len(cfg.Source) == 0 || len(cfg.Target) == 0 || cfg.Topic == "" {
		return fmt.Errorf("%w: mirror: need --source, --target and --topic", nodes.ErrUsage)
	}
	m := New(cfg)
	reg := nodekit.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "mirror", Name: "lag_ms", Help: "How far behind the source the copy is, in milliseconds (see Status.LagMS).",
	}, func() float64 { return m.Status().LagMS }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "mirror", Name: "copied_records_total", Help: "Records written to the target.",
	}, func() float64 { return float64(m.Status().Copied) }))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.Status())
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	copied := make(chan error, 1)
	go func() { copied <- m.Run(ctx) }()
	err := nodekit.Serve(ctx, nodekit.NewServer(httpAddr, mux, reg))
	cancel()
	if cerr := <-copied; cerr != nil && !errors.Is(cerr, context.Canceled) {
		err = errors.Join(err, cerr)
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
