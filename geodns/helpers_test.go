package geodns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// testConfig is the default topology's three regions.
func testConfig() Config {
	return Config{
		Regions: []Region{
			{Name: "us-east", Subnet: netip.MustParsePrefix("10.1.0.0/16"), LB: "10.1.0.10:8080"},
			{Name: "eu-west", Subnet: netip.MustParsePrefix("10.2.0.0/16"), LB: "10.2.0.10"},
			{Name: "ap-south", Subnet: netip.MustParsePrefix("10.3.0.0/16"), LB: "10.3.0.10:80"},
		},
		RTT: map[string]map[string]float64{
			"us-east": {"eu-west": 70, "ap-south": 190},
			"eu-west": {"ap-south": 120},
		},
		Nameservers: []Nameserver{
			{Name: "ns1.faultline.test.", Addr: netip.MustParseAddr("10.1.0.53")},
			{Name: "ns2.faultline.test.", Addr: netip.MustParseAddr("10.2.0.53")},
		},
		Check: HealthCheck{Fall: 2, Rise: 2},
	}
}

var lbOf = map[string]string{"us-east": "10.1.0.10", "eu-west": "10.2.0.10", "ap-south": "10.3.0.10"}

// fakeProber fails the regions marked down.
type fakeProber struct {
	mu   sync.Mutex
	down map[string]bool
}

func newFakeProber() *fakeProber { return &fakeProber{down: map[string]bool{}} }

func (p *fakeProber) set(region string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[region] = down
}

func (p *fakeProber) Probe(_ context.Context, r Region) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[r.Name] {
		return errors.New("connection refused")
	}
	return nil
}

// startServer serves s on one loopback port for both UDP and TCP and returns
// "127.0.0.1:port".
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	pc, ln := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return pc.LocalAddr().String()
}

// listenPair binds UDP and TCP on the same ephemeral loopback port.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no free loopback port for both UDP and TCP")
	return nil, nil
}

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// withECS adds an EDNS0 OPT with a client subnet option.
func withECS(m *dns.Msg, prefix string) *dns.Msg {
	p := netip.MustParsePrefix(prefix)
	m.SetEdns0(1232, false)
	family := uint16(1)
	if p.Addr().Is6() {
		family = 2
	}
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{
		Code: dns.EDNS0SUBNET, Family: family,
		SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice(),
	})
	return m
}

func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	require.Equal(t, m.Id, r.Id)
	return r
}

func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func replyECS(r *dns.Msg) *dns.EDNS0_SUBNET {
	opt := r.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			return e
		}
	}
	return nil
}

// fakeWriter is a dns.ResponseWriter that keeps what was written.
type fakeWriter struct {
	remote net.Addr
	out    []byte
	writes int
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.out = append(w.out[:0], b...)
	w.writes++
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

func udpFrom(ip string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: 40000} }
