package topology

import (
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

// Stream shapes the word-count topology the stream nodes run: how many
// sentences each of its spout tasks reads, how fast its source produces
// them and how often a bolt fails a tuple on purpose (to exercise replay).
// The first stream node of the topology is the master (Storm's Nimbus);
// every other stream node is a worker (a supervisor).
type Stream struct {
	SentencesPerSpout uint64
	Rate              float64 // new sentences a second per spout task; 0: unbounded
	FailRate          float64
	// StateInDB keeps the master's assignment and the tasks' checkpoints in
	// the topology's db instead of the master's memory.
	StateInDB bool
	// FromBroker makes the spouts read a topic on the topology's brokers,
	// which a feeder node fills, instead of generating their sentences.
	FromBroker bool
	// Sink is where the sink also writes the counts: "" (only its state),
	// "console" (the workers' stdout) or "db" (a key per word in the
	// topology's db).
	Sink string
}

// maxSentences keeps the expected counts computable in a moment.
const maxSentences = 100_000_000

func decodeStream(d *yamlx.Decoder, n *yaml.Node, path string) Stream {
	var out Stream
	if n == nil {
		return out
	}
	m, ok := d.Mapping(n, path, "sentences_per_spout", "rate", "fail_rate", "state", "source", "sink")
	if !ok {
		return out
	}
	if vn := m["sentences_per_spout"]; vn != nil {
		if v, ok := d.Int(vn, yamlx.Field(path, "sentences_per_spout")); ok {
			if v < 1 || v > maxSentences {
				d.Errorf(vn, yamlx.Field(path, "sentences_per_spout"), "must be between 1 and %d, got %d", maxSentences, v)
			}
			out.SentencesPerSpout = uint64(max(v, 0))
		}
	}
	if vn := m["rate"]; vn != nil {
		if v, ok := d.Float(vn, yamlx.Field(path, "rate")); ok {
			if v < 0 || v > 1e7 {
				d.Errorf(vn, yamlx.Field(path, "rate"), "must be between 0 and 10000000, got %v", v)
			}
			out.Rate = v
		}
	}
	if vn := m["fail_rate"]; vn != nil {
		if v, ok := d.Float(vn, yamlx.Field(path, "fail_rate")); ok {
			if v < 0 || v >= 1 {
				d.Errorf(vn, yamlx.Field(path, "fail_rate"), "must be in [0, 1), got %v", v)
			}
			out.FailRate = v
		}
	}
	if vn := m["state"]; vn != nil {
		if v, ok := d.String(vn, yamlx.Field(path, "state")); ok {
			switch v {
			case "memory":
			case "db":
				out.StateInDB = true
			default:
				d.Errorf(vn, yamlx.Field(path, "state"), `must be "memory" (the master's) or "db" (the topology's db nodes), got %q`, v)
			}
		}
	}
	if vn := m["source"]; vn != nil {
		if v, ok := d.String(vn, yamlx.Field(path, "source")); ok {
			switch v {
			case "generator":
			case "broker":
				out.FromBroker = true
			default:
				d.Errorf(vn, yamlx.Field(path, "source"), `must be "generator" (sentences made by the spouts) or "broker" (a topic on the topology's brokers), got %q`, v)
			}
		}
	}
	if vn := m["sink"]; vn != nil {
		if v, ok := d.String(vn, yamlx.Field(path, "sink")); ok {
			switch v {
			case "none":
			case "console", "db":
				out.Sink = v
			default:
				d.Errorf(vn, yamlx.Field(path, "sink"), `must be "none", "console" (the workers' output) or "db" (a key per word in the topology's db), got %q`, v)
			}
		}
	}
	return out
}
