package geodns

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnswerByClientSubnet(t *testing.T) {
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(t, err)
	addr := startServer(t, s)

	for _, tc := range []struct {
		ecs       string
		wantLB    string
		wantScope uint8
	}{
		{"10.1.7.0/24", lbOf["us-east"], 16},
		{"10.2.0.0/16", lbOf["eu-west"], 16},
		{"10.3.200.17/32", lbOf["ap-south"], 16},
		{"10.0.0.0/8", lbOf["us-east"], 8},            // wider than any region: default, valid for the source prefix
		{"192.0.2.0/24", lbOf["us-east"], 24},         // unknown subnet: default region
		{"0.0.0.0/0", lbOf["us-east"], 0},             // no client info: the source (127.0.0.1), unknown
		{"2001:db8::/56", lbOf["us-east"], 56},        // IPv6 client in no region
		{"::ffff:10.2.3.0/120", lbOf["eu-west"], 112}, // v4-mapped v6 source: v4 region, scope in v6 bits
	} {
		t.Run(tc.ecs, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				r := exchange(t, network, addr, withECS(newQuery("app.faultline.test.", dns.TypeA), tc.ecs))
				require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
				assert.True(t, r.Authoritative, network)
				assert.Equal(t, []string{tc.wantLB}, answerAddrs(r), network)
				assert.Equal(t, uint32(5), r.Answer[0].Header().Ttl, "default TTL")
				e := replyECS(r)
				require.NotNil(t, e, network)
				assert.Equal(t, tc.wantScope, e.SourceScope, network)
				assert.Equal(t, netip.MustParsePrefix(tc.ecs).Bits(), int(e.SourceNetmask), "source prefix echoed")
			}
		})
	}
}

func TestAnswerBySourceAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		subnet   string
		defaultR string
		want     string
	}{
		{"loopback is a region", "127.0.0.0/8", "", "10.9.0.10"},
		{"loopback unknown, configured default", "10.9.0.0/16", "eu-west", lbOf["eu-west"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Regions = append(cfg.Regions, Region{Name: "local", Subnet: netip.MustParsePrefix(tc.subnet), LB: "10.9.0.10"})
			cfg.RTT["local"] = map[string]float64{"us-east": 1, "eu-west": 1, "ap-south": 1}
			cfg.DefaultRegion = tc.defaultR
			s, err := NewServer(cfg, WithProber(newFakeProber()))
			require.NoError(t, err)
			addr := startServer(t, s)
			r := exchange(t, "udp", addr, newQuery("APP.Faultline.TEST.", dns.TypeA))
			assert.Equal(t, []string{tc.want}, answerAddrs(r))
			assert.Equal(t, "APP.Faultline.TEST.", r.Question[0].Name, "question echoed with its case")
			assert.True(t, strings.EqualFold("app.faultline.test.", r.Answer[0].Header().Name))
			assert.Nil(t, r.IsEdns0(), "no OPT in reply to a query without one")
		})
	}
}

func TestZoneAnswers(t *testing.T) {
	cfg := testConfig()
	cfg.Name = "app.eu.faultline.test." // "eu.faultline.test." becomes an empty non-terminal
	cfg.TTL = 30e9
	s, err := NewServer(cfg, WithProber(newFakeProber()))
	require.NoError(t, err)
	addr := startServer(t, s)

	for _, tc := range []struct {
		name     string
		q        *dns.Msg
		rcode    int
		aa       bool
		answer   []uint16 // types in the answer section
		soaInNs  bool
		glueA    int
		checkTTL bool
	}{
		{name: "SOA at apex", q: newQuery("faultline.test.", dns.TypeSOA), aa: true, answer: []uint16{dns.TypeSOA}, checkTTL: true},
		{name: "NS at apex with glue", q: newQuery("faultline.test.", dns.TypeNS), aa: true, answer: []uint16{dns.TypeNS, dns.TypeNS}, glueA: 2},
		{name: "ANY at apex", q: newQuery("faultline.test.", dns.TypeANY), aa: true, answer: []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeNS}},
		{name: "glue name A", q: newQuery("ns2.faultline.test.", dns.TypeA), aa: true, answer: []uint16{dns.TypeA}},
		{name: "geo name A", q: newQuery("app.eu.faultline.test.", dns.TypeA), aa: true, answer: []uint16{dns.TypeA}, checkTTL: true},
		{name: "geo name ANY", q: newQuery("app.eu.faultline.test.", dns.TypeANY), aa: true, answer: []uint16{dns.TypeA}},
		{name: "NODATA geo name AAAA", q: newQuery("app.eu.faultline.test.", dns.TypeAAAA), aa: true, soaInNs: true},
		{name: "NODATA apex MX", q: newQuery("faultline.test.", dns.TypeMX), aa: true, soaInNs: true},
		{name: "NODATA empty non-terminal", q: newQuery("eu.faultline.test.", dns.TypeA), aa: true, soaInNs: true},
		{name: "NXDOMAIN unknown name", q: newQuery("nope.faultline.test.", dns.TypeA), rcode: dns.RcodeNameError, aa: true, soaInNs: true},
		{name: "NXDOMAIN below geo name", q: newQuery("x.app.eu.faultline.test.", dns.TypeA), rcode: dns.RcodeNameError, aa: true, soaInNs: true},
		{name: "REFUSED outside zone", q: newQuery("example.com.", dns.TypeA), rcode: dns.RcodeRefused},
		{name: "REFUSED suffix look-alike", q: newQuery("xfaultline.test.", dns.TypeA), rcode: dns.RcodeRefused},
		{name: "REFUSED class CH", q: func() *dns.Msg {
			m := newQuery("faultline.test.", dns.TypeSOA)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(), rcode: dns.RcodeRefused},
		{name: "NOTIMP update", q: func() *dns.Msg { m := newQuery("faultline.test.", dns.TypeSOA); m.Opcode = dns.OpcodeUpdate; return m }(), rcode: dns.RcodeNotImplemented},
		{name: "BADVERS edns1", q: func() *dns.Msg {
			m := newQuery("faultline.test.", dns.TypeSOA)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}(), rcode: dns.RcodeBadVers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				r := exchange(t, network, addr, tc.q.Copy())
				assert.Equal(t, dns.RcodeToString[tc.rcode], dns.RcodeToString[r.Rcode], network)
				assert.Equal(t, tc.aa, r.Authoritative, network)
				assert.False(t, r.Truncated, network)
				var types []uint16
				for _, rr := range r.Answer {
					types = append(types, rr.Header().Rrtype)
					if tc.checkTTL {
						assert.Equal(t, uint32(30), rr.Header().Ttl)
					}
				}
				assert.Equal(t, tc.answer, types, network)
				if tc.soaInNs {
					require.Len(t, r.Ns, 1, network)
					soa, ok := r.Ns[0].(*dns.SOA)
					require.True(t, ok, network)
					assert.Equal(t, uint32(30), soa.Minttl)
					assert.Equal(t, "ns1.faultline.test.", soa.Ns)
				} else {
					assert.Empty(t, r.Ns, network)
				}
				glue := 0
				for _, rr := range r.Extra {
					if rr.Header().Rrtype == dns.TypeA {
						glue++
					}
				}
				assert.Equal(t, tc.glueA, glue, network)
			}
		})
	}
}

