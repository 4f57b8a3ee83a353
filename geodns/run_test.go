package geodns

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun drives the role end to end on loopback: flags, real HTTP health
// checks against local LBs, DNS over UDP and TCP, the state endpoint and a
// clean stop.
func TestRun(t *testing.T) {
	var euDown atomic.Bool
	lb := func(down *atomic.Bool) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if down != nil && down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	usLB, euLB := lb(nil), lb(&euDown)

	// Run binds its own sockets: find a port free for both UDP and TCP.
	pc, ln := listenPair(t)
	dnsAddr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpAddr := hln.Addr().String()
	hln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{
			"--dns-listen", dnsAddr, "--listen", httpAddr,
			"--region", "name=us-east,subnet=10.1.0.0/16,lb=" + usLB + ",addrs=10.1.0.10",
			"--region", "name=eu-west,subnet=10.2.0.0/16,lb=" + euLB + ",addrs=10.2.0.10",
			"--rtt", "us-east:eu-west=70",
			"--check-interval", "20ms", "--fall", "1", "--rise", "1", "--udp-sockets", "2",
		})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not stop after cancel")
		}
	}()

	state := func() (State, error) {
		resp, err := http.Get("http://" + httpAddr + "/geodns/state")
		if err != nil {
			return State{}, err
		}
		defer resp.Body.Close()
		var st State
		return st, json.NewDecoder(resp.Body).Decode(&st)
	}
	require.Eventually(t, func() bool { _, err := state(); return err == nil }, 30*time.Second, 10*time.Millisecond)

	q := withECS(newQuery("app.faultline.test.", dns.TypeA), "10.2.3.0/24")
	for _, network := range []string{"udp", "tcp"} {
		assert.Equal(t, []string{"10.2.0.10"}, answerAddrs(exchange(t, network, dnsAddr, q.Copy())), network)
	}

	euDown.Store(true)
	require.Eventually(t, func() bool {
		st, err := state()
		return err == nil && st.Mapping["eu-west"] == "us-east"
	}, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"10.1.0.10"}, answerAddrs(exchange(t, "udp", dnsAddr, q.Copy())))

	euDown.Store(false)
	require.Eventually(t, func() bool {
		st, err := state()
		return err == nil && st.Mapping["eu-west"] == "eu-west"
	}, 30*time.Second, 10*time.Millisecond)
	st, err := state()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(st.Events), 2)
	assert.Contains(t, st.Events[0].Reason, "503")
}

func TestRunBadFlags(t *testing.T) {
	err := Run(context.Background(), []string{"--region", "name=a"})
	require.ErrorContains(t, err, "subnet")
	err = Run(context.Background(), []string{"-h"})
	require.ErrorContains(t, err, "-dns-listen", "usage is in the error")
}
