package results

import (
	"fmt"
	"math"
)

// SessionStats is one region's sessions under the session workload: where
// the web tier kept them and how many users lost theirs.
type SessionStats struct {
	// Mode is "stateless" (sessions in the replicated db, any web node
	// serves any user) or "stateful" (in the memory of the node that made
	// them, clients pinned to it by the lb).
	Mode string `json:"mode"`
	// Lost counts sessions the web tier forgot while their users still
	// needed them: in the session workload a user whose "who am I" is
	// answered 401 logs in again at once, so each 4xx is one lost session.
	// A user of the dead node who was about to log out anyway never
	// notices, so this is at most the sessions the node held.
	Lost int64 `json:"lost"`
}

func init() {
	metrics["lost_sessions"] = func(s *Summary, region string) (float64, error) {
		if len(s.Sessions) == 0 {
			return math.NaN(), fmt.Errorf("the run drove no session workload")
		}
		if region != "" {
			st, ok := s.Sessions[region]
			if !ok {
				return math.NaN(), fmt.Errorf("region %q drove no session workload", region)
			}
			return float64(st.Lost), nil
		}
		var n int64
		for _, st := range s.Sessions {
			n += st.Lost
		}
		return float64(n), nil
	}
	registerSection(41, "sessions", func(s *Summary) []Section {
		if len(s.Sessions) == 0 {
			return nil
		}
		sec := Section{Title: "Sessions",
			Note: "stateless: sessions in the replicated db (cache-aside through the region's cache); stateful: in the memory of the web node that made them, the lb pinning each user to it. A lost session is a user the web tier no longer knew while they still needed it (users about to log out anyway do not notice). " +
				"Held: the sessions the region's killed nodes had in memory at their last answer to the controller's probes (see Load balancer failover): what the loss is bounded by, give or take the logins and logouts of the last tenth of a second before the death.",
			Header: []string{"region", "mode", "#lost sessions", "#held by killed nodes"}}
		for _, r := range sortedKeys(s.Sessions) {
			st := s.Sessions[r]
			held, known := int64(0), false
			for _, f := range s.LBFailover {
				if f.Region == r && f.SessionsHeld != nil {
					held += *f.SessionsHeld
					known = true
				}
			}
			heldCell := "—"
			if known {
				heldCell = fmt.Sprint(held)
			}
			sec.Rows = append(sec.Rows, Row{Cells: []string{r, st.Mode, fmt.Sprint(st.Lost), heldCell}})
		}
		return []Section{sec}
	})
}

// EdgeStats is one region's CDN edges: how their requests were answered.
type EdgeStats struct {
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	Stale    int64   `json:"stale,omitempty"`
	Pass     int64   `json:"pass"` // not cacheable: sent to the origin
	HitRatio float64 `json:"hit_ratio"`
}

func init() {
	metrics["edge_hit_ratio"] = func(s *Summary, region string) (float64, error) {
		st, ok := s.Edge[region]
		if !ok {
			return math.NaN(), fmt.Errorf("region %q has no edge figures", region)
		}
		return st.HitRatio, nil
	}
	registerSection(42, "edge", func(s *Summary) []Section {
		if len(s.Edge) == 0 {
			return nil
		}
		sec := Section{Title: "CDN edges",
			Note:   "Requests the region's edges answered from their cache (HIT), fetched from the origin to cache (MISS), served past their lifetime because the origin failed (STALE) or passed through uncached (PASS). Hit ratio: HIT / (HIT + MISS).",
			Header: []string{"region", "#HIT", "#MISS", "#STALE", "#PASS", "#hit ratio"}}
		for _, r := range sortedKeys(s.Edge) {
			st := s.Edge[r]
			sec.Rows = append(sec.Rows, Row{Cells: []string{r, fmt.Sprint(st.Hits), fmt.Sprint(st.Misses),
				fmt.Sprint(st.Stale), fmt.Sprint(st.Pass), fmt.Sprintf("%.3f", st.HitRatio)}})
		}
		return []Section{sec}
	})
}

// CacheStats is one region's cache reads as its web nodes counted them
// (item and session reads together): answered from the cache (Hits), not
// there and filled from the store (Misses), failed at the cache and
// answered by the store (Errors), and reads in a region without a cache,
// which always go to the store (Uncached). Hit ratio: Hits / (Hits +
// Misses + Errors).
type CacheStats struct {
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	Errors   int64   `json:"errors"`
	Uncached int64   `json:"uncached"`
	HitRatio float64 `json:"hit_ratio"`
}

// Reads are the reads that went to the cache.
func (c CacheStats) Reads() int64 { return c.Hits + c.Misses + c.Errors }

func init() {
	metrics["cache_hit_ratio"] = func(s *Summary, region string) (float64, error) {
		if region == "" {
			var all CacheStats
			for _, st := range s.Cache {
				all.Hits += st.Hits
				all.Misses += st.Misses
				all.Errors += st.Errors
			}
			if all.Reads() == 0 {
				return math.NaN(), fmt.Errorf("no web node read through a cache")
			}
			return float64(all.Hits) / float64(all.Reads()), nil
		}
		st, ok := s.Cache[region]
		if !ok || st.Reads() == 0 {
			return math.NaN(), fmt.Errorf("region %q read nothing through a cache", region)
		}
		return st.HitRatio, nil
	}
	registerSection(42, "cache", func(s *Summary) []Section {
		if len(s.Cache) == 0 {
			return nil
		}
		sec := Section{Title: "Region caches",
			Note:   "Item and session reads as the region's web nodes counted them: answered from the cache (hit), filled from the store after a miss, answered by the store because the cache failed (error), or read from the store in a region without a cache (uncached). Hit ratio: hit / (hit + miss + error).",
			Header: []string{"region", "#hit", "#miss", "#error", "#uncached", "#hit ratio"}}
		for _, r := range sortedKeys(s.Cache) {
			st := s.Cache[r]
			ratio := "—"
			if st.Reads() > 0 {
				ratio = fmt.Sprintf("%.3f", st.HitRatio)
			}
			sec.Rows = append(sec.Rows, Row{Cells: []string{r, fmt.Sprint(st.Hits), fmt.Sprint(st.Misses),
				fmt.Sprint(st.Errors), fmt.Sprint(st.Uncached), ratio}})
		}
		return []Section{sec}
	})
}
