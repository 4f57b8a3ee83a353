package stats

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOf(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // reversed: Of must sort
	}
	tests := []struct {
		name string
		in   []float64
		want Quantiles
	}{
		{"empty", nil, Quantiles{}},
		{"one", []float64{7}, Quantiles{Count: 1, P50: 7, P99: 7, Max: 7}},
		{"two", []float64{9, 1}, Quantiles{Count: 2, P50: 1, P99: 9, Max: 9}},
		{"1..100", hundred, Quantiles{Count: 100, P50: 50, P99: 99, Max: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Of(tt.in))
		})
	}
	assert.Equal(t, float64(100), hundred[0], "input left alone")
}
