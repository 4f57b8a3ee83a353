package nodekit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DrainTimeout bounds how long Serve waits for in-flight requests after ctx
// ends, so a stopped container exits well inside Docker's 10 s stop grace.
const DrainTimeout = 2 * time.Second

// NewRegistry returns a metrics registry with the process and Go collectors,
// separate from the global one so tests can build many servers in a process.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return reg
}

// Server serves a role's handler plus /healthz and /metrics.
type Server struct {
	addr    string
	ln      net.Listener
	ready   func() error
	handler http.Handler
	state   atomic.Int32
}

const (
	stateStarting int32 = iota
	stateServing
	stateDraining
)

// Option configures a Server.
type Option func(*Server)

// WithListener serves on ln instead of listening on the address (tests use
// it to serve on an ephemeral loopback port).
func WithListener(ln net.Listener) Option { return func(s *Server) { s.ln = ln } }

// WithReadiness adds a check that must pass for /healthz to report 200, for
// roles that are not ready merely because they listen.
func WithReadiness(check func() error) Option { return func(s *Server) { s.ready = check } }

// NewServer builds a server on addr for h, exposing reg on /metrics.
func NewServer(addr string, h http.Handler, reg *prometheus.Registry, opts ...Option) *Server {
	s := &Server{addr: addr}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", h)
	s.handler = mux
	return s
}

// Handler is the full handler (role + /healthz + /metrics), for tests.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	switch st := s.state.Load(); {
	case st == stateDraining:
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case st != stateServing:
		http.Error(w, "starting", http.StatusServiceUnavailable)
	case s.ready != nil:
		if err := s.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	default:
		fmt.Fprintln(w, "ok")
	}
}

// Serve serves until ctx ends, then reports 503 on /healthz and drains
// in-flight requests for up to DrainTimeout. It returns nil after a clean
// shutdown.
func Serve(ctx context.Context, srv *Server) error {
	ln := srv.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", srv.addr); err != nil {
			return fmt.Errorf("listen %s: %w", srv.addr, err)
		}
	}
	hs := &http.Server{
		Handler:           srv.handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	errc := make(chan error, 1)
	srv.state.Store(stateServing)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	srv.state.Store(stateDraining)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DrainTimeout)
	defer cancel()
	err := hs.Shutdown(dctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Handlers still running after the grace (long streams) are cut off.
		err = hs.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown %s: %w", ln.Addr(), err)
	}
	return nil
}
