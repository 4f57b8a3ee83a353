package geodns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownGrace bounds how long in-flight DNS and HTTP exchanges may take to
// finish once the context ends.
const shutdownGrace = 5 * time.Second

// Serve answers DNS on the UDP sockets and TCP listeners until ctx ends or
// one of them fails. It takes ownership of all of them and closes them.
// Several UDP sockets bound with SO_REUSEPORT (see ListenUDP) each get their
// own reader, which is what lets the server use more than one core.
func (s *Server) Serve(ctx context.Context, udp []net.PacketConn, tcp []net.Listener) error {
	var servers []*dns.Server
	for _, pc := range udp {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.DefaultMsgSize})
	}
	for _, ln := range tcp {
		servers = append(servers, &dns.Server{Listener: ln, Handler: s})
	}
	if len(servers) == 0 {
		return errors.New("dns serve: no sockets")
	}
	errc := make(chan error, len(servers))
	started := make(chan struct{}, len(servers))
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { errc <- srv.ActivateAndServe() }()
	}
	// Shutdown refuses a server that has not started yet, so every server
	// must have started or failed before anything asks them to stop.
	var first error
	fail := func(err error) {
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		if first == nil {
			first = fmt.Errorf("dns serve: %w", err)
		}
	}
	running := len(servers)
	for range servers {
		select {
		case <-started:
		case err := <-errc:
			fail(err)
			running--
		}
	}
	if first == nil {
		select {
		case <-ctx.Done():
		case err := <-errc:
			fail(err)
			running--
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		// Fails for a server that is not running; closing the sockets
		// below stops even one that started late.
		_ = srv.ShutdownContext(sctx)
	}
	for _, pc := range udp {
		pc.Close()
	}
	for _, ln := range tcp {
		ln.Close()
	}
	for ; running > 0; running-- {
		if err := <-errc; err != nil {
			fail(err)
		}
	}
	return first
}

// Handler serves /healthz, /metrics and /geodns/state.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /geodns/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.State())
	})
	return mux
}

// serveHTTP runs h on ln until ctx ends.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}
