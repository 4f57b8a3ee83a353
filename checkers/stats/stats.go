// Package stats computes the percentiles the db checkers report.
package stats

import (
	"math"
	"slices"
)

// Quantiles are nearest-rank percentiles of a sample; all zero for an empty
// one (Count tells the two apart).
type Quantiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Of returns the quantiles of xs (which it does not modify).
func Of(xs []float64) Quantiles {
	if len(xs) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Quantiles{Count: len(s), P50: rank(s, 0.50), P99: rank(s, 0.99), Max: s[len(s)-1]}
}

// rank is the nearest-rank percentile: the smallest value with at least
// q of the sample at or below it.
func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
