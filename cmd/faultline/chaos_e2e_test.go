package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/engine"
	"github.com/faultline/faultline/netsetup"
	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/topology"
)

// The default topology's regions and RTTs on subnets of their own, so this
// test can run beside another that uses the default one.
const wanTopology = `
name: wan-e2e
regions:
  - {name: us-east, subnet: 10.206.1.0/24, nodes: [{role: web, count: 2}]}
  - {name: eu-west, subnet: 10.206.2.0/24, nodes: [{role: web, count: 1}]}
  - {name: ap-south, subnet: 10.206.3.0/24, nodes: [{role: web, count: 1}]}
links:
  - {between: [us-east, eu-west], rtt: 70ms}
  - {between: [eu-west, ap-south], rtt: 120ms}
  - {between: [us-east, ap-south], rtt: 190ms}
`

func startWAN(t *testing.T) (*netsetup.Net, chaos.Env, []string) {
	rt := dockerRuntime(t)
	ctx := context.Background()
	top, err := topology.Parse("wan-e2e.yaml", []byte(wanTopology))
	require.NoError(t, err)
	require.NoError(t, ensureImage(ctx, rt, top.Image, t.Logf))
	runID := "wan-" + engine.NewRunID()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.RemoveByLabel(cctx, runtime.Labels{runtime.LabelRun: runID})
	})
	dep, err := deploy.Plan(top, runID, nil)
	require.NoError(t, err)
	require.NoError(t, engine.Start(ctx, rt, dep))
	n, err := netsetup.Discover(ctx, rt, runID)
	require.NoError(t, err)
	links, err := n.WAN().Links(ctx)
	require.NoError(t, err)
	env := chaos.Env{Runtime: rt, RunID: runID, Container: func(node string) string { return deploy.ContainerName(runID, node) }}
	return n, env, netsetup.LinkStrings(links)
}

// inject runs fn while fault f holds, and heals it whatever happens.
func inject(t *testing.T, env chaos.Env, spec chaos.Spec, fn func()) {
	t.Helper()
	ctx := context.Background()
	f, err := chaos.New(env, spec)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Heal(ctx)) }()
	require.NoError(t, f.Inject(ctx))
	fn()
}

