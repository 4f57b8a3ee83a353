package results

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	brokercheck "github.com/faultline/faultline/checkers/broker"
)

// The broker section's check metrics. Each fails on a run without a
// broker section, so a check cannot pass because the workloads never ran.
func init() {
	bm := func(get func(b *brokercheck.Summary) (float64, error)) metricFunc {
		return func(s *Summary, _ string) (float64, error) {
			if s.Broker == nil {
				return 0, errors.New("the run has no broker section (no broker history workload ran)")
			}
			return get(s.Broker)
		}
	}
	count := func(get func(b *brokercheck.Summary) int) metricFunc {
		return bm(func(b *brokercheck.Summary) (float64, error) { return float64(get(b)), nil })
	}
	metrics["broker_acked"] = count(func(b *brokercheck.Summary) int { return b.Acked })
	// broker_lost counts acknowledged messages some consumer's final drain
	// never saw; a consumer that could not drain at all loses everything.
	metrics["broker_lost"] = bm(func(b *brokercheck.Summary) (float64, error) {
		if len(b.Consumers) == 0 {
			return 0, errors.New("no broker-consume workload ran")
		}
		return float64(b.Lost), nil
	})
	metrics["broker_duplicates"] = count(func(b *brokercheck.Summary) int { return b.Duplicate })
	metrics["broker_reordered"] = count(func(b *brokercheck.Summary) int { return b.Reordered })
	metrics["broker_late_unacked"] = count(func(b *brokercheck.Summary) int { return b.LateUnacked })
	metrics["broker_above_hw"] = count(func(b *brokercheck.Summary) int { return b.AboveHW })
	metrics["broker_failovers"] = count(func(b *brokercheck.Summary) int { return len(b.Failovers) })
	failover := func(get func(b *brokercheck.Summary) float64) metricFunc {
		return bm(func(b *brokercheck.Summary) (float64, error) {
			if len(b.Failovers) == 0 {
				return 0, errors.New("no partition leader was killed")
			}
			if b.Unrecovered > 0 { // a failover that never ended is infinitely long
				return math.Inf(1), nil
			}
			return get(b), nil
		})
	}
	metrics["broker_failover_p50_s"] = failover(func(b *brokercheck.Summary) float64 { return b.FailoverS.P50 })
	metrics["broker_failover_max_s"] = failover(func(b *brokercheck.Summary) float64 { return b.FailoverS.Max })
	lag := func(get func(l brokercheck.MirrorLag) float64) metricFunc {
		return bm(func(b *brokercheck.Summary) (float64, error) {
			if b.MirrorLagMS.Samples == 0 {
				return 0, errors.New("no mirror lag was sampled (no mirror ran)")
			}
			return get(b.MirrorLagMS), nil
		})
	}
	metrics["mirror_lag_p50_ms"] = lag(func(l brokercheck.MirrorLag) float64 { return l.P50 })
	metrics["mirror_lag_max_ms"] = lag(func(l brokercheck.MirrorLag) float64 { return l.Max })
	// mirror_lag_final_ms is the last sample, after the consumers' drain:
	// whether the mirror caught up once its link was back.
	metrics["mirror_lag_final_ms"] = lag(func(l brokercheck.MirrorLag) float64 { return l.Final })
	// broker_cutoff_acked is the most publishes a cut-off region had
	// acknowledged while cut off: above 0 is split brain with acks=all.
	cut := func(get func(c brokercheck.CutOff) int, most bool) metricFunc {
		return bm(func(b *brokercheck.Summary) (float64, error) {
			if len(b.CutOffs) == 0 {
				return 0, errors.New("no region with producers was cut off")
			}
			v := get(b.CutOffs[0])
			for _, c := range b.CutOffs[1:] {
				if most {
					v = max(v, get(c))
				} else {
					v = min(v, get(c))
				}
			}
			return float64(v), nil
		})
	}
	metrics["broker_cutoff_acked"] = cut(func(c brokercheck.CutOff) int { return c.Acked }, true)
	// broker_cutoff_others_acked is the fewest publishes the rest of the
	// cluster had acknowledged during a cut: the majority side goes on.
	metrics["broker_cutoff_others_acked"] = cut(func(c brokercheck.CutOff) int { return c.OthersAcked }, false)
	registerSection(32, "broker", brokerSections)
}

