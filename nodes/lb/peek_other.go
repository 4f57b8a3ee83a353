//go:build !unix

package lb

// peekIdle cannot look without blocking here: an idle connection the
// backend closed shows as a failed request, retried when replayable.
func peekIdle(fd uintptr, buf []byte) bool { return true }
