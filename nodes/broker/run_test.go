package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/broker/client"
	"github.com/faultline/faultline/nodes/broker/log"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, cfg Config)
	}{
		{
			name: "defaults from peers",
			args: []string{"--id", "2", "--peers", "1=a:9093@a:9092, 2=b:9093@b:9092"},
			check: func(t *testing.T, cfg Config) {
				assert.Equal(t, "b:9092", cfg.Advertise)
				assert.Equal(t, "b:9093", cfg.RaftAdvertise)
				assert.Len(t, cfg.Peers, 2)
				assert.False(t, cfg.UncleanLeaderElection)
				assert.Equal(t, log.SyncNone, cfg.Sync)
				assert.Equal(t, int32(3), cfg.DefaultReplicationFactor)
			},
		},
		{
			name: "unsafe switch and fsync",
			args: []string{"--id", "1", "--peers", "1=a:1@a:2", "--unclean-leader-election", "--fsync", "always"},
			check: func(t *testing.T, cfg Config) {
				assert.True(t, cfg.UncleanLeaderElection)
				assert.Equal(t, log.SyncEveryAppend, cfg.Sync)
			},
		},
		{name: "id missing from peers", args: []string{"--id", "3", "--peers", "1=a:1@a:2"}, wantErr: true},
		{name: "no id", args: []string{"--peers", "1=a:1@a:2"}, wantErr: true},
		{name: "bad peer", args: []string{"--id", "1", "--peers", "1=a:1"}, wantErr: true},
		{name: "duplicate peer", args: []string{"--id", "1", "--peers", "1=a:1@a:2,1=b:1@b:2"}, wantErr: true},
		{name: "bad fsync", args: []string{"--id", "1", "--peers", "1=a:1@a:2", "--fsync", "sometimes"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
		{name: "stray argument", args: []string{"--id", "1", "--peers", "1=a:1@a:2", "x"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, _, _, err := parseFlags(tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, nodes.ErrUsage)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func FuzzParsePeers(f *testing.F) {
	f.Add("1=a:1@a:2,2=b:1@b:2")
	f.Add("=@,")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := parsePeers(s)
		if err != nil {
			return
		}
		for id, p := range peers {
			require.Positive(t, id)
			require.NotEmpty(t, p.Raft)
			require.NotEmpty(t, p.Addr)
		}
	})
}

// TestRunSingleBroker runs the role as the node binary would, with one
// voter, and serves a produce and a fetch before shutting down on cancel.
func TestRunSingleBroker(t *testing.T) {
	addr, raftAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{
			"--id", "1", "--listen", addr, "--raft-listen", raftAddr,
			"--peers", fmt.Sprintf("1=%s@%s", raftAddr, addr), "--data-dir", t.TempDir(),
			"--raft-timeout", "300ms", "--session-timeout", "1s", "--default-replication-factor", "1",
		})
	}()
	cl := client.New([]string{addr}, client.RequestTimeout(2*time.Second))
	defer cl.Close()
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	waitFor(t, "the broker to register", func() bool {
		m, err := cl.Refresh(cctx)
		return err == nil && len(m.Brokers) == 1
	})
	require.NoError(t, cl.CreateTopic(cctx, "t", client.TopicConfig{Partitions: 2}))
	p, err := client.NewProducer(cctx, cl, "t", client.WithPartitioner(func([]byte, int) int { return 1 }))
	require.NoError(t, err)
	r := p.Send(cctx, client.Message{Value: []byte("hello")})
	require.NoError(t, r.Err)
	require.NoError(t, p.Close())
	got, err := client.NewConsumer(cl, "t").ReadTo(cctx, 1, r.Offset+1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "hello", string(got[0].Value))

	cancel()
	require.NoError(t, <-done)
}
