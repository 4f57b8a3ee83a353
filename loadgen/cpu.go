package loadgen

import (
	"syscall"
	"time"
)

// cpuSeconds is the user+system CPU time this process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0 // cannot fail for RUSAGE_SELF on Linux; 0 reads as "unknown"
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
