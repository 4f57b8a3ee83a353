package loadgen

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The loadgen process's garbage collector. Each request costs the
// generator ~6 KB of garbage (net/http's request, header copies, response,
// the result), and its live heap is small, so at Go's default GOGC=100 a
// loadgen sending 10,000 req/s collects ~24 times a second. Every cycle's
// stop-the-world phases and mark assists fall on requests in flight and
// show in their latency: in BenchmarkOpenLoopVsVegeta the same engine runs
// 4 cycles a second at GOGC=400 and its p99 goes from ~2.1 to ~1.5 ms. The
// soft memory limit keeps the larger target from costing memory when it is
// short: past it the collector runs as often as it must, whatever GOGC.
const (
	loadgenGCPercent = 400
	// memoryShare is the part of the container's (or, without a limit,
	// the machine's) memory the heap may grow to before GC runs harder.
	memoryShare = 0.5
)

// GCPolicy is what TuneGC set; zero fields were left as they were.
type GCPolicy struct {
	Percent     int   // GOGC
	MemoryLimit int64 // bytes
}

// TuneGC sets the process's GC for load generation, unless the operator set
// GOGC or GOMEMLIMIT, which win. A loadgen process calls it once at start.
func TuneGC() GCPolicy {
	p := gcPolicy(os.Getenv, os.ReadFile)
	if p.Percent > 0 {
		debug.SetGCPercent(p.Percent)
	}
	if p.MemoryLimit > 0 {
		debug.SetMemoryLimit(p.MemoryLimit)
	}
	return p
}

// gcPolicy decides TuneGC's settings from the environment and the memory
// files (cgroup v2, v1, then /proc/meminfo).
func gcPolicy(getenv func(string) string, read func(string) ([]byte, error)) GCPolicy {
	var p GCPolicy
	if getenv("GOGC") == "" {
		p.Percent = loadgenGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if mem := memoryBytes(read); mem > 0 {
			p.MemoryLimit = int64(float64(mem) * memoryShare)
		}
	}
	return p
}

// memoryBytes is the memory this process may use: its cgroup's limit, or
// the machine's RAM when the cgroup has none; 0 when unknown.
func memoryBytes(read func(string) ([]byte, error)) int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := read(f)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && n < 1<<60 {
			return n
		}
		break
	}
	b, err := read("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
				return kb << 10
			}
		}
	}
	return 0
}
