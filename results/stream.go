package results

import (
	"fmt"
	"math"
)

// Stream is summary.json's `stream` section: whether word count came out
// exact and how the topology's throughput took each worker kill.
type Stream struct {
	// Exact: every word's final count equals the count computed from the
	// input, and every input sentence was fully processed.
	Exact      bool   `json:"exact"`
	Words      int    `json:"words"`       // distinct words expected
	WrongWords int    `json:"wrong_words"` // words whose final count differs
	Sentences  uint64 `json:"sentences"`   // input sentences over every spout task
	Acked      uint64 `json:"acked"`       // fully processed (the spouts' watermarks)
	// TuplesPerS is the mean of tuples executed per second over the seconds
	// that had input; SentencesPerS likewise for sentences acked.
	TuplesPerS    float64 `json:"tuples_per_s"`
	SentencesPerS float64 `json:"sentences_per_s"`
	// InputPerS is the rate the source offers sentences (0: as fast as the
	// topology takes them). A baseline before a fault is capped at it: the
	// seconds after an earlier fault ack a backlog faster than the input
	// comes, and are not the level to get back to.
	InputPerS float64 `json:"input_per_s,omitempty"`
	Failed    uint64  `json:"failed"`   // sentence trees failed or timed out
	Replayed  uint64  `json:"replayed"` // sentences emitted again
	// RecoveryS is the worst over Kills (-1: one never recovered).
	RecoveryS float64      `json:"recovery_s"`
	Kills     []StreamKill `json:"kills"`
	// MasterDown are the faults that took the master away: workers must
	// go on without it, so the sentences acked meanwhile, as a share of
	// before, should stay near 100%.
	MasterDown []StreamOutage `json:"master_down,omitempty"`
	// SinkDB is set when the sink also writes the counts to the db: whether
	// the db holds exactly the expected counts at the end.
	SinkDB *StreamSinkDB `json:"sink_db,omitempty"`
	// Components are Storm UI's per-component figures over the run.
	Components []StreamComponent `json:"components,omitempty"`
	Series     []StreamSecond    `json:"series"`
}

// StreamSinkDB is what the db sink left in the db.
type StreamSinkDB struct {
	Exact      bool `json:"exact"`
	WrongWords int  `json:"wrong_words"`
}

// StreamComponent is one spout, bolt or sink over all its tasks.
type StreamComponent struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"` // spout, bolt or sink
	Tasks    int    `json:"tasks"`
	Emitted  uint64 `json:"emitted"`
	Executed uint64 `json:"executed"`
	Acked    uint64 `json:"acked,omitempty"` // spouts: messages fully processed
	// Failed: a spout's messages failed or timed out; a bolt's tuples it
	// failed itself.
	Failed   uint64 `json:"failed"`
	Replayed uint64 `json:"replayed,omitempty"`
	// TuplesPerS: tuples executed (a spout's: emitted) per second over the
	// seconds that had input.
	TuplesPerS float64 `json:"tuples_per_s"`
	// CompleteLatencyMs: a spout's mean time from emitting a message to its
	// tree completing.
	CompleteLatencyMs float64 `json:"complete_latency_ms,omitempty"`
	// Capacity: the share of time the component's tasks spent executing,
	// mean and worst second; near 1 it is the bottleneck.
	Capacity    float64 `json:"capacity,omitempty"`
	CapacityMax float64 `json:"capacity_max,omitempty"`
}

// StreamKill is one fault that took stream workers away.
type StreamKill struct {
	Workers    []string `json:"workers"`
	InjectedAt float64  `json:"injected_at"`
	// BaselinePerS is the sentences acked per second over the 5 s before,
	// at most the input rate.
	BaselinePerS float64 `json:"baseline_per_s"`
	// RecoveryS: from injection until a second acked at least
	// StreamRecoveredShare of the baseline again, after the dip the kill
	// caused within 5 s (0: no dip); -1 never within the run.
	RecoveryS float64 `json:"recovery_s"`
}

// StreamOutage is one fault on the master and the throughput during it.
type StreamOutage struct {
	InjectedAt   float64 `json:"injected_at"`
	HealedAt     float64 `json:"healed_at"`
	BaselinePerS float64 `json:"baseline_per_s"`
	DuringPerS   float64 `json:"during_per_s"`
	SharePct     float64 `json:"share_pct"`
}

