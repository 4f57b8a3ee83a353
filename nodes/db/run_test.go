package db

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    []Peer
		wantErr string
	}{
		{"", nil, ""},
		{"a=10.0.0.1:7000@10.0.0.1:8080", []Peer{{"a", "10.0.0.1:7000", "10.0.0.1:8080"}}, ""},
		{" a=db-a:7000@db-a:8080 , b=db-b:7000@db-b:8080,", []Peer{
			{"a", "db-a:7000", "db-a:8080"}, {"b", "db-b:7000", "db-b:8080"},
		}, ""},
		{"a=[::1]:7000@[::1]:8080", []Peer{{"a", "[::1]:7000", "[::1]:8080"}}, ""},
		{"a", nil, "want id="},
		{"=h:1@h:2", nil, "want id="},
		{"a=h:1", nil, "want id="},
		{"a=h@h:2", nil, "bad address"},
		{"a=:1@h:2", nil, "bad address"},
		{"a=h:1@h:2,a=h:3@h:4", nil, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePeers(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzParsePeers(f *testing.F) {
	f.Add("a=h:1@h:2,b=[::1]:3@x:4")
	f.Add("a=h:1@h:2,a=h:1@h:2")
	f.Add(" , =@")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := ParsePeers(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range peers {
			require.NotEmpty(t, p.ID)
			require.False(t, seen[p.ID])
			seen[p.ID] = true
			for _, a := range []string{p.RaftAddr, p.HTTPAddr} {
				_, _, err := net.SplitHostPort(a)
				require.NoError(t, err)
			}
		}
	})
}

func TestTimeoutsScaleWithRTTAboveFloors(t *testing.T) {
	tests := []struct {
		rtt                        time.Duration
		heartbeat, election, lease time.Duration
	}{
		{0, minHeartbeat, minHeartbeat, minLease},
		{time.Millisecond, minWANHeartbeat, minHeartbeat, minLease},
		{70 * time.Millisecond, minWANHeartbeat, minHeartbeat, minLease},
		{150 * time.Millisecond, minWANHeartbeat, 1500 * time.Millisecond, minLease},
		{190 * time.Millisecond, minWANHeartbeat, 1900 * time.Millisecond, minLease},
		{300 * time.Millisecond, 750 * time.Millisecond, 3 * time.Second, minLease},
		{time.Second, 2500 * time.Millisecond, 10 * time.Second, 1250 * time.Millisecond},
	}
	for _, tt := range tests {
		h, e, l := Timeouts(tt.rtt)
		require.Equal(t, []time.Duration{tt.heartbeat, tt.election, tt.lease}, []time.Duration{h, e, l}, "rtt %s", tt.rtt)
		require.LessOrEqual(t, l, h, "raft requires lease <= heartbeat")
	}
}

func TestParseFlags(t *testing.T) {
	base := []string{"--id", "a", "--raft-addr", "db-a:7000", "--peers", "a=db-a:7000@db-a:8080"}
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, cfg Config, httpAddr, raftBind string)
		wantErr string
	}{
		{"defaults", base, func(t *testing.T, cfg Config, httpAddr, raftBind string) {
			require.True(t, cfg.Voter)
			require.True(t, cfg.Fsync)
			require.False(t, cfg.UnsafeAckBeforeCommit)
			require.Equal(t, ":8080", httpAddr)
			require.Equal(t, "db-a:7000", raftBind)
		}, ""},
		{"nonvoter unsafe listen", append([]string{"--nonvoter", "--unsafe-ack-before-commit", "--fsync=false",
			"--listen", "127.0.0.1:9", "--raft-bind", "0.0.0.0:7000", "--rtt", "190ms"}, base...),
			func(t *testing.T, cfg Config, httpAddr, raftBind string) {
				require.False(t, cfg.Voter)
				require.False(t, cfg.Fsync)
				require.True(t, cfg.UnsafeAckBeforeCommit)
				require.Equal(t, "127.0.0.1:9", httpAddr)
				require.Equal(t, "0.0.0.0:7000", raftBind)
				require.Equal(t, 190*time.Millisecond, cfg.RTT)
			}, ""},
		{"voter and nonvoter", append([]string{"--voter", "--nonvoter"}, base...), nil, "exclusive"},
		{"no id", []string{"--raft-addr", "h:1", "--bootstrap"}, nil, "required"},
		{"joiner without peers", []string{"--id", "a", "--raft-addr", "h:1"}, nil, "needs --peers"},
		{"bad peers", append(base, "--peers", "nonsense"), nil, "want id="},
		{"stray arg", append(base, "extra"), nil, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, httpAddr, raftBind, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg, httpAddr, raftBind)
		})
	}
}

// TestRunServesAndStops runs the role entry point as cmd/node will: a
// one-node cluster from flags, a write and a read over HTTP, clean exit on
// context end, and the data still there after a second Run.
func TestRunServesAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	raftAddr, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"--id", "solo", "--raft-addr", raftAddr, "--http-addr", httpAddr, "--data-dir", dir,
		"--bootstrap", "--log-level", "off"}
	cl := dbclient.New("http://" + httpAddr)

	for round, want := range []string{"first", "second"} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, args) }()
		opCtx, opCancel := context.WithTimeout(context.Background(), settle)
		require.Eventually(t, func() bool {
			_, err := cl.Put(opCtx, "run", want)
			return err == nil
		}, settle, 50*time.Millisecond, "round %d: node never accepted a write", round)
		got, err := cl.Get(opCtx, "run", dbclient.Linearizable)
		require.NoError(t, err)
		require.Equal(t, want, got.Value)
		if round == 1 {
			st, err := cl.Status(opCtx)
			require.NoError(t, err)
			require.Equal(t, "leader", st.Role)
			require.Greater(t, st.AppliedIndex, uint64(3), "the first round's entries are still there")
		}
		opCancel()
		cancel()
		require.NoError(t, <-done)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestRunRejectsBadFlags(t *testing.T) {
	err := Run(context.Background(), []string{"--id", "x"})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "required"))
}
