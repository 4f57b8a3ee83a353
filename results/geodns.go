package results

import (
	"fmt"
	"math"
	"slices"
)

// GeoDNS is summary.json's `geodns` section: how the DNS moved each client
// region, measured from the controller's polls of every geodns node.
type GeoDNS struct {
	// BoundS is what the topology promises: a dead region leaves the
	// answers within check interval × fall + TTL.
	BoundS float64 `json:"bound_s"`
	// FailoverS is, per region taken away, the worst time from the fault's
	// injection until every geodns outside it stopped naming it to its
	// clients (-1: never within the fault).
	FailoverS map[string]float64 `json:"failover_s"`
	Failovers []DNSFailover      `json:"failovers"`
	// Answers counts the answers given over the run by client region
	// ("unknown": no known subnet) and served region, over every geodns.
	Answers map[string]map[string]uint64 `json:"answers"`
	// ServFail counts SERVFAIL responses, which a healthy zone never gives.
	ServFail uint64 `json:"servfail"`
}

// DNSFailover is one fault that took a region away, as the DNS and that
// region's clients saw it. Times are seconds since the run's start or, for
// the *S durations, since the fault's injection.
type DNSFailover struct {
	Region     string  `json:"region"`
	Fault      string  `json:"fault"`
	InjectedAt float64 `json:"injected_at"`
	HealedAt   float64 `json:"healed_at"`
	// AliveAt: the last moment the region is known to have been alive,
	// the later of the injection and the start of the last health check
	// round that passed at a geodns outside it before that geodns marked it
	// down. A fault's injection (stopping or cutting off a region's
	// containers) takes Docker from a few hundred milliseconds to seconds,
	// and the region's lb may die anywhere in it: the geodns's own record
	// narrows that down, and never past the truth.
	AliveAt float64 `json:"alive_at"`
	// FailoverS: from AliveAt until every geodns outside the region stopped
	// answering it, so at least the time the geodns took to notice.
	FailoverS float64 `json:"failover_s"`
	// MovedTo: the region its clients were sent to instead.
	MovedTo string `json:"moved_to,omitempty"`
	// ExcludedPct: of the answers to the region's clients from injection +
	// BoundS until the heal, the share naming another region.
	ExcludedPct float64 `json:"excluded_pct"`
	// ClientsOKS: from injection until the region's clients saw an error
	// rate under 1% again (two seconds running); -1 never.
	ClientsOKS float64 `json:"clients_ok_s"`
	// OthersUnchangedPct: of the answers to every other region's clients
	// during the fault, the share naming their own region.
	OthersUnchangedPct float64 `json:"others_unchanged_pct"`
	// BackS: from the heal until every geodns answered the region's clients
	// with it again (-1: not within the run).
	BackS float64 `json:"back_s"`
}

func init() {
	metrics["dns_failover_s"] = func(s *Summary, region string) (float64, error) {
		return dnsWorst(s, region, func(f DNSFailover) float64 {
			if f.FailoverS < 0 {
				return math.Inf(1)
			}
			return f.FailoverS
		}, math.Max)
	}
	metrics["dns_clients_ok_s"] = func(s *Summary, region string) (float64, error) {
		return dnsWorst(s, region, func(f DNSFailover) float64 {
			if f.ClientsOKS < 0 {
				return math.Inf(1)
			}
			return f.ClientsOKS
		}, math.Max)
	}
	metrics["dns_excluded_pct"] = func(s *Summary, region string) (float64, error) {
		return dnsWorst(s, region, func(f DNSFailover) float64 { return f.ExcludedPct }, math.Min)
	}
	metrics["dns_others_unchanged_pct"] = func(s *Summary, region string) (float64, error) {
		return dnsWorst(s, region, func(f DNSFailover) float64 { return f.OthersUnchangedPct }, math.Min)
	}
	metrics["dns_servfail"] = func(s *Summary, _ string) (float64, error) {
		if s.GeoDNS == nil {
			return 0, fmt.Errorf("the run has no geodns")
		}
		return float64(s.GeoDNS.ServFail), nil
	}
	registerSection(40, "geodns", geodnsSections)
}

