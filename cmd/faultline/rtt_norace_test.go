//go:build !race

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// checkRTT holds a measured p50 to the configured RTT ± (1 ms + 5%); inside
// a region, under 1 ms. Timing bounds hold without the race detector only.
func checkRTT(t *testing.T, want, got time.Duration) {
	t.Helper()
	if want == 0 {
		assert.Less(t, got, time.Millisecond, "inside a region")
		return
	}
	tol := time.Millisecond + want/20
	assert.InDelta(t, float64(want), float64(got), float64(tol), "p50 %v, want %v ± %v", got, want, tol)
}

// checkRate holds a measured TCP goodput to a bandwidth cap ± 10%.
func checkRate(t *testing.T, want, got float64) {
	t.Helper()
	assert.InEpsilon(t, want, got, 0.10, "%.2f Mbit/s, want %.2f ± 10%%", got/1e6, want/1e6)
}