func TestTruncationAndTCPRetry(t *testing.T) {
	cfg := testConfig()
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{10, 2, 1, byte(i + 1)}))
	}
	// 60 A records: ~2 KB uncompressed, ~1 KB compressed. In the default
	// region, so that a query without EDNS (and so without ECS) gets them.
	cfg.Regions[0].Addrs = many
	s, err := NewServer(cfg, WithProber(newFakeProber()))
	require.NoError(t, err)
	addr := startServer(t, s)

	for _, tc := range []struct {
		name    string
		bufsize uint16 // 0: no EDNS
		wantTC  bool
	}{
		{"no EDNS: 512 bytes", 0, true},
		{"EDNS below 512 counts as 512", 100, true},
		{"EDNS 1000", 1000, true},
		{"EDNS 4096 capped at 1232 still fits", 4096, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQuery("app.faultline.test.", dns.TypeA)
			q = withECS(q, "10.1.9.0/24")
			if tc.bufsize == 0 {
				q.Extra = nil
			} else {
				q.IsEdns0().SetUDPSize(tc.bufsize)
			}
			r := exchange(t, "udp", addr, q.Copy())
			assert.Equal(t, tc.wantTC, r.Truncated)
			if tc.wantTC {
				assert.Less(t, len(r.Answer), 60)
			} else {
				assert.Len(t, r.Answer, 60)
			}
			r.Compress = true // as the server sent it
			packed, err := r.Pack()
			require.NoError(t, err)
			assert.LessOrEqual(t, len(packed), max(512, min(int(tc.bufsize), 1232)))

			if tc.wantTC {
				// What a resolver does next: the same query over TCP.
				r = exchange(t, "tcp", addr, q.Copy())
				assert.False(t, r.Truncated)
				assert.Len(t, r.Answer, 60)
			}
		})
	}
}

func TestTenThousandQueriesPerRegion(t *testing.T) {
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(t, err)
	addr := startServer(t, s)
	const n = 10000
	const workers = 4

	for _, region := range []string{"us-east", "eu-west", "ap-south"} {
		t.Run(region, func(t *testing.T) {
			subnet := map[string]string{"us-east": "10.1.", "eu-west": "10.2.", "ap-south": "10.3."}[region]
			errs := make(chan error, workers)
			for w := range workers {
				go func() {
					errs <- func() error {
						c := &dns.Client{Net: "udp"}
						conn, err := c.Dial(addr)
						if err != nil {
							return err
						}
						defer conn.Close()
						for i := w; i < n; i += workers {
							q := withECS(newQuery("app.faultline.test.", dns.TypeA), fmt.Sprintf("%s%d.%d/32", subnet, i/256, i%256))
							r, _, err := c.ExchangeWithConn(q, conn)
							if err != nil {
								return fmt.Errorf("query %d: %w", i, err)
							}
							if got := answerAddrs(r); len(got) != 1 || got[0] != lbOf[region] {
								return fmt.Errorf("query %d: got %v, want %s", i, got, lbOf[region])
							}
						}
						return nil
					}()
				}()
			}
			for range workers {
				require.NoError(t, <-errs)
			}
		})
	}
	for i, client := range s.cfg.Regions {
		for j := range s.cfg.Regions {
			want := 0.0
			if i == j {
				want = n
			}
			assert.Equal(t, want, counterValue(s.metrics.answers[i][j]), "answers %s→%s", client.Name, s.cfg.Regions[j].Name)
		}
	}
	// The state endpoint carries the same counts, for the controller.
	st := s.State()
	for _, client := range s.cfg.Regions {
		assert.Equal(t, uint64(n), st.Answers[client.Name][client.Name], client.Name)
	}
	assert.Equal(t, uint64(n*len(s.cfg.Regions)), st.Rcodes["NOERROR"])
	assert.Zero(t, st.Rcodes["SERVFAIL"])
}
