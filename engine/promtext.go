package engine

import (
	"iter"
	"strings"
)

// Observers read the nodes' /metrics (Prometheus text exposition) for the
// few samples they need; these split it, and each reader parses the values
// of the samples it uses.

// promSample is one sample line: `name value` or `name{labels} value`.
type promSample struct {
	name   string
	labels string // between the braces, e.g. `component="split"`; "" without
	value  string
}

// promSamples are text's samples; comments, blank lines and lines that are
// not a sample are skipped.
func promSamples(text string) iter.Seq[promSample] {
	return func(yield func(promSample) bool) {
		for line := range strings.Lines(text) {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			if s, ok := splitSample(line); ok && !yield(s) {
				return
			}
		}
	}
}

func splitSample(line string) (promSample, bool) {
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return promSample{}, false
		}
		s := promSample{name: line[:i], labels: line[i+1 : j], value: strings.TrimSpace(line[j+1:])}
		return s, s.value != ""
	}
	name, value, ok := strings.Cut(line, " ")
	return promSample{name: name, value: strings.TrimSpace(value)}, ok
}

// label is the value of s's only label when that label is name.
func (s promSample) label(name string) (string, bool) {
	v, ok := strings.CutPrefix(s.labels, name+`="`)
	if !ok {
		return "", false
	}
	if v, ok = strings.CutSuffix(v, `"`); !ok || strings.Contains(v, `"`) {
		return "", false
	}
	return v, true
}
