package loadgen

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGCPolicy(t *testing.T) {
	const meminfo = "MemTotal:       24684544 kB\nMemFree:        23970000 kB\n"
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  GCPolicy
	}{
		{"cgroup v2 limit", nil,
			map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n", "/proc/meminfo": meminfo},
			GCPolicy{Percent: 400, MemoryLimit: 512 << 20}},
		{"cgroup v2 without a limit falls back to RAM", nil,
			map[string]string{"/sys/fs/cgroup/memory.max": "max\n", "/proc/meminfo": meminfo},
			GCPolicy{Percent: 400, MemoryLimit: 24684544 << 10 / 2}},
		{"cgroup v1 limit", nil,
			map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n"},
			GCPolicy{Percent: 400, MemoryLimit: 1 << 30}},
		{"cgroup v1 without a limit", nil,
			map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n", "/proc/meminfo": meminfo},
			GCPolicy{Percent: 400, MemoryLimit: 24684544 << 10 / 2}},
		{"memory unknown", nil, nil, GCPolicy{Percent: 400}},
		{"operator's GOGC wins", map[string]string{"GOGC": "100"},
			map[string]string{"/proc/meminfo": meminfo}, GCPolicy{MemoryLimit: 24684544 << 10 / 2}},
		{"operator's GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "1GiB"},
			map[string]string{"/proc/meminfo": meminfo}, GCPolicy{Percent: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			read := func(name string) ([]byte, error) {
				s, ok := tt.files[name]
				if !ok {
					return nil, fs.ErrNotExist
				}
				return []byte(s), nil
			}
			assert.Equal(t, tt.want, gcPolicy(getenv, read))
		})
	}
}
