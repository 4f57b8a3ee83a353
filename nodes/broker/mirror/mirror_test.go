package mirror

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/broker"
	"github.com/faultline/faultline/nodes/broker/client"
)

// startBroker runs a one-broker cluster on loopback and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b, err := broker.Start(broker.Config{
		ID: 1, Listener: ln, Advertise: ln.Addr().String(), RaftListener: rln, RaftAdvertise: rln.Addr().String(),
		Peers: map[int32]broker.Peer{1: {Raft: rln.Addr().String(), Addr: ln.Addr().String()}},
		Dir:   t.TempDir(), RaftTimeout: 300 * time.Millisecond, SessionTimeout: time.Second, RaftNoSync: true,
		DefaultReplicationFactor: 1, Logger: hclog.NewNullLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The mirror copies every partition in order into a topic it creates with
// as many partitions, and its lag drains once it has caught up.
func TestMirrorCopiesInOrder(t *testing.T) {
	src, dst := startBroker(t), startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := client.New([]string{src}, client.RequestTimeout(2*time.Second))
	defer sc.Close()
	waitFor(t, "the source broker to register", func() bool {
		m, err := sc.Refresh(ctx)
		return err == nil && len(m.Brokers) == 1
	})
	require.NoError(t, sc.CreateTopic(ctx, "events", client.TopicConfig{Partitions: 3}))
	p, err := client.NewProducer(ctx, sc, "events")
	require.NoError(t, err)
	const n = 300
	for i := range n {
		r := p.Send(ctx, client.Message{Key: []byte(fmt.Sprint("k", i%7)), Value: []byte(fmt.Sprint(i))})
		require.NoError(t, r.Err)
	}
	require.NoError(t, p.Close())

	m := New(Config{Source: []string{src}, Target: []string{dst}, SourceName: "a", Topic: "events"})
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	waitFor(t, "every record copied", func() bool { return m.Status().Copied >= n })
	waitFor(t, "the lag to drain", func() bool { return m.Status().LagMS < float64(5*fetchWait/time.Millisecond) })

	dc := client.New([]string{dst}, client.RequestTimeout(2*time.Second))
	defer dc.Close()
	parts, err := dc.Partitions(ctx, "events")
	require.NoError(t, err)
	assert.Equal(t, 3, parts)
	src2 := client.NewConsumer(sc, "events")
	dst2 := client.NewConsumer(dc, "events")
	total := 0
	for part := range int32(parts) {
		want, err := src2.Fetch(ctx, part, 0)
		require.NoError(t, err)
		got, err := dst2.ReadTo(ctx, part, int64(len(want.Records)))
		require.NoError(t, err)
		require.Len(t, got, len(want.Records))
		for i := range got {
			assert.Equal(t, string(want.Records[i].Value), string(got[i].Value), "partition %d offset %d", part, i)
		}
		total += len(got)
	}
	assert.Equal(t, n, total)
	st := m.Status()
	assert.True(t, st.Started)
	assert.Equal(t, 3, st.Parts)
	stop()
	require.NoError(t, <-done)
}

func TestRunNeedsSourceTargetAndTopic(t *testing.T) {
	for _, args := range [][]string{
		{"--target", "a:1", "--topic", "t"},
		{"--source", "a:1", "--topic", "t"},
		{"--source", "a:1", "--target", "b:1"},
		{"--bogus"},
	} {
		err := Run(context.Background(), args)
		assert.ErrorContains(t, err, "mirror", "%v", args)
	}
}