// StreamOutages fills each outage's figures from the series: the
// baseline (see streamBaseline) and the mean sentences acked per second
// over the outage's whole seconds.
func StreamOutages(series []StreamSecond, outages []StreamOutage, inputPerS float64) {
	acked := ackedBySecond(series)
	for i := range outages {
		o := &outages[i]
		inj, healed := int(math.Ceil(o.InjectedAt)), int(math.Floor(o.HealedAt))
		o.BaselinePerS = streamBaseline(acked, int(math.Floor(o.InjectedAt)), inputPerS)
		sum, n := 0.0, 0
		for t := inj; t < healed; t++ {
			sum += acked[t]
			n++
		}
		if n > 0 {
			o.DuringPerS = sum / float64(n)
		}
		if o.BaselinePerS > 0 {
			o.SharePct = 100 * o.DuringPerS / o.BaselinePerS
		}
	}
}

func ackedBySecond(series []StreamSecond) map[int]float64 {
	acked := map[int]float64{}
	for _, s := range series {
		acked[s.T] = float64(s.Acked)
	}
	return acked
}

// streamBaseline is the level a fault at second inj is judged against:
// the mean sentences acked per second over the 5 s before it, capped at
// the input rate when the source has one.
func streamBaseline(acked map[int]float64, inj int, inputPerS float64) float64 {
	sum, n := 0.0, 0
	for t := inj - 5; t < inj; t++ {
		if v, ok := acked[t]; ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	if mean := sum / float64(n); inputPerS <= 0 || mean < inputPerS {
		return mean
	}
	return inputPerS
}

// StreamSecond is what every worker together did in one second of the run.
type StreamSecond struct {
	T        int    `json:"t"`
	Acked    uint64 `json:"acked"`
	Executed uint64 `json:"executed"`
	Failed   uint64 `json:"failed"`
	Replayed uint64 `json:"replayed"`
}

// StreamRecoveredShare is the share of its pre-kill throughput a topology
// must reach again to count as recovered.
const StreamRecoveredShare = 0.9

// streamDipWindow is how many seconds after a kill its dip may start.
const streamDipWindow = 5

func init() {
	metrics["stream_exact"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil {
			return 0, fmt.Errorf("the run has no stream nodes")
		}
		if s.Stream.Exact {
			return 1, nil
		}
		return 0, nil
	}
	metrics["stream_recovery_s"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil {
			return 0, fmt.Errorf("the run has no stream nodes")
		}
		if s.Stream.RecoveryS < 0 {
			return math.Inf(1), nil
		}
		return s.Stream.RecoveryS, nil
	}
	metrics["stream_acked_pct"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil || s.Stream.Sentences == 0 {
			return 0, fmt.Errorf("the run has no stream input")
		}
		return 100 * float64(s.Stream.Acked) / float64(s.Stream.Sentences), nil
	}
	metrics["stream_sink_db_exact"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil || s.Stream.SinkDB == nil {
			return 0, fmt.Errorf("the stream sink does not write to the db (stream.sink: db)")
		}
		if s.Stream.SinkDB.Exact {
			return 1, nil
		}
		return 0, nil
	}
	metrics["stream_kills"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil {
			return 0, fmt.Errorf("the run has no stream nodes")
		}
		return float64(len(s.Stream.Kills)), nil
	}
	metrics["stream_master_down_share_pct"] = func(s *Summary, _ string) (float64, error) {
		if s.Stream == nil || len(s.Stream.MasterDown) == 0 {
			return 0, fmt.Errorf("no fault took the stream master away")
		}
		worst := math.Inf(1)
		for _, o := range s.Stream.MasterDown {
			worst = math.Min(worst, o.SharePct)
		}
		return worst, nil
	}
	registerSection(50, "stream", streamSections)
}

// StreamRecovery fills each kill's baseline and recovery from the series.
func StreamRecovery(series []StreamSecond, kills []StreamKill, inputPerS float64) (worst float64) {
	acked := ackedBySecond(series)
	last := -1
	if len(series) > 0 {
		last = series[len(series)-1].T
	}
	for i := range kills {
		k := &kills[i]
		inj := int(math.Floor(k.InjectedAt))
		k.BaselinePerS = streamBaseline(acked, inj, inputPerS)
		bar := StreamRecoveredShare * k.BaselinePerS
		k.RecoveryS = 0
		// The dip a kill causes shows within a few seconds (the master's
		// heartbeat timeout); a later one belongs to something else.
		dip := -1
		for t := inj; t <= min(last, inj+streamDipWindow); t++ {
			if acked[t] < bar {
				dip = t
				break
			}
		}
		if dip >= 0 {
			k.RecoveryS = -1
			for t := dip + 1; t <= last; t++ {
				if acked[t] >= bar {
					k.RecoveryS = math.Max(0, float64(t)-k.InjectedAt)
					break
				}
			}
		}
		switch {
		case k.RecoveryS < 0:
			worst = -1
		case worst >= 0 && k.RecoveryS > worst:
			worst = k.RecoveryS
		}
	}
	return worst
}

func streamSections(s *Summary) []Section {
	st := s.Stream
	if st == nil {
		return nil
	}
	verdict := "exact"
	if !st.Exact {
		verdict = fmt.Sprintf("NOT exact: %d of %d words wrong, %d of %d sentences acked", st.WrongWords, st.Words, st.Acked, st.Sentences)
	}
	if sd := st.SinkDB; sd != nil {
		if sd.Exact {
			verdict += "; the db sink holds the same counts"
		} else {
			verdict += fmt.Sprintf("; the db sink holds %d wrong counts", sd.WrongWords)
		}
	}
	sec := Section{
		Title: "Stream: word count",
		Note: fmt.Sprintf("Final counts %s. %s tuples/s and %s sentences/s on average while input lasted; %d sentence trees failed or timed out, %d sentences replayed. "+
			"A kill counts as recovered once a second acks %.0f%% of the sentences a second acked in the 5 s before it (at most the input rate: a backlog drained after an earlier fault is not the level to get back to).",
			verdict, num(st.TuplesPerS), num(st.SentencesPerS), st.Failed, st.Replayed, 100*StreamRecoveredShare),
	}
	if len(st.Kills) > 0 {
		sec.Header = []string{"workers killed", "#at s", "#sentences/s before", "#recovered after s"}
		for _, k := range st.Kills {
			sec.Rows = append(sec.Rows, Row{Bad: k.RecoveryS < 0, Cells: []string{
				fmt.Sprint(k.Workers), secs(k.InjectedAt), num(k.BaselinePerS), orNever(k.RecoveryS)}})
		}
	}
	out := []Section{sec}
	if len(st.Components) > 0 {
		cs := Section{Title: "Stream: components",
			Note:   "Per component over all its tasks, as Storm's UI shows them. Capacity is the share of time its tasks spent executing (mean and worst second); near 1 the component is the bottleneck.",
			Header: []string{"component", "kind", "#tasks", "#tuples/s", "#emitted", "#executed", "#failed", "#replayed", "#complete latency ms", "#capacity", "#capacity max"}}
		for _, c := range st.Components {
			latency, capacity, capacityMax := "", "", ""
			if c.Kind == "spout" {
				latency = fmt.Sprintf("%.1f", c.CompleteLatencyMs)
			} else {
				capacity, capacityMax = fmt.Sprintf("%.3f", c.Capacity), fmt.Sprintf("%.3f", c.CapacityMax)
			}
			cs.Rows = append(cs.Rows, Row{Cells: []string{c.Name, c.Kind, fmt.Sprint(c.Tasks), num(c.TuplesPerS),
				fmt.Sprint(c.Emitted), fmt.Sprint(c.Executed), fmt.Sprint(c.Failed), fmt.Sprint(c.Replayed), latency, capacity, capacityMax}})
		}
		out = append(out, cs)
	}
	if len(st.MasterDown) > 0 {
		md := Section{Title: "Stream: master down", Note: "The workers must go on without their master; its state lives in the db.",
			Header: []string{"#from s", "#to s", "#sentences/s before", "#sentences/s while down", "#share"}}
		for _, o := range st.MasterDown {
			md.Rows = append(md.Rows, Row{Bad: o.SharePct < 100*StreamRecoveredShare, Cells: []string{
				secs(o.InjectedAt), secs(o.HealedAt), num(o.BaselinePerS), num(o.DuringPerS), fmt.Sprintf("%.0f%%", o.SharePct)}})
		}
		out = append(out, md)
	}
	return out
}
