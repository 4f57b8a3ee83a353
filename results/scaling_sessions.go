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
			Note:   "stateless: sessions in the replicated db (cache-aside through the region's cache); stateful: in the memory of the web node that made them, the lb pinning each user to it. A lost session is a user the web tier no longer knew while they still needed it (users about to log out anyway do not notice).",
			Header: []string{"region", "mode", "#lost sessions"}}
		for _, r := range sortedKeys(s.Sessions) {
			st := s.Sessions[r]
			sec.Rows = append(sec.Rows, Row{Cells: []string{r, st.Mode, fmt.Sprint(st.Lost)}})
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
