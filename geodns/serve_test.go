package geodns

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeStopsWhenASocketFails(t *testing.T) {
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(t, err)
	pc, ln := listenPair(t)
	pc.Close() // the UDP reader fails at once; Serve must not wait for ctx
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = s.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln})
	require.Error(t, err)
	assert.NoError(t, ctx.Err(), "returned because of the socket, not the deadline")
}

func TestListenUDPSharesOnePort(t *testing.T) {
	ctx := context.Background()
	pcs, err := ListenUDP(ctx, "127.0.0.1:0", 3)
	require.NoError(t, err)
	require.Len(t, pcs, 3)
	for _, pc := range pcs[1:] {
		assert.Equal(t, pcs[0].LocalAddr().String(), pc.LocalAddr().String())
	}
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(t, err)
	_, ln := listenPair(t)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, pcs, []net.Listener{ln}) }()
	// Queries from several source ports land on different sockets; all
	// must be answered.
	for range 20 {
		r := exchange(t, "udp", pcs[0].LocalAddr().String(), withECS(newQuery("app.faultline.test.", dns.TypeA), "10.3.0.0/24"))
		assert.Equal(t, []string{lbOf["ap-south"]}, answerAddrs(r))
	}
	cancel()
	require.NoError(t, <-done)
}
