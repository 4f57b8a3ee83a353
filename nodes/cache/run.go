package cache

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Run is the cache role: memcached protocol on --cache-listen, /healthz and
// /metrics on --listen. It returns nil once ctx ends and everything is closed.
func Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cache", flag.ContinueOnError)
	listen := fs.String("listen", ":8080", "HTTP address for /healthz and /metrics")
	cacheListen := fs.String("cache-listen", ":11211", "TCP address for the memcached text protocol")
	memory := fs.String("memory", "64m", "memory bound for items, with optional k/m/g suffix")
	maxItem := fs.String("max-item-size", "1m", "largest value accepted, with optional k/m/g suffix")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("cache flags: %w", err)
	}
	mem, err := parseSize(*memory)
	if err != nil {
		return fmt.Errorf("cache --memory: %w", err)
	}
	itemMax, err := parseSize(*maxItem)
	if err != nil {
		return fmt.Errorf("cache --max-item-size: %w", err)
	}
	store, err := NewStore(WithMemory(mem), WithMaxItemSize(int(itemMax)))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	srv := NewServer(store)

	var lc net.ListenConfig
	cacheLn, err := lc.Listen(ctx, "tcp", *cacheListen)
	if err != nil {
		return fmt.Errorf("cache listen %s: %w", *cacheListen, err)
	}
	httpLn, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		cacheLn.Close()
		return fmt.Errorf("cache http listen %s: %w", *listen, err)
	}

	return serve(ctx, srv, cacheLn, httpLn)
}

// serve runs the protocol and HTTP listeners until ctx ends or one fails.
func serve(ctx context.Context, srv *Server, cacheLn, httpLn net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(ctx, cacheLn) })
	g.Go(func() error { return serveHTTP(ctx, httpLn, srv) })
	return g.Wait()
}

func serveHTTP(ctx context.Context, ln net.Listener, srv *Server) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(srv))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("cache http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cache http: %w", err)
	}
	return nil
}

// parseSize reads a byte count like "64m": decimal digits with an optional
// k, m or g suffix (powers of 1024), as memcached's -m speaks megabytes.
func parseSize(s string) (int64, error) {
	num, shift := s, 0
	if n := len(s); n > 0 {
		switch strings.ToLower(s[n-1:]) {
		case "k":
			num, shift = s[:n-1], 10
		case "m":
			num, shift = s[:n-1], 20
		case "g":
			num, shift = s[:n-1], 30
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)>>shift || num[0] == '+' {
		return 0, fmt.Errorf("size %q: want a positive number with optional k, m or g suffix", s)
	}
	return v << shift, nil
}
