package loadgen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/geodns"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// downProber fails the regions marked down.
type downProber struct {
	mu   sync.Mutex
	down map[string]bool
}

func (p *downProber) set(region string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[region] = true
}

func (p *downProber) Probe(_ context.Context, r geodns.Region) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[r.Name] {
		return errors.New("down")
	}
	return nil
}

// geoDNS runs this repo's GeoDNS in-process on a loopback UDP port, with a
// 1 s TTL, region "a" answered by 127.0.0.1 and "b" by 127.0.0.2 (a's
// nearest); the client (127.0.0.1, in no region subnet) is a's.
type geoDNS struct {
	addr    string
	server  *geodns.Server
	prober  *downProber
	queries atomic.Int64
}

func startGeoDNS(t *testing.T, port int) *geoDNS {
	t.Helper()
	g := &geoDNS{prober: &downProber{down: map[string]bool{}}}
	p := strconv.Itoa(port)
	s, err := geodns.NewServer(geodns.Config{
		TTL: time.Second,
		Regions: []geodns.Region{
			{Name: "a", Subnet: netip.MustParsePrefix("10.1.0.0/16"), LB: "127.0.0.1:" + p},
			{Name: "b", Subnet: netip.MustParsePrefix("10.2.0.0/16"), LB: "127.0.0.2:" + p},
		},
		RTT:   map[string]map[string]float64{"a": {"b": 10}},
		Check: geodns.HealthCheck{Fall: 1, Rise: 1},
	}, geodns.WithProber(g.prober))
	require.NoError(t, err)
	g.server = s
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	g.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		g.queries.Add(1)
		s.ServeDNS(w, m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		<-done
	})
	return g
}

// failover marks region a down and applies it at once.
func (g *geoDNS) failover() {
	g.prober.set("a")
	g.server.CheckNow(context.Background())
}

// deadResolver is a loopback UDP port nobody listens on: queries to it fail
// at once (ICMP port unreachable), so the next resolver is asked.
func deadResolver(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	return addr
}

func TestResolverHonoursTTL(t *testing.T) {
	g := startGeoDNS(t, 8080)
	r := newResolver([]string{deadResolver(t), g.addr}, time.Second)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	lookup := func() []netip.Addr {
		addrs, err := r.lookup(ctx, "app.faultline.test")
		require.NoError(t, err)
		return addrs
	}

	a, b := []netip.Addr{netip.MustParseAddr("127.0.0.1")}, []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	assert.Equal(t, a, lookup(), "first resolver dead: the fallback answers")
	assert.EqualValues(t, 1, g.queries.Load())
	now = now.Add(900 * time.Millisecond)
	assert.Equal(t, a, lookup(), "cached within the TTL")
	assert.EqualValues(t, 1, g.queries.Load())

	g.failover()
	assert.Equal(t, a, lookup(), "the failover is not seen before the TTL ends")
	now = now.Add(100 * time.Millisecond)
	assert.Equal(t, b, lookup(), "and is seen once it has")
	assert.EqualValues(t, 2, g.queries.Load())

	_, err := r.lookup(ctx, "nope.faultline.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound)
	assert.Equal(t, KindDNS, Classify(0, (&net.OpError{Op: "dial", Net: "tcp", Err: err}).Error()))

	// The dead first resolver failed the first lookup: it is asked last
	// while its penalty lasts, and first again after.
	dead := r.servers[0]
	assert.Equal(t, []string{g.addr, dead}, r.order())
	now = now.Add(serverPenalty)
	assert.Equal(t, []string{dead, g.addr}, r.order())

	only := newResolver([]string{deadResolver(t)}, time.Second)
	_, err = only.lookup(ctx, "app.faultline.test")
	require.ErrorAs(t, err, &dnsErr, "every resolver failed")
}

// listenPair listens on the same port on 127.0.0.1 and 127.0.0.2.
func listenPair(t *testing.T) (net.Listener, net.Listener) {
	for range 20 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		l2, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(l1.Addr().(*net.TCPAddr).Port))
		if err == nil {
			return l1, l2
		}
		l1.Close()
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

// serverPair serves HTTP on 127.0.0.1 and 127.0.0.2 at the same port (what
// startGeoDNS answers for regions a and b), counting the requests each gets.
func serverPair(t *testing.T) (a, b *httptest.Server, port int, hitsA, hitsB *atomic.Int64) {
	l1, l2 := listenPair(t)
	hitsA, hitsB = new(atomic.Int64), new(atomic.Int64)
	a = httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hitsA.Add(1) }))
	a.Listener = l1
	a.Start()
	b = httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hitsB.Add(1) }))
	b.Listener = l2
	b.Start()
	return a, b, l1.Addr().(*net.TCPAddr).Port, hitsA, hitsB
}

