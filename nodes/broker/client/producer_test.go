package client

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPartitioners(t *testing.T) {
	tests := []struct {
		name   string
		p      Partitioner
		keys   func(i int) []byte
		sticky bool // equal keys, equal partitions
	}{
		{"hash with keys", HashPartitioner(), func(i int) []byte { return []byte(fmt.Sprint("k", i%5)) }, true},
		{"hash without keys", HashPartitioner(), func(int) []byte { return nil }, false},
		{"round robin", RoundRobin(), func(i int) []byte { return []byte(fmt.Sprint("k", i%5)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 4
			counts := make([]int, n)
			byKey := map[string]int{}
			for i := range 400 {
				k := tt.keys(i)
				got := tt.p(k, n)
				assert.GreaterOrEqual(t, got, 0)
				assert.Less(t, got, n)
				counts[got]++
				if tt.sticky {
					if prev, ok := byKey[string(k)]; ok {
						assert.Equal(t, prev, got, "key %s moved", k)
					}
					byKey[string(k)] = got
				}
			}
			if !tt.sticky {
				assert.Equal(t, []int{100, 100, 100, 100}, counts, "even spread")
			}
		})
	}
}
