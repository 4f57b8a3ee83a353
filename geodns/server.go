package geodns

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server is the GeoDNS server: a dns.Handler plus its health state.
type Server struct {
	cfg    Config
	prober Prober
	now    func() time.Time

	subnets       subnetTable
	defaultRegion int // index of Config.DefaultRegion
	ttl           uint32
	answers       [][]dns.RR          // per region, built once, shared read-only
	soa           []dns.RR            // the apex SOA, for answers and negative replies
	ns            []dns.RR            // the apex NS set
	glue          []dns.RR            // A records of in-zone nameservers
	static        map[string][]dns.RR // lower-case name → A records served as is
	names         map[string]bool     // every name that exists, empty non-terminals included

	// snap is what the answer path reads; health changes build a new one
	// and swap it in, so queries never take a lock.
	snap atomic.Pointer[snapshot]

	mu     sync.Mutex // guards health and events
	health []regionHealth
	events []Event

	metrics *metrics
}

// snapshot is one immutable routing decision.
type snapshot struct {
	served []int // client region index → served region index
}

// Option customises a Server.
type Option func(*Server)

// WithProber replaces the HTTP health prober.
func WithProber(p Prober) Option { return func(s *Server) { s.prober = p } }

// WithClock replaces time.Now for event timestamps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// NewServer validates cfg (after applying defaults) and builds every answer
// up front. All regions start healthy so that a fresh server answers by
// locality at once; checks take a region down after Fall failures.
func NewServer(cfg Config, opts ...Option) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("geodns config: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		prober:  NewHTTPProber(),
		now:     time.Now,
		subnets: newSubnetTable(cfg.Regions),
		ttl:     uint32(cfg.TTL / time.Second),
		static:  map[string][]dns.RR{},
		names:   map[string]bool{},
		metrics: newMetrics(cfg.Regions),
	}
	for _, o := range opts {
		o(s)
	}

	for i, r := range cfg.Regions {
		s.answers = append(s.answers, s.aRecords(cfg.Name, r.Addrs))
		if r.Name == cfg.DefaultRegion {
			s.defaultRegion = i
		}
	}
	s.addName(cfg.Name)
	s.addName(cfg.Zone)
	for _, n := range cfg.Nameservers {
		s.ns = append(s.ns, &dns.NS{Hdr: s.hdr(cfg.Zone, dns.TypeNS), Ns: n.Name})
		if n.Addr.IsValid() && dns.IsSubDomain(cfg.Zone, n.Name) {
			a := s.aRecords(n.Name, []netip.Addr{n.Addr})
			s.glue = append(s.glue, a...)
			s.static[n.Name] = append(s.static[n.Name], a...)
			s.addName(n.Name)
		}
	}
	s.soa = []dns.RR{&dns.SOA{
		Hdr:     s.hdr(cfg.Zone, dns.TypeSOA),
		Ns:      cfg.Nameservers[0].Name,
		Mbox:    "hostmaster." + cfg.Zone,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		// Negative answers are cached for the same short TTL as positive
		// ones, so a name added by a config reload shows up as fast.
		Minttl: s.ttl,
	}}

	now := s.now()
	s.health = make([]regionHealth, len(cfg.Regions))
	healthy := make([]bool, len(cfg.Regions))
	for i := range s.health {
		s.health[i] = regionHealth{healthy: true, since: now}
		healthy[i] = true
	}
	s.snap.Store(&snapshot{served: routes(cfg, healthy)})
	return s, nil
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

func (s *Server) aRecords(name string, addrs []netip.Addr) []dns.RR {
	rrs := make([]dns.RR, len(addrs))
	for i, a := range addrs {
		rrs[i] = &dns.A{Hdr: s.hdr(name, dns.TypeA), A: a.Unmap().AsSlice()}
	}
	return rrs
}

// addName records name and its ancestors down to the zone, so that an empty
// non-terminal answers NODATA rather than NXDOMAIN.
func (s *Server) addName(name string) {
	for dns.IsSubDomain(s.cfg.Zone, name) {
		s.names[name] = true
		if name == s.cfg.Zone {
			return
		}
		i, _ := dns.NextLabel(name, 0)
		name = name[i:]
	}
}

// publishLocked swaps in the routes for the current health; s.mu held.
func (s *Server) publishLocked() {
	healthy := make([]bool, len(s.health))
	for i, h := range s.health {
		healthy[i] = h.healthy
	}
	s.snap.Store(&snapshot{served: routes(s.cfg, healthy)})
}

// State is the server's current health and routing, as served on
// /geodns/state.
type State struct {
	Zone          string            `json:"zone"`
	Name          string            `json:"name"`
	TTLSeconds    uint32            `json:"ttl_s"`
	DefaultRegion string            `json:"default_region"`
	Regions       []RegionState     `json:"regions"`
	Mapping       map[string]string `json:"mapping"` // client region → served region
	Events        []Event           `json:"events"`
	// Answers counts the geo-routed answers given since start, by client
	// region ("unknown" for no known subnet) and served region.
	Answers map[string]map[string]uint64 `json:"answers"`
	// Rcodes counts every response since start by response code.
	Rcodes map[string]uint64 `json:"rcodes"`
}

// RegionState is one region in State.
type RegionState struct {
	Name      string    `json:"name"`
	Subnet    string    `json:"subnet"`
	LB        string    `json:"lb"`
	Healthy   bool      `json:"healthy"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	ServedBy  string    `json:"served_by"`
}

// State returns a copy of the current health, mapping and event log.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	served := s.snap.Load().served
	st := State{
		Zone:          s.cfg.Zone,
		Name:          s.cfg.Name,
		TTLSeconds:    s.ttl,
		DefaultRegion: s.cfg.DefaultRegion,
		Mapping:       make(map[string]string, len(s.cfg.Regions)+1),
		Events:        append([]Event{}, s.events...), // [] rather than null in JSON
	}
	for i, r := range s.cfg.Regions {
		h := s.health[i]
		by := s.cfg.Regions[served[i]].Name
		st.Regions = append(st.Regions, RegionState{
			Name: r.Name, Subnet: r.Subnet.String(), LB: r.LB,
			Healthy: h.healthy, Since: h.since, LastError: h.lastErr, ServedBy: by,
		})
		st.Mapping[r.Name] = by
	}
	st.Mapping[unknownRegion] = st.Mapping[s.cfg.DefaultRegion]
	st.Answers = s.metrics.answerCounts(s.cfg.Regions)
	st.Rcodes = s.metrics.rcodeCounts()
	return st
}

// inZone is dns.IsSubDomain without its allocations for the common shape
// of name; escaped dots fall back to the exact check.
func (s *Server) inZone(name string) bool {
	z := s.cfg.Zone
	if z == "." {
		return true
	}
	if len(name) < len(z) || !strings.EqualFold(name[len(name)-len(z):], z) {
		return false
	}
	if len(name) == len(z) {
		return true
	}
	if strings.IndexByte(name, '\\') >= 0 {
		return dns.IsSubDomain(z, name)
	}
	return name[len(name)-len(z)-1] == '.'
}
