package nodekit

import "time"

// Generous bounds: they only cap a wait for something that must happen, so a
// loaded machine makes the test slower, never red.
const (
	testWait  = 10 * time.Second
	pollEvery = 5 * time.Millisecond
)
