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
	// Lost counts sessions the web tier forgot: in the session workload a
	// user whose "who am I" is answered 401 logs in again at once, so each
	// 4xx is one lost session.
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
			Note:   "stateless: sessions in the replicated db (cache-aside through the region's cache); stateful: in the memory of the web node that made them, the lb pinning each user to it. A lost session is a user the web tier no longer knew.",
			Header: []string{"region", "mode", "#lost sessions"}}
		for _, r := range sortedKeys(s.Sessions) {
			st := s.Sessions[r]
			sec.Rows = append(sec.Rows, Row{Cells: []string{r, st.Mode, fmt.Sprint(st.Lost)}})
		}
		return []Section{sec}
	})
}
