package broker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/broker/log"
)

// Run is the broker role's entry point: it parses args, serves until ctx
// ends, then shuts down.
func Run(ctx context.Context, args []string) error {
	cfg, listen, raftListen, httpListen, err := parseFlags(args)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("broker %d: listen: %w", cfg.ID, err)
	}
	rln, err := net.Listen("tcp", raftListen)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("broker %d: listen raft: %w", cfg.ID, err)
	}
	cfg.Listener, cfg.RaftListener = ln, rln
	b, err := Start(cfg)
	if err != nil {
		_ = ln.Close()
		_ = rln.Close()
		return err
	}
	if httpListen == "" {
		<-ctx.Done()
		return b.Close()
	}
	err = serveHTTP(ctx, httpListen, b)
	return errors.Join(err, b.Close())
}

// parseFlags turns the role's flags into a Config and the listen
// addresses (httpListen empty: no HTTP side).
func parseFlags(args []string) (cfg Config, listen, raftListen, httpListen string, err error) {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var id int
	var peers, fsync string
	fs.IntVar(&id, "id", 0, "broker id (> 0, unique in --peers)")
	fs.StringVar(&listen, "listen", ":9092", "client and replication listen address")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address others dial for --listen (host:port)")
	fs.StringVar(&raftListen, "raft-listen", ":9093", "controller (raft) listen address")
	fs.StringVar(&httpListen, "http", "", "HTTP listen address for /healthz, /metrics and the admin API (empty: none)")
	fs.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "address others dial for --raft-listen")
	fs.StringVar(&peers, "peers", "", "controller voters: id=raftaddr@addr,... (this broker included)")
	fs.BoolVar(&cfg.ControllerOnly, "controller-only", false, "run only a controller voter, host no partitions")
	fs.StringVar(&cfg.Dir, "data-dir", "/data", "directory for partition logs and the controller's raft log")
	fs.Int64Var(&cfg.SegmentBytes, "segment-bytes", 64<<20, "roll a log segment at this size")
	fs.StringVar(&fsync, "fsync", "none", "fsync policy: always (each append) or none (periodic, see --flush-interval)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", time.Second, "with --fsync=none, fsync logs this often (0: on roll and close only)")
	fs.DurationVar(&cfg.ReplicaLagMax, "replica-lag-max", 10*time.Second, "drop a follower from the ISR after this long behind")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", 1500*time.Millisecond,
		"fence a broker (and move its leaderships) after this long without a heartbeat; failover takes about this plus one election")
	fs.DurationVar(&cfg.RaftTimeout, "raft-timeout", time.Second, "controller raft heartbeat and election timeout")
	var rf, minISR int
	fs.IntVar(&rf, "default-replication-factor", 3, "replication factor of topics created without one")
	fs.IntVar(&minISR, "min-insync-replicas", 1, "min.insync.replicas of topics created without one")
	fs.BoolVar(&cfg.UncleanLeaderElection, "unclean-leader-election", false,
		"UNSAFE: let topics elect a leader outside the in-sync set (acknowledged records can be lost)")
	if err = fs.Parse(args); err != nil {
		return cfg, "", "", "", fmt.Errorf("%w: broker: %v", nodes.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, "", "", "", fmt.Errorf("%w: broker: unexpected arguments %q", nodes.ErrUsage, fs.Args())
	}
	cfg.ID = int32(id)
	cfg.DefaultReplicationFactor, cfg.DefaultMinISR = int32(rf), int32(minISR)
	if cfg.Sync, err = log.ParseSyncPolicy(fsync); err != nil {
		return cfg, "", "", "", fmt.Errorf("%w: broker: %v", nodes.ErrUsage, err)
	}
	if cfg.Peers, err = parsePeers(peers); err != nil {
		return cfg, "", "", "", fmt.Errorf("%w: broker: --peers: %v", nodes.ErrUsage, err)
	}
	if cfg.ID <= 0 {
		return cfg, "", "", "", fmt.Errorf("%w: broker: --id must be > 0", nodes.ErrUsage)
	}
	self, ok := cfg.Peers[cfg.ID]
	if !ok {
		return cfg, "", "", "", fmt.Errorf("%w: broker: --peers must include --id %d", nodes.ErrUsage, cfg.ID)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = self.Addr
	}
	if cfg.RaftAdvertise == "" {
		cfg.RaftAdvertise = self.Raft
	}
	return cfg, listen, raftListen, httpListen, nil
}

// parsePeers reads "1=host:9093@host:9092,2=...".
func parsePeers(s string) (map[int32]Peer, error) {
	out := map[int32]Peer{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		idStr, addrs, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want id=raftaddr@addr", item)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q: bad id", item)
		}
		raftAddr, addr, ok := strings.Cut(addrs, "@")
		if !ok || raftAddr == "" || addr == "" {
			return nil, fmt.Errorf("%q: want id=raftaddr@addr", item)
		}
		if _, dup := out[int32(id)]; dup {
			return nil, fmt.Errorf("id %d twice", id)
		}
		out[int32(id)] = Peer{Raft: raftAddr, Addr: addr}
	}
	if len(out) == 0 {
		return nil, errors.New("no peers")
	}
	return out, nil
}