func brokerSections(s *Summary) []Section {
	b := s.Broker
	if b == nil {
		return nil
	}
	head := Section{Title: "Broker", Header: []string{"figure", "value", "detail"}}
	if len(b.Unsafe) > 0 {
		head.Note = "Unsafe switches on: " + strings.Join(b.Unsafe, ", ") + " — this run is meant to show the checkers catching the damage."
	}
	add := func(bad bool, cells ...string) { head.Rows = append(head.Rows, Row{Cells: cells, Bad: bad}) }
	add(false, "acknowledged publishes", strconv.Itoa(b.Acked), fmt.Sprintf("acks=%s; %d publishes failed or timed out (unknown outcome)", b.Acks, b.Unacked))
	lost := "acknowledged but not in some consumer's final read of every partition from offset 0"
	if len(b.LostSample) > 0 {
		lost += "; e.g. " + strings.Join(b.LostSample, ", ")
	}
	add(b.Lost > 0, "lost", strconv.Itoa(b.Lost), lost)
	add(false, "duplicates", strconv.Itoa(b.Duplicate), "the same message at two offsets (a retried batch: delivery is at least once)")
	add(b.Reordered > 0, "reordered", strconv.Itoa(b.Reordered), "a key's message after a later one of the same key, in one partition")
	add(false, "late unacknowledged", strconv.Itoa(b.LateUnacked), "a publish that failed or timed out landed after a later message of its key (legal: its outcome was never reported)")
	add(b.AboveHW > 0, "reads above the high watermark", strconv.Itoa(b.AboveHW), "records a fetch returned at or above the high watermark it reported")
	if len(b.Failovers) > 0 {
		var per []string
		for _, f := range b.Failovers {
			v := "never"
			if f.S >= 0 {
				v = num(f.S)
			}
			per = append(per, fmt.Sprintf("p%d %s", f.Partition, v))
		}
		add(b.Unrecovered > 0, "failover s: p50 / max", num(b.FailoverS.P50)+" / "+num(b.FailoverS.Max),
			fmt.Sprintf("leader killed → first publish to its partition acknowledged; %d partitions, %d never again: %s", len(b.Failovers), b.Unrecovered, strings.Join(per, ", ")))
	}
	if l := b.MirrorLagMS; l.Samples > 0 {
		add(false, "mirror lag ms: p50 / max / final", num(l.P50)+" / "+num(l.Max)+" / "+num(l.Final),
			fmt.Sprintf("%d samples; the max at t=%s s (marked on the time axis)", l.Samples, num(l.MaxAtS)))
	}
	out := []Section{head}
	if len(b.CutOffs) > 0 {
		cs := Section{Title: "Broker: regions cut off", Note: "Publishes called after the cut and answered before the heal. With acks=all, a cut-off region's brokers cannot commit alone: an acknowledgement there would be split brain.",
			Header: []string{"region", "#from s", "#to s", "#acked there", "#failed there", "#acked elsewhere"}}
		for _, c := range b.CutOffs {
			cs.Rows = append(cs.Rows, Row{Bad: c.Acked > 0, Cells: []string{c.Region, num(c.FromS), num(c.ToS),
				strconv.Itoa(c.Acked), strconv.Itoa(c.Failed), strconv.Itoa(c.OthersAcked)}})
		}
		out = append(out, cs)
	}
	if len(b.Consumers) > 0 {
		cs := Section{Title: "Broker: consumers' final drain", Header: []string{"consumer", "#consumed", "#lost", "#duplicates", "#reordered"}}
		for _, c := range b.Consumers {
			cs.Rows = append(cs.Rows, Row{Bad: c.Lost > 0 || c.Reordered > 0 || !c.Drained, Cells: []string{c.Name,
				strconv.Itoa(c.Consumed), strconv.Itoa(c.Lost), strconv.Itoa(c.Duplicates), strconv.Itoa(c.Reordered)}})
		}
		out = append(out, cs)
	}
	if l := b.MirrorLagMS; len(l.Series) > 0 {
		ms := Section{Title: "Mirror lag over time", Note: "How far behind its source cluster the mirror's copy was (ms), one sample per second shown.",
			Header: []string{"#t s", "#lag ms", "bar"}}
		lastT := -1
		for _, p := range l.Series {
			if int(p.T) == lastT {
				continue
			}
			lastT = int(p.T)
			bar := strings.Repeat("█", min(60, int(math.Ceil(p.MS/math.Max(l.Max, 1)*60))))
			ms.Rows = append(ms.Rows, Row{Cells: []string{strconv.Itoa(lastT), num(p.MS), bar}})
		}
		out = append(out, ms)
	}
	return out
}
