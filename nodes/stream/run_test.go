package stream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/stream/cluster"
	"github.com/faultline/faultline/nodes/stream/engine"
	"github.com/faultline/faultline/nodes/stream/wordcount"
)

func TestRunUsage(t *testing.T) {
	cases := map[string][]string{
		"no mode":          nil,
		"unknown mode":     {"nimbus"},
		"unknown flag":     {"master", "--bogus"},
		"zero workers":     {"master", "--workers", "0"},
		"worker no master": {"worker", "--node", "w1"},
		"worker no node":   {"worker", "--master", "http://127.0.0.1:1", "--node", ""},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			err := Run(context.Background(), args)
			require.ErrorIs(t, err, nodes.ErrUsage)
		})
	}
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunMasterAndWorkers runs the role as the node binary would: a master
// and two workers, each its own Run, talking over loopback.
func TestRunMasterAndWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const perSpout = 300
	masterAddr := freePort(t)
	base := "http://" + masterAddr
	errc := make(chan error, 3)
	go func() {
		errc <- Run(ctx, []string{"master", "--listen", masterAddr, "--workers", "2", "--per-spout", fmt.Sprint(perSpout), "--heartbeat-timeout", "2s"})
	}()
	for _, id := range []string{"w1", "w2"} {
		data, health := freePort(t), freePort(t)
		go func() {
			errc <- Run(ctx, []string{"worker", "--node", id, "--listen", health, "--master", base,
				"--data-listen", data, "--advertise", data, "--per-spout", fmt.Sprint(perSpout),
				"--heartbeat", "50ms", "--message-timeout", "2s"})
		}()
	}

	tp, err := wordcount.Build(wordcount.Lecture(perSpout))
	require.NoError(t, err)
	store := &cluster.HTTPStateStore{Base: base, Client: &http.Client{Timeout: time.Second}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for _, id := range tp.Component("sentences").Tasks {
			data, err := store.Load(ctx, id)
			w, _ := engine.SpoutWatermark(data)
			done = done && err == nil && w == perSpout
		}
		if done {
			break
		}
		require.True(t, time.Now().Before(deadline), "word count did not finish")
		time.Sleep(50 * time.Millisecond)
	}
	data, err := store.Load(ctx, tp.Component("sink").Tasks[0])
	require.NoError(t, err)
	snap, err := engine.BoltSnapshot(data)
	require.NoError(t, err)
	got, err := wordcount.DecodeCounts(snap)
	require.NoError(t, err)
	assert.Equal(t, wordcount.Expected(5, perSpout), got)

	cancel()
	for range 3 {
		require.NoError(t, <-errc)
	}
}
