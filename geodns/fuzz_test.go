package geodns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func FuzzHandler(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("app.faultline.test.", dns.TypeA),
		withECS(newQuery("app.faultline.test.", dns.TypeA), "10.2.0.0/24"),
		withECS(newQuery("app.faultline.test.", dns.TypeANY), "2001:db8::/48"),
		newQuery("faultline.test.", dns.TypeNS),
		newQuery("nope.faultline.test.", dns.TypeTXT),
		newQuery("example.com.", dns.TypeA),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		require.NoError(f, err)
		f.Add(b, false)
		f.Add(b, true)
	}
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, packet []byte, overTCP bool) {
		req := new(dns.Msg)
		if req.Unpack(packet) != nil {
			return // the dns server answers these itself, before any handler
		}
		w := &fakeWriter{remote: udpFrom("10.1.2.3")}
		if overTCP {
			w.remote = &net.TCPAddr{IP: net.IPv4(10, 3, 2, 1), Port: 40000}
		}
		s.ServeDNS(w, req)
		if req.Response {
			require.Zero(t, w.writes, "a response must not be answered")
			return
		}
		require.Equal(t, 1, w.writes)
		if !overTCP {
			limit := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
			}
			require.LessOrEqual(t, len(w.out), limit)
		}
		r := new(dns.Msg)
		require.NoError(t, r.Unpack(w.out), "reply must parse")
		require.Equal(t, req.Id, r.Id)
		require.True(t, r.Response)
		require.NotEqual(t, dns.RcodeServerFailure, r.Rcode)
	})
}

// BenchmarkServeDNS measures the answer path for the geo-routed name,
// handler only (no sockets), with and without ECS.
func BenchmarkServeDNS(b *testing.B) {
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		q    *dns.Msg
	}{
		{"plain", newQuery("app.faultline.test.", dns.TypeA)},
		{"ecs", withECS(newQuery("app.faultline.test.", dns.TypeA), "10.2.3.0/24")},
		{"nxdomain", newQuery("nope.faultline.test.", dns.TypeA)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &fakeWriter{remote: udpFrom("10.3.2.1"), out: make([]byte, 0, 512)}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &fakeWriter{remote: w.remote, out: make([]byte, 0, 512)}
				for pb.Next() {
					s.ServeDNS(w, bc.q)
				}
			})
		})
	}
}

// BenchmarkUnpackAndServe adds the request unpacking the dns server does per
// packet, which dominates a real query.
func BenchmarkUnpackAndServe(b *testing.B) {
	s, err := NewServer(testConfig(), WithProber(newFakeProber()))
	require.NoError(b, err)
	packet, err := newQuery("app.faultline.test.", dns.TypeA).Pack()
	require.NoError(b, err)
	b.ReportAllocs()
	w := &fakeWriter{remote: udpFrom("10.3.2.1"), out: make([]byte, 0, 512)}
	for b.Loop() {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			b.Fatal(err)
		}
		s.ServeDNS(w, req)
	}
}
