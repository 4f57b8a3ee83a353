package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestComponentMetric(t *testing.T) {
	for _, tc := range []struct {
		line, metric, comp string
		ok                 bool
	}{
		{`stream_component_executed_total{component="split"}`, "executed_total", "split", true},
		{`stream_component_busy_seconds_total{component="count"}`, "busy_seconds_total", "count", true},
		{`stream_executed_total`, "", "", false},
		{`stream_component_executed_total`, "", "", false},
		{`stream_component_executed_total{other="x"}`, "", "", false},
	} {
		s, _ := splitSample(tc.line + " 1")
		metric, comp, ok := componentMetric(s)
		assert.Equal(t, tc.ok, ok, tc.line)
		if tc.ok {
			assert.Equal(t, tc.metric, metric, tc.line)
			assert.Equal(t, tc.comp, comp, tc.line)
		}
	}
}

// A counter that went down belongs to a restarted worker: what it shows
// is all new.
func TestCompStatsSince(t *testing.T) {
	prev := compStats{emitted: 100, executed: 50, busy: 2}
	assert.Equal(t, compStats{emitted: 20, executed: 10, busy: 0.5}, compStats{emitted: 120, executed: 60, busy: 2.5}.since(prev))
	assert.Equal(t, compStats{emitted: 7, executed: 3, busy: 0.1}, compStats{emitted: 7, executed: 3, busy: 0.1}.since(prev))
}
