package geodns

import (
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// maxUDPSize is the EDNS payload size we advertise and the most we send over
// UDP: 1232 bytes avoids IP fragmentation (DNS flag day 2020).
const maxUDPSize = 1232

// reply holds everything one answer needs, pooled so that the common answer
// (the geo-routed A record) allocates nothing of its own.
type reply struct {
	msg   dns.Msg
	opt   dns.OPT
	ecs   dns.EDNS0_SUBNET
	extra [1]dns.RR
	opts  [1]dns.EDNS0
	buf   []byte
}

var replyPool = sync.Pool{New: func() any { return &reply{buf: make([]byte, 2*maxUDPSize)} }}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	// Never answer a response: two servers answering each other is a loop.
	if req.Response {
		return
	}
	rp := replyPool.Get().(*reply)
	defer func() {
		rp.msg, rp.ecs.Address = dns.Msg{}, nil
		replyPool.Put(rp)
	}()

	src := remoteAddr(w)
	client, served := s.build(req, src, rp)
	m := &rp.msg

	limit := 0 // TCP: no limit below the protocol's
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		limit = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
	}
	out, err := m.PackBuffer(rp.buf)
	if err == nil && limit > 0 && len(out) > limit {
		m.Truncate(limit)
		out, err = m.PackBuffer(rp.buf)
	}
	if err != nil {
		// The question itself would not pack (e.g. an over-long name that
		// unpacked leniently): answer with the bare header.
		*m = dns.Msg{MsgHdr: m.MsgHdr}
		m.Authoritative, m.Rcode, served = false, dns.RcodeFormatError, -1
		if out, err = m.PackBuffer(rp.buf); err != nil {
			return
		}
	}
	if cap(out) <= 8*maxUDPSize {
		rp.buf = out[:cap(out)]
	}
	// Count before writing, so that whoever has the answer sees it counted.
	var qtype uint16
	if len(req.Question) > 0 {
		qtype = req.Question[0].Qtype
	}
	s.metrics.queries[qtypeIndex(qtype)][rcodeIndex(m.Rcode)].Inc()
	if served >= 0 {
		s.metrics.answers[client][served].Inc()
	}
	// A failed write is the client's loss (gone, or a full socket buffer);
	// there is no one to report it to.
	_, _ = w.Write(out)
}

// build fills rp.msg with the answer to req from src. For a geo-routed
// answer it returns the client's region index (len(Regions) when unknown)
// and the served region index; otherwise served is -1.
func (s *Server) build(req *dns.Msg, src netip.Addr, rp *reply) (client, served int) {
	m := &rp.msg
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled

	var ecs *dns.EDNS0_SUBNET
	opt := req.IsEdns0()
	if opt != nil {
		rp.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		rp.opt.SetUDPSize(maxUDPSize)
		rp.opt.Option = rp.opts[:0]
		rp.extra[0] = &rp.opt
		m.Extra = rp.extra[:1]
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return 0, -1
		}
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				ecs = e
				break
			}
		}
	}
	if req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return 0, -1
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return 0, -1
	}
	q := req.Question[0]
	m.Question = req.Question
	if q.Qclass != dns.ClassINET || !s.inZone(q.Name) {
		m.Rcode = dns.RcodeRefused
		return 0, -1
	}
	m.Authoritative = true

	if strings.EqualFold(q.Name, s.cfg.Name) {
		if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
			m.Ns = s.soa
			s.echoECS(rp, ecs, 0)
			return 0, -1
		}
		srcBits := 0
		if ecs != nil && ecs.SourceNetmask > 0 {
			src, srcBits = ecsAddr(ecs)
		}
		region, bits, ok := s.subnets.lookup(src)
		client = len(s.cfg.Regions)
		def := s.defaultRegion
		if ok {
			client, def = region, region
			if ecs != nil && ecs.Family == 2 && src.Unmap().Is4() {
				bits += 96 // a v4 region matched a v4-mapped v6 source
			}
		} else {
			bits = srcBits
		}
		served = s.snap.Load().served[def]
		m.Answer = s.answers[served]
		s.echoECS(rp, ecs, uint8(bits))
		return client, served
	}

	s.echoECS(rp, ecs, 0)
	name := strings.ToLower(q.Name)
	switch {
	case name == s.cfg.Zone && q.Qtype == dns.TypeSOA:
		m.Answer = s.soa
	case name == s.cfg.Zone && q.Qtype == dns.TypeNS:
		m.Answer = s.ns
		m.Extra = append(append([]dns.RR(nil), s.glue...), m.Extra...)
	case name == s.cfg.Zone && q.Qtype == dns.TypeANY:
		m.Answer = append(append([]dns.RR(nil), s.soa...), s.ns...)
	case s.static[name] != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
		m.Answer = s.static[name]
	case s.names[name]:
		m.Ns = s.soa
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = s.soa
	}
	return 0, -1
}

// echoECS answers an ECS query with its option and the scope the answer is
// valid for (RFC 7871 §7.2.1: 0 when the answer does not depend on it).
func (s *Server) echoECS(rp *reply, ecs *dns.EDNS0_SUBNET, scope uint8) {
	if ecs == nil {
		return
	}
	if ecs.SourceNetmask == 0 {
		scope = 0
	}
	rp.ecs = dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        ecs.Family,
		SourceNetmask: ecs.SourceNetmask,
		SourceScope:   scope,
		Address:       ecs.Address,
	}
	rp.opt.Option = append(rp.opt.Option, &rp.ecs)
}

// ecsAddr returns the ECS address truncated to its source prefix.
func ecsAddr(e *dns.EDNS0_SUBNET) (netip.Addr, int) {
	a, _ := netip.AddrFromSlice(e.Address)
	bits := int(e.SourceNetmask)
	if e.Family == 1 {
		a = a.Unmap()
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a, bits
	}
	return p.Addr(), bits
}

func remoteAddr(w dns.ResponseWriter) netip.Addr {
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr()
		}
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}
