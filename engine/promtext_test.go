package engine

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPromSamples(t *testing.T) {
	text := "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n\n" +
		"y_total{result=\"hit\"} 1.5e+06\ny_total{result=\"a b\",node=\"n\"} 2\nno_value\nbroken{ 4\n"
	assert.Equal(t, []promSample{
		{name: "x_total", value: "3"},
		{name: "y_total", labels: `result="hit"`, value: "1.5e+06"},
		{name: "y_total", labels: `result="a b",node="n"`, value: "2"},
	}, slices.Collect(promSamples(text)))

	for _, tc := range []struct {
		labels, want string
		ok           bool
	}{
		{`result="hit"`, "hit", true},
		{`result="hit",node="n"`, "", false},
		{`other="hit"`, "", false},
		{"", "", false},
	} {
		v, ok := promSample{labels: tc.labels}.label("result")
		assert.Equal(t, tc.ok, ok, tc.labels)
		assert.Equal(t, tc.want, v, tc.labels)
	}
}