func TestE2EWANNetwork(t *testing.T) {
	n, env, baseLinks := startWAN(t)
	ctx := context.Background()
	probe := func(from, to string, o netsetup.ProbeOptions) netsetup.ProbeResult {
		r, err := n.Probe(ctx, from, to, o)
		require.NoError(t, err)
		return r
	}

	t.Run("rtt", func(t *testing.T) {
		pairs := []struct {
			from, to string
			want     time.Duration
		}{
			{"web-us-east-1", "web-us-east-2", 0},
			{"web-us-east-1", "web-eu-west-1", 70 * time.Millisecond},
			{"web-eu-west-1", "web-ap-south-1", 120 * time.Millisecond},
			{"web-ap-south-1", "web-us-east-2", 190 * time.Millisecond},
		}
		for _, p := range pairs {
			r := probe(p.from, p.to, netsetup.ProbeOptions{Count: 100, Interval: 5 * time.Millisecond})
			p50 := r.Percentile(0.5)
			t.Logf("%s -> %s: p50 %v p99 %v loss %.3f/%.3f", p.from, p.to, p50, r.Percentile(0.99), r.LossOut(), r.LossBack())
			require.Equal(t, r.Sent, r.Echoed, "no loss configured")
			checkRTT(t, p.want, p50)
		}
	})

	t.Run("loss", func(t *testing.T) {
		loss := 0.10
		inject(t, env, chaos.Spec{Kind: "link", Targets: []string{"us-east", "eu-west"}, Link: chaos.LinkChange{Loss: &loss}}, func() {
			r := probe("web-us-east-1", "web-eu-west-1", netsetup.ProbeOptions{Count: 6000, Interval: 200 * time.Microsecond})
			t.Logf("loss out %.4f back %.4f over %d packets", r.LossOut(), r.LossBack(), r.Sent)
			assert.GreaterOrEqual(t, r.Sent, 5000)
			assert.InDelta(t, 0.10, r.LossOut(), 0.02)
			assert.InDelta(t, 0.10, r.LossBack(), 0.02)
		})
	})

	for _, tc := range []struct {
		name string
		spec chaos.Spec
	}{
		{"regions", chaos.Spec{Kind: "partition", Targets: []string{"us-east"}, Peers: []string{"eu-west"}}},
		{"regions-oneway", chaos.Spec{Kind: "partition", Targets: []string{"us-east"}, Peers: []string{"eu-west"}, OneWay: true}},
		{"nodes", chaos.Spec{Kind: "partition", Targets: []string{"web-us-east-1"}, Peers: []string{"web-eu-west-1"}}},
		{"nodes-oneway", chaos.Spec{Kind: "partition", Targets: []string{"web-us-east-1"}, Peers: []string{"web-eu-west-1"}, OneWay: true}},
		{"isolate", chaos.Spec{Kind: "isolate", Targets: []string{"web-us-east-1"}}},
	} {
		t.Run("partition-"+tc.name, func(t *testing.T) {
			o := netsetup.ProbeOptions{Count: 50, Interval: 10 * time.Millisecond, Wait: 500 * time.Millisecond}
			inject(t, env, tc.spec, func() {
				out := probe("web-us-east-1", "web-eu-west-1", o)
				back := probe("web-eu-west-1", "web-us-east-1", o)
				assert.Zero(t, out.Arrived, "nothing crosses the cut way")
				if tc.spec.OneWay {
					assert.Equal(t, back.Sent, back.Arrived, "the other way is open")
					assert.Zero(t, back.Echoed, "but its echoes take the cut way")
				} else {
					assert.Zero(t, back.Arrived, "nothing crosses back")
				}
				// Inside the region the cut holds only for isolate.
				in := probe("web-us-east-1", "web-us-east-2", o)
				assert.Equal(t, tc.spec.Kind == "isolate", in.Arrived == 0)
			})
			// Healed: every packet from the first on passes, well within 1 s.
			after := probe("web-us-east-1", "web-eu-west-1", netsetup.ProbeOptions{Count: 20, Interval: 50 * time.Millisecond})
			assert.Equal(t, after.Sent, after.Echoed, "full connectivity after heal")
		})
	}

	t.Run("bandwidth", func(t *testing.T) {
		bw := int64(10_000_000)
		inject(t, env, chaos.Spec{Kind: "link", Targets: []string{"us-east", "eu-west"}, Link: chaos.LinkChange{BandwidthBps: &bw}}, func() {
			got := tcpRate(t, n, "web-us-east-1", "web-eu-west-1", 4*time.Second, time.Second)
			t.Logf("10 Mbit/s cap: TCP goodput %.2f Mbit/s", got/1e6)
			checkRate(t, float64(bw), got)
		})
	})

	// A connection that outlives a short partition goes on: what was sent
	// into the cut is retransmitted after the heal, and the echo returns.
	t.Run("tcp-outlives-partition", func(t *testing.T) {
		client, server := tcpConn(t, n, "web-us-east-1", "web-eu-west-1")
		roundTrip := func(msg string) {
			t.Helper()
			require.NoError(t, client.SetDeadline(time.Now().Add(20*time.Second)))
			require.NoError(t, server.SetDeadline(time.Now().Add(20*time.Second)))
			_, err := client.Write([]byte(msg))
			require.NoError(t, err)
			buf := make([]byte, len(msg))
			_, err = io.ReadFull(server, buf)
			require.NoError(t, err)
			_, err = server.Write(buf)
			require.NoError(t, err)
			_, err = io.ReadFull(client, buf)
			require.NoError(t, err)
			assert.Equal(t, msg, string(buf))
		}
		roundTrip("before")
		inject(t, env, chaos.Spec{Kind: "partition", Targets: []string{"us-east"}, Peers: []string{"eu-west"}}, func() {
			_, err := client.Write([]byte("during"))
			require.NoError(t, err, "the sender does not notice a silent cut")
			require.NoError(t, server.SetReadDeadline(time.Now().Add(time.Second)))
			_, err = server.Read(make([]byte, 16))
			require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing crosses the cut")
		})
		buf := make([]byte, len("during"))
		require.NoError(t, server.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err := io.ReadFull(server, buf)
		require.NoError(t, err, "retransmitted after the heal")
		assert.Equal(t, "during", string(buf))
		roundTrip("after")
	})

	t.Run("slow", func(t *testing.T) {
		bw := int64(1_000_000)
		inject(t, env, chaos.Spec{Kind: "slow", Targets: []string{"web-us-east-2"}, Link: chaos.LinkChange{BandwidthBps: &bw}}, func() {
			pid, err := n.Pid(ctx, "web-us-east-2")
			require.NoError(t, err)
			caps, err := netsetup.Shaped(ctx, pid)
			require.NoError(t, err)
			assert.NotEmpty(t, caps)
		})
	})

	t.Run("region-down", func(t *testing.T) {
		inject(t, env, chaos.Spec{Kind: "region-down", Targets: []string{"eu-west"}}, func() {
			cs, err := env.Runtime.List(ctx, runtime.Labels{runtime.LabelRun: env.RunID, runtime.LabelRegion: "eu-west"})
			require.NoError(t, err)
			for _, c := range cs {
				assert.Equal(t, runtime.StateExited, c.State, c.Name)
			}
		})
		// Restarted with a new namespace: the routes came back with it.
		r := probe("web-us-east-1", "web-eu-west-1", netsetup.ProbeOptions{Count: 10})
		assert.Equal(t, r.Sent, r.Echoed)
		checkRTT(t, 70*time.Millisecond, r.Percentile(0.5))
	})

	left, err := n.Leftovers(ctx, baseLinks)
	require.NoError(t, err)
	assert.Empty(t, left, "every fault healed without a trace")
}
