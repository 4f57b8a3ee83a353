package db

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

const shutdownGrace = 5 * time.Second

// Run is the db role's entry point: it parses args, serves until ctx ends,
// then shuts the HTTP server and raft down.
func Run(ctx context.Context, args []string) error {
	cfg, httpAddr, raftBind, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	raftLn, err := net.Listen("tcp", raftBind)
	if err != nil {
		return fmt.Errorf("db %s: listen raft: %w", cfg.ID, err)
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		_ = raftLn.Close()
		return fmt.Errorf("db %s: listen http: %w", cfg.ID, err)
	}
	node, err := Start(cfg, raftLn)
	if err != nil {
		_ = raftLn.Close()
		_ = httpLn.Close()
		return err
	}
	srv := &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(httpLn) }()

	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("db %s: serve http: %w", cfg.ID, err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("db %s: shutdown http: %w", cfg.ID, serr))
	}
	return errors.Join(err, node.Close())
}

// parseFlags turns the role's flags into a Config plus the HTTP listen and
// raft bind addresses.
func parseFlags(args []string, stderr io.Writer) (cfg Config, httpAddr, raftBind string, err error) {
	fs := flag.NewFlagSet("db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var peers, logLevel string
	var voter, nonvoter bool
	fs.StringVar(&cfg.ID, "id", "", "this node's id (unique in --peers)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "raft address the other nodes dial (host:port)")
	fs.StringVar(&raftBind, "raft-bind", "", "address to bind raft on (default: --raft-addr)")
	fs.StringVar(&httpAddr, "http-addr", ":8080", "HTTP API listen address")
	fs.StringVar(&httpAddr, "listen", ":8080", "alias of --http-addr")
	fs.StringVar(&cfg.DataDir, "data-dir", "/data", "directory for the raft log, snapshots and state")
	fs.StringVar(&peers, "peers", "", "cluster members: id=raftaddr@httpaddr,...")
	fs.BoolVar(&voter, "voter", true, "take part in elections and quorums")
	fs.BoolVar(&nonvoter, "nonvoter", false, "non-voting read replica (far regions)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "form the cluster (exactly one node); the others join it")
	fs.DurationVar(&cfg.RTT, "rtt", 50*time.Millisecond, "largest round trip between voters; raft timeouts scale with it")
	fs.BoolVar(&cfg.Fsync, "fsync", true, "fsync the raft log and the state on every write")
	fs.BoolVar(&cfg.UnsafeAckBeforeCommit, "unsafe-ack-before-commit", false,
		"UNSAFE: acknowledge writes once the leader logged them, before a quorum has (a leader kill loses them)")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 0, "entries between snapshots (0: raft default 8192)")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", 0, "entries kept after a snapshot (0: raft default 10240)")
	fs.StringVar(&logLevel, "log-level", "info", "raft log level")
	if err := fs.Parse(args); err != nil {
		return Config{}, "", "", fmt.Errorf("db flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, "", "", fmt.Errorf("db flags: unexpected arguments %q", fs.Args())
	}
	setExplicitly := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setExplicitly[f.Name] = true })
	if nonvoter && setExplicitly["voter"] && voter {
		return Config{}, "", "", errors.New("db flags: --voter and --nonvoter are exclusive")
	}
	cfg.Voter = voter && !nonvoter
	if cfg.ID == "" || cfg.RaftAddr == "" {
		return Config{}, "", "", errors.New("db flags: --id and --raft-addr are required")
	}
	if raftBind == "" {
		raftBind = cfg.RaftAddr
	}
	if cfg.Peers, err = ParsePeers(peers); err != nil {
		return Config{}, "", "", fmt.Errorf("db flags: %w", err)
	}
	if !cfg.Bootstrap && len(cfg.Peers) == 0 {
		return Config{}, "", "", errors.New("db flags: a node that does not --bootstrap needs --peers to join")
	}
	if cfg.RTT < 0 {
		return Config{}, "", "", errors.New("db flags: --rtt must not be negative")
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{
		Name: "db." + cfg.ID, Level: hclog.LevelFromString(logLevel), Output: stderr,
	})
	return cfg, httpAddr, raftBind, nil
}

// ParsePeers parses "id=raftaddr@httpaddr,..." (spaces around entries are
// ignored; an empty string is no peers).
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, addrs, ok := strings.Cut(item, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("peer %q: want id=raftaddr@httpaddr", item)
		}
		raftAddr, httpAddr, ok := strings.Cut(addrs, "@")
		if !ok {
			return nil, fmt.Errorf("peer %q: want id=raftaddr@httpaddr", item)
		}
		for _, a := range []string{raftAddr, httpAddr} {
			host, port, err := net.SplitHostPort(a)
			if err != nil || host == "" || port == "" {
				return nil, fmt.Errorf("peer %q: bad address %q", item, a)
			}
		}
		if seen[id] {
			return nil, fmt.Errorf("peer %q: duplicate id", id)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr})
	}
	return out, nil
}
