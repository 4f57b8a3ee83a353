// Package docker is the runtime.Runtime on a Docker engine. testcontainers-go
// finds and connects to the engine; everything after that goes through the one
// moby client it returns, because faultline addresses containers by name and
// label across processes (`faultline up`, then `faultline chaos`), which
// testcontainers' per-process container handles cannot do.
package docker

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/faultline/faultline/runtime"
)

// Option configures a Runtime.
type Option func(*config)

type config struct {
	host         string
	pollInterval time.Duration
	pingTimeout  time.Duration
	restartGrace time.Duration
}

// WithHost talks to the engine at host (e.g. unix:///var/run/docker.sock)
// instead of the one testcontainers-go finds.
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithPollInterval sets how often WaitHealthy inspects a container.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithPingTimeout bounds how long New waits for the engine to answer.
func WithPingTimeout(d time.Duration) Option { return func(c *config) { c.pingTimeout = d } }

// WithRestartGrace sets the SIGTERM grace period of Restart.
func WithRestartGrace(d time.Duration) Option { return func(c *config) { c.restartGrace = d } }

// Runtime is safe for concurrent use; it holds one client for its lifetime.
type Runtime struct {
	cli *client.Client
	cfg config
	// probe reaches containers' readiness endpoints directly; no proxy from
	// the environment may stand between the host and its own containers.
	probe *http.Client
}

var _ runtime.Runtime = (*Runtime)(nil)

var setEnvOnce sync.Once

// setDefaultEnv applies what testcontainers-go needs on these machines
// (see MACHINE.md) unless the user set it: the Ryuk reaper image cannot be
// pulled, and inside a container it would dial the default gateway for
// mapped ports. testcontainers reads both once, so this must run before its
// first call.
func setDefaultEnv() {
	setEnvOnce.Do(func() {
		for k, v := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": "localhost",
		} {
			if _, ok := os.LookupEnv(k); !ok {
				_ = os.Setenv(k, v)
			}
		}
	})
}

// New connects to the engine and fails fast if it does not answer.
func New(ctx context.Context, opts ...Option) (*Runtime, error) {
	cfg := config{pollInterval: 50 * time.Millisecond, pingTimeout: 5 * time.Second, restartGrace: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	setDefaultEnv()

	ctx, cancel := context.WithTimeout(ctx, cfg.pingTimeout)
	defer cancel()
	var copts []client.Opt
	if cfg.host != "" {
		copts = append(copts, client.WithHost(cfg.host))
	}
	tc, err := testcontainers.NewDockerClientWithOpts(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("connect to docker: %w", err)
	}
	// testcontainers may fall back to an unchecked client; make sure this one answers.
	if _, err := tc.Client.Ping(ctx, client.PingOptions{}); err != nil {
		_ = tc.Client.Close()
		return nil, fmt.Errorf("connect to docker at %s: %w", tc.Client.DaemonHost(), err)
	}
	return &Runtime{cli: tc.Client, cfg: cfg, probe: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}, nil
}

// Client is the engine client, for callers that need a call the Runtime
// does not offer (e.g. network connect for the WAN emulator).
func (r *Runtime) Client() *client.Client { return r.cli }

// Close releases the client's connections.
func (r *Runtime) Close() error { return r.cli.Close() }

// wrap adds context to an engine error and maps "no such ..." to
// runtime.ErrNotFound, keeping the engine's message.
func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s %s: %w: %w", op, name, runtime.ErrNotFound, err)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// labelFilter selects resources carrying every label of sel.
func labelFilter(sel runtime.Labels) client.Filters {
	f := client.Filters{}
	for k, v := range sel {
		f.Add("label", k+"="+v)
	}
	return f
}