// An attack on a name follows a GeoDNS failover as a client would: region
// a's server dies and DNS moves the name to b; requests fail (refused)
// until the cached answer expires, then reach b.
func TestAttackFollowsDNSFailover(t *testing.T) {
	srvA, srvB, port, hitsA, hitsB := serverPair(t)
	defer srvB.Close()
	g := startGeoDNS(t, port)

	failAt := time.Now().Add(time.Second)
	failed := make(chan struct{})
	timer := time.AfterFunc(time.Until(failAt), func() {
		defer close(failed)
		srvA.CloseClientConnections()
		srvA.Close()
		g.failover()
	})
	defer timer.Stop()
	tot, _, final, err := collect(t, context.Background(), AttackSpec{
		Target: "http://app.faultline.test:" + strconv.Itoa(port), Workload: "api", Rate: 50, Duration: 4 * time.Second,
		Resolvers: []string{g.addr}, Timeout: time.Second,
	})
	<-failed
	require.NoError(t, err)
	t.Logf("a %d, b %d, errors %v, dns queries %d", hitsA.Load(), hitsB.Load(), tot.ErrorsByKind, g.queries.Load())
	assert.EqualValues(t, 200, final.Requests)
	assert.Positive(t, hitsA.Load(), "served by a before the failover")
	assert.Positive(t, hitsB.Load(), "and by b after it")
	// Every success reached a server. A request in flight when a died can
	// reach it and still fail: a closed its connection after serving it,
	// and the transport's retry of the idempotent GET found a gone.
	served := hitsA.Load() + hitsB.Load()
	assert.GreaterOrEqual(t, served, final.Requests-tot.Errors, "successes reached a server")
	assert.LessOrEqual(t, served, final.Requests, "no server saw a request that was not sent")
	for kind := range tot.ErrorsByKind {
		assert.Contains(t, []string{KindRefused, KindReset}, kind)
	}
	assert.LessOrEqual(t, g.queries.Load(), int64(10), "answers are cached, not asked per request")
}

func TestAttackDNSFailure(t *testing.T) {
	g := startGeoDNS(t, 8080)
	tot, _, _, err := collect(t, context.Background(), AttackSpec{
		Target: "http://nope.faultline.test:8080", Workload: "api", Rate: 20, Duration: 500 * time.Millisecond,
		Resolvers: []string{g.addr},
	})
	require.NoError(t, err)
	assert.EqualValues(t, 10, tot.Requests)
	assert.Equal(t, map[string]int64{KindDNS: 10}, tot.ErrorsByKind)
}

// A keep-alive connection does not outlive its DNS answer: when the name
// moves while the old server still answers, the client follows once the
// answer expires instead of riding its open connection forever.
func TestAttackRecyclesConnectionsWhenTheAnswerExpires(t *testing.T) {
	srvA, srvB, port, hitsA, hitsB := serverPair(t)
	defer srvA.Close()
	defer srvB.Close()
	g := startGeoDNS(t, port)

	timer := time.AfterFunc(time.Second, g.failover)
	defer timer.Stop()
	tot, _, final, err := collect(t, context.Background(), AttackSpec{
		Target: "http://app.faultline.test:" + strconv.Itoa(port), Workload: "api", Rate: 50, Duration: 4 * time.Second,
		Resolvers: []string{g.addr}, Timeout: time.Second,
	})
	require.NoError(t, err)
	t.Logf("a %d, b %d, errors %v", hitsA.Load(), hitsB.Load(), tot.ErrorsByKind)
	assert.Zero(t, tot.Errors, "recycling closes idle connections only")
	assert.Positive(t, hitsA.Load())
	assert.Positive(t, hitsB.Load(), "the client left a's open connections for b")
	assert.Equal(t, final.Requests, hitsA.Load()+hitsB.Load())
}
