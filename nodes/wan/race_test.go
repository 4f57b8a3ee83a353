//go:build race

package wan

// raceEnabled: the race detector slows the packet loop and the test's own
// traffic several times, so timing acceptance bounds are only checked
// without it (lower bounds, which no slowdown can break, always are).
const raceEnabled = true
