package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/scenarios"
)

// Files in a run folder from which its reports can be rebuilt.
const (
	// ScenarioFile is the scenario as played: topology inline, every
	// default spelled out, the seed used. Running it again replays the run.
	ScenarioFile = "scenario.yaml"
	// RawLoadFile holds every bucket the loadgens streamed, as received.
	RawLoadFile = "raw/loadgen.jsonl"
)

// rawBucket is one line of RawLoadFile.
type rawBucket struct {
	Region string         `json:"region"`
	Bucket loadgen.Bucket `json:"bucket"`
}

// rawLog appends buckets to RawLoadFile as they arrive, so even an aborted
// run keeps what was measured.
type rawLog struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

func openRawLog(dir string) (*rawLog, error) {
	path := filepath.Join(dir, RawLoadFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	return &rawLog{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (l *rawLog) add(region string, b loadgen.Bucket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.enc.Encode(rawBucket{Region: region, Bucket: b})
	}
}

func (l *rawLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.err, l.w.Flush(), l.f.Close())
}

func writeScenario(dir string, sc *scenarios.Scenario) error {
	data, err := yaml.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode scenario: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ScenarioFile), data, 0o644)
}

// Rebuild recomputes a run's per-region figures, recovery and checks from
// the raw data in its folder (scenario.yaml and raw/loadgen.jsonl; what
// happened during the run — faults, start-up, capacity — comes from its
// summary.json) and rewrites summary.json and every report. It is how a
// report is regenerated after the reporting code changed.
func Rebuild(dir string, opts scenarios.Options) (*results.Summary, error) {
	old, err := results.ReadSummary(dir)
	if err != nil {
		return nil, err
	}
	sc, err := scenarios.Load(filepath.Join(dir, ScenarioFile), opts)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, RawLoadFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec := results.NewRecorder(old.StartedAt)
	for region := range old.Regions {
		rec.EnsureRegion(region)
	}
	dec := json.NewDecoder(f)
	for line := 1; ; line++ {
		var rb rawBucket
		if err := dec.Decode(&rb); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", filepath.Join(dir, RawLoadFile), line, err)
		}
		if err := rec.AddBucket(rb.Region, rb.Bucket); err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", filepath.Join(dir, RawLoadFile), line, err)
		}
	}
	s := *old
	s.Total = results.Totals{}
	r := &run{sc: sc, sum: &s, rec: rec}
	r.summarize()
	if old.Error != "" {
		s.Verdict = results.VerdictFail
	}
	if err := results.WriteSummary(dir, &s); err != nil {
		return nil, err
	}
	return &s, results.WriteReports(dir, &s)
}