// dnsWorst folds pick over the failovers of region ("" for all).
func dnsWorst(s *Summary, region string, pick func(DNSFailover) float64, fold func(a, b float64) float64) (float64, error) {
	if s.GeoDNS == nil {
		return 0, fmt.Errorf("the run has no geodns")
	}
	var out float64
	n := 0
	for _, f := range s.GeoDNS.Failovers {
		if region != "" && f.Region != region {
			continue
		}
		v := pick(f)
		if n == 0 {
			out = v
		} else {
			out = fold(out, v)
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no fault took region %q away", region)
	}
	return out, nil
}

func geodnsSections(s *Summary) []Section {
	g := s.GeoDNS
	if g == nil {
		return nil
	}
	out := []Section{}
	if len(g.Failovers) > 0 {
		sec := Section{
			Title: "DNS failover",
			Note: fmt.Sprintf("Each fault that took a region away: when every other geodns stopped naming it, counted from when the region was last seen alive (bound: check interval × fall + TTL = %s s), "+
				"where its clients went, the share of their answers that excluded it after the bound, and when their error rate was under 1%% again. "+
				"The other regions' clients should see no change.", num(g.BoundS)),
			Header: []string{"region", "fault", "#injected at s", "#last seen alive at s", "#DNS failover s", "moved to", "#answers excluding it", "#clients OK after s", "#others unchanged", "#back after heal s"},
		}
		for _, f := range g.Failovers {
			bad := f.FailoverS < 0 || f.FailoverS > g.BoundS || f.ExcludedPct < 99 || f.ClientsOKS < 0
			sec.Rows = append(sec.Rows, Row{Bad: bad, Cells: []string{
				f.Region, f.Fault, secs(f.InjectedAt), secs(f.AliveAt), orNever(f.FailoverS), f.MovedTo,
				fmt.Sprintf("%.2f%%", f.ExcludedPct), orNever(f.ClientsOKS), fmt.Sprintf("%.2f%%", f.OthersUnchangedPct), orNever(f.BackS),
			}})
		}
		out = append(out, sec)
	}
	ans := Section{
		Title:  "DNS answers",
		Note:   fmt.Sprintf("Answers over the whole run, by the client's region (rows) and the region answered (columns). SERVFAIL responses: %d.", g.ServFail),
		Header: []string{"client region"},
	}
	served := map[string]bool{}
	for _, row := range g.Answers {
		for r := range row {
			served[r] = true
		}
	}
	cols := sortedKeys(served)
	for _, c := range cols {
		ans.Header = append(ans.Header, "#"+c)
	}
	for _, client := range sortedKeys(g.Answers) {
		cells := []string{client}
		total := uint64(0)
		for _, c := range cols {
			total += g.Answers[client][c]
		}
		if total == 0 {
			continue
		}
		for _, c := range cols {
			cells = append(cells, fmt.Sprint(g.Answers[client][c]))
		}
		ans.Rows = append(ans.Rows, Row{Cells: cells})
	}
	return append(out, ans)
}

func orNever(v float64) string {
	if v < 0 {
		return "never"
	}
	return num(v)
}

// DNSFaultRegions says which of regions a fault takes away from their
// clients: a region that dies (region-down) or whose servers are cut off
// (region-isolate, or a two-way partition of whole regions from everyone
// else).
func DNSFaultRegions(f Fault, regions []string) []string {
	switch f.Kind {
	case "region-down", "region-isolate":
		return f.Targets
	case "partition":
		if len(f.Peers) > 0 || f.OneWay {
			return nil
		}
		for _, t := range f.Targets {
			if !slices.Contains(regions, t) {
				return nil
			}
		}
		return f.Targets
	}
	return nil
}

// DNSPoll is one geodns node's state as the controller read it, T seconds
// after the run's start. Counters are cumulative since the node started, so
// they restart from zero when the node does.
type DNSPoll struct {
	T       float64                      `json:"t"`
	Server  string                       `json:"server"`
	Region  string                       `json:"region"` // the server's own
	Mapping map[string]string            `json:"mapping"`
	Answers map[string]map[string]uint64 `json:"answers"`
	Rcodes  map[string]uint64            `json:"rcodes"`
}

// DNSHealth is a change of a region's health as one geodns saw it.
type DNSHealth struct {
	T       float64 `json:"t"`
	Server  string  `json:"server"`
	Region  string  `json:"region"` // the region whose health changed
	Healthy bool    `json:"healthy"`
	// LastOK, on a down change, is when the server's last passing check
	// round began (-1: unknown).
	LastOK float64 `json:"last_ok"`
}

// answerDelta is what one poll added to an (client, served) counter.
type answerDelta struct {
	t              float64
	client, served string
	n              uint64
}

// BuildGeoDNS derives the geodns section from the polls (in time order),
// the servers' health changes, the run's faults, its regions and their
// per-second series.
func BuildGeoDNS(polls []DNSPoll, health []DNSHealth, faults []Fault, regions []string, series map[string]Region, boundS float64) *GeoDNS {
	g := &GeoDNS{BoundS: boundS, FailoverS: map[string]float64{}, Answers: map[string]map[string]uint64{}, Failovers: []DNSFailover{}}
	// Counter increments per server, a drop meaning the node restarted.
	var deltas []answerDelta
	lastAns := map[string]map[string]map[string]uint64{}
	lastServFail := map[string]uint64{}
	for _, p := range polls {
		prev := lastAns[p.Server]
		for client, row := range p.Answers {
			for served, v := range row {
				old := prev[client][served]
				d := v - old
				if v < old {
					d = v
				}
				if d > 0 {
					deltas = append(deltas, answerDelta{t: p.T, client: client, served: served, n: d})
					if g.Answers[client] == nil {
						g.Answers[client] = map[string]uint64{}
					}
					g.Answers[client][served] += d
				}
			}
		}
		lastAns[p.Server] = p.Answers
		sf, old := p.Rcodes["SERVFAIL"], lastServFail[p.Server]
		if sf >= old {
			g.ServFail += sf - old
		} else {
			g.ServFail += sf
		}
		lastServFail[p.Server] = sf
	}
	for _, f := range faults {
		if f.InjectedAt < 0 {
			continue
		}
		end := f.HealedAt
		if end < 0 {
			end = math.Inf(1)
		}
		for _, x := range DNSFaultRegions(f, regions) {
			fo := DNSFailover{Region: x, Fault: f.Kind, InjectedAt: f.InjectedAt, HealedAt: f.HealedAt, FailoverS: -1, BackS: -1, ClientsOKS: -1}
			downs := firstDowns(health, polls, x, f.InjectedAt, end)
			fo.AliveAt = aliveAt(downs, f.InjectedAt)
			var t float64
			t, fo.MovedTo = allMapped(polls, f.InjectedAt, end, x, func(p DNSPoll) bool { return p.Region != x }, false)
			if te := allMarkedDown(downs); t >= 0 && te >= 0 && te < t {
				t = te // the servers' own clock, not the next poll's
			}
			if t >= 0 {
				fo.FailoverS = t - fo.AliveAt
			}
			if f.HealedAt >= 0 {
				if back, _ := allMapped(polls, f.HealedAt, math.Inf(1), x, func(DNSPoll) bool { return true }, true); back >= 0 {
					fo.BackS = back - f.HealedAt
				}
			}
			fo.ExcludedPct = sharePct(deltas, f.InjectedAt+boundS, end, func(d answerDelta) (bool, bool) {
				return d.client == x, d.served != x
			})
			fo.OthersUnchangedPct = sharePct(deltas, f.InjectedAt, end, func(d answerDelta) (bool, bool) {
				return d.client != x && d.client != "unknown", d.served == d.client
			})
			fo.ClientsOKS = clientsOK(series[x].Series, f.InjectedAt, end)
			g.Failovers = append(g.Failovers, fo)
			if fo.FailoverS < 0 {
				g.FailoverS[x] = -1
			} else if old, ok := g.FailoverS[x]; !ok || (old >= 0 && fo.FailoverS > old) {
				g.FailoverS[x] = fo.FailoverS
			}
		}
	}
	return g
}

// firstDowns is, for each polled geodns outside region x, its first
// change marking x down in [from, to) (the zero DNSHealth when it has none).
func firstDowns(health []DNSHealth, polls []DNSPoll, x string, from, to float64) map[string]DNSHealth {
	first := map[string]DNSHealth{}
	for _, p := range polls {
		if p.Region != x {
			first[p.Server] = DNSHealth{}
		}
	}
	for _, h := range health {
		if h.Region != x || h.Healthy || h.T < from || h.T >= to {
			continue
		}
		if f, outside := first[h.Server]; outside && (f.Server == "" || h.T < f.T) {
			first[h.Server] = h
		}
	}
	return first
}

// aliveAt is the later of from and the last passing check round before
// each geodns outside x first marked x down.
func aliveAt(downs map[string]DNSHealth, from float64) float64 {
	alive := from
	for _, h := range downs {
		if h.Server != "" && h.LastOK <= h.T {
			alive = max(alive, h.LastOK)
		}
	}
	return alive
}

// allMarkedDown is when the last of downs happened: a server swaps its
// answers in the same step, so this times the failover to the servers'
// clock rather than to the controller's next poll (200 ms apart, and late
// under load). -1 when a server has no such change.
func allMarkedDown(downs map[string]DNSHealth) float64 {
	last := -1.0
	for _, h := range downs {
		if h.Server == "" {
			return -1
		}
		last = max(last, h.T)
	}
	return last
}

// allMapped finds the first poll time in [from, to) by which every server
// passing which has been polled since from and its latest poll maps region
// x's clients to x (home) or away from x (!home). It returns -1 if that
// never happens, and the region the clients were sent to.
func allMapped(polls []DNSPoll, from, to float64, x string, which func(DNSPoll) bool, home bool) (float64, string) {
	latest := map[string]string{}
	servers := map[string]bool{}
	for _, p := range polls {
		if which(p) {
			servers[p.Server] = true
		}
	}
	for _, p := range polls {
		if p.T < from || p.T >= to || !which(p) {
			continue
		}
		latest[p.Server] = p.Mapping[x]
		if len(latest) < len(servers) {
			continue
		}
		done, to := true, ""
		for _, m := range latest {
			if (m == x) != home {
				done = false
				break
			}
			to = m
		}
		if done {
			return p.T, to
		}
	}
	return -1, ""
}

// sharePct is the percentage of the answers in [from, to) that count
// (first result) which also qualify (second); 100 when none count.
func sharePct(deltas []answerDelta, from, to float64, pick func(answerDelta) (counts, ok bool)) float64 {
	var total, good uint64
	for _, d := range deltas {
		if d.t < from || d.t >= to {
			continue
		}
		if counts, ok := pick(d); counts {
			total += d.n
			if ok {
				good += d.n
			}
		}
	}
	if total == 0 {
		return 100
	}
	return 100 * float64(good) / float64(total)
}

// clientsOK is the seconds from injection until the first of two seconds
// running with an error rate under RecoveryBound, counted from the first
// second with an error at or after injection (0 if the clients never saw
// one before the fault ended); -1 if that never happens.
func clientsOK(series []Second, injected, end float64) float64 {
	rate := func(pt Second) float64 {
		if pt.RPS <= 0 {
			return 0
		}
		return float64(pt.Errors) / pt.RPS
	}
	first := int(math.Floor(injected))
	detect := -1
	for _, pt := range series {
		if pt.T >= first && float64(pt.T) < end && pt.Errors > 0 {
			detect = pt.T
			break
		}
	}
	if detect < 0 {
		return 0
	}
	for i, pt := range series {
		if pt.T <= detect || i+1 >= len(series) {
			continue
		}
		if rate(pt) < RecoveryBound && rate(series[i+1]) < RecoveryBound && pt.RPS > 0 {
			return math.Max(0, float64(pt.T)-injected)
		}
	}
	return -1
}
