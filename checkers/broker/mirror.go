package broker

import "github.com/faultline/faultline/checkers/stats"

// LagPoint is one sample of a mirror's lag: T seconds since the run's
// start, MS milliseconds behind the source.
type LagPoint struct {
	T  float64 `json:"t"`
	MS float64 `json:"ms"`
}

// MirrorLag summarises the samples of every mirror: Final is the last
// sample's lag (after the drain, it says whether the mirror caught up).
type MirrorLag struct {
	Samples int        `json:"samples"`
	P50     float64    `json:"p50"`
	P99     float64    `json:"p99"`
	Max     float64    `json:"max"`
	MaxAtS  float64    `json:"max_at_s"`
	Final   float64    `json:"final"`
	Series  []LagPoint `json:"series,omitempty"`
}

// Lag summarises a series of samples in time order.
func Lag(series []LagPoint) MirrorLag {
	if len(series) == 0 {
		return MirrorLag{}
	}
	ms := make([]float64, len(series))
	l := MirrorLag{Samples: len(series), Series: series, Final: series[len(series)-1].MS}
	for i, p := range series {
		ms[i] = p.MS
		if p.MS > l.Max {
			l.Max, l.MaxAtS = p.MS, p.T
		}
	}
	q := stats.Of(ms)
	l.P50, l.P99 = q.P50, q.P99
	return l
}
