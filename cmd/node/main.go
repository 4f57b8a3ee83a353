// Command node is the one binary inside every faultline container:
//
//	node <role> [flags]   run a role until SIGTERM/SIGINT
//	node health [--url U] exit 0 if U answers 200 within 1 s (Docker health checks)
//
// Exit codes: 0 clean stop, 1 the role failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/faultline/faultline/nodes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code, err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
	}
	os.Exit(code)
}

func usage() string {
	return fmt.Sprintf("usage: node <role> [flags] | node health [--url URL]\nroles: %s", strings.Join(nodes.Names(), ", "))
}

func run(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New(usage())
	}
	if args[0] == "health" {
		return health(ctx, args[1:])
	}
	role, err := nodes.Lookup(args[0])
	if err != nil {
		return 2, fmt.Errorf("%w\n%s", err, usage())
	}
	if err := role(ctx, args[1:]); err != nil {
		if errors.Is(err, nodes.ErrUsage) {
			return 2, err
		}
		return 1, fmt.Errorf("%s: %w", args[0], err)
	}
	return 0, nil
}

// healthTimeout keeps a health probe well inside Docker's default 30 s
// check timeout, and makes a hung node count as unhealthy.
const healthTimeout = time.Second

func health(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "URL that must answer 200")
	if err := fs.Parse(args); err != nil {
		return 2, fmt.Errorf("health: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return 2, fmt.Errorf("health: %w", err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return 1, fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1, fmt.Errorf("health: %s: %s", *url, resp.Status)
	}
	return 0, nil
}
