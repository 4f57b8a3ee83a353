// Package loadgen is the loadgen role: it runs attacks (package
// faultline/loadgen) on request from the controller and streams the results
// back as NDJSON.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"

	lg "github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/nodekit"
	"github.com/prometheus/client_golang/prometheus"

	// History workloads register themselves with package loadgen.
	_ "github.com/faultline/faultline/workloads/broker"
	_ "github.com/faultline/faultline/workloads/db"
)

// Run runs the loadgen role until ctx ends.
func Run(ctx context.Context, args []string) error {
	var f nodekit.Flags
	if err := nodekit.Parse(nodekit.NewFlagSet("loadgen", &f), args); err != nil {
		return err
	}
	gc := lg.TuneGC()
	fmt.Fprintf(os.Stderr, "loadgen: GOGC %d, soft memory limit %d MiB (0: left as set)\n", gc.Percent, gc.MemoryLimit>>20)
	reg := nodekit.NewRegistry()
	return nodekit.Serve(ctx, nodekit.NewServer(f.Listen, Handler(ctx, reg), reg))
}

type handler struct {
	stop     context.Context // ends every attack when the role shuts down
	busy     atomic.Bool
	running  prometheus.Gauge
	requests prometheus.Counter
	errors   *prometheus.CounterVec
}

// Handler serves POST /attack and POST /history (see loadgen.HistoryHandler). Attacks end when their client disconnects or
// when stop ends. One attack runs at a time: two would share the CPU and
// neither's figures would mean what they claim.
func Handler(stop context.Context, reg prometheus.Registerer) http.Handler {
	h := &handler{
		stop: stop,
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadgen_attack_running", Help: "1 while an attack runs.",
		}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadgen_requests_total", Help: "Requests sent by attacks.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadgen_errors_total", Help: "Failed requests, by error kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(h.running, h.requests, h.errors)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+lg.AttackPath, h.attack)
	mux.HandleFunc("POST "+lg.HistoryPath, lg.HistoryHandler(stop))
	return mux
}

func (h *handler) attack(w http.ResponseWriter, r *http.Request) {
	var spec lg.AttackSpec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		http.Error(w, "decode spec: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := spec.Validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !h.busy.CompareAndSwap(false, true) {
		http.Error(w, "an attack is already running", http.StatusConflict)
		return
	}
	defer h.busy.Store(false)
	h.running.Set(1)
	defer h.running.Set(0)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(h.stop, cancel)()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	// A failed write means the controller went away; r.Context() then ends
	// the attack, so the error needs no handling here.
	send := func(m lg.Message) {
		if enc.Encode(m) == nil {
			_ = rc.Flush()
		}
	}
	_ = rc.Flush() // headers out now: the controller knows the attack was accepted
	final, err := lg.Attack(ctx, spec, func(b lg.Bucket) {
		h.requests.Add(float64(b.Requests))
		for k, n := range b.ErrorsByKind {
			h.errors.WithLabelValues(k).Add(float64(n))
		}
		send(lg.Message{Bucket: &b})
	})
	if err != nil && final.Error == "" {
		final.Error = fmt.Sprint(err)
	}
	send(lg.Message{Final: &final})
}
