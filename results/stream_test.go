package results

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamRecovery(t *testing.T) {
	var series []StreamSecond
	for ts := 0; ts < 40; ts++ {
		acked := uint64(1000)
		switch {
		case ts >= 10 && ts < 14: // the kill at 10.2 s: a dip until 14
			acked = 100
		case ts >= 25: // the kill at 25.5 s: never back
			acked = 0
		}
		series = append(series, StreamSecond{T: ts, Acked: acked})
	}
	kills := []StreamKill{{InjectedAt: 10.2}, {InjectedAt: 18}, {InjectedAt: 25.5}}
	worst := StreamRecovery(series, kills, 0)
	assert.Equal(t, 1000.0, kills[0].BaselinePerS)
	assert.InDelta(t, 3.8, kills[0].RecoveryS, 1e-9, "back at second 14")
	assert.Zero(t, kills[1].RecoveryS, "no dip, nothing to recover from")
	assert.Equal(t, -1.0, kills[2].RecoveryS)
	assert.Equal(t, -1.0, worst)

	s := &Summary{Stream: &Stream{Exact: true, Sentences: 10, Acked: 10, Kills: kills[:1], RecoveryS: StreamRecovery(series, kills[:1], 0)}}
	for name, want := range map[string]float64{"stream_exact": 1, "stream_acked_pct": 100, "stream_kills": 1, "stream_recovery_s": 3.8} {
		v, err := metrics[name](s, "")
		require.NoError(t, err, name)
		assert.InDelta(t, want, v, 1e-9, name)
	}
	_, err := metrics["stream_exact"](&Summary{}, "")
	assert.ErrorContains(t, err, "no stream nodes")
	var md bytes.Buffer
	require.NoError(t, Markdown(&md, s))
	assert.Contains(t, md.String(), "## Stream: word count")
	assert.Contains(t, md.String(), "Final counts exact.")
}

func TestStreamOutages(t *testing.T) {
	var series []StreamSecond
	for ts := 0; ts < 30; ts++ {
		acked := uint64(1000)
		if ts >= 10 && ts < 15 {
			acked = 800
		}
		series = append(series, StreamSecond{T: ts, Acked: acked})
	}
	out := []StreamOutage{{InjectedAt: 9.6, HealedAt: 15.2}}
	StreamOutages(series, out, 0)
	assert.Equal(t, StreamOutage{InjectedAt: 9.6, HealedAt: 15.2, BaselinePerS: 1000, DuringPerS: 800, SharePct: 80}, out[0])
	v, err := metrics["stream_master_down_share_pct"](&Summary{Stream: &Stream{MasterDown: out}}, "")
	require.NoError(t, err)
	assert.Equal(t, 80.0, v)
}

// After an earlier fault the topology acks its backlog faster than the
// source offers sentences; that burst is not the level to get back to.
func TestStreamBaselineCappedAtInput(t *testing.T) {
	var series []StreamSecond
	for ts, acked := range []uint64{1000, 1000, 0, 0, 3000, 2500, 1500, 1000, 1000, 950, 960, 1000} {
		series = append(series, StreamSecond{T: ts, Acked: acked})
	}
	out := []StreamOutage{{InjectedAt: 9, HealedAt: 12}}
	StreamOutages(series, out, 1000)
	assert.Equal(t, 1000.0, out[0].BaselinePerS, "mean of 4..8 is 1800, capped at the input")
	assert.InDelta(t, 97.0, out[0].SharePct, 0.01)
	StreamOutages(series, out, 0)
	assert.Equal(t, 1800.0, out[0].BaselinePerS, "no input rate: the mean")

	kills := []StreamKill{{InjectedAt: 9}}
	StreamRecovery(series, kills, 1000)
	assert.Equal(t, 1000.0, kills[0].BaselinePerS)
	assert.Zero(t, kills[0].RecoveryS, "950 is above 90% of the input: no dip")
}

func TestStreamComponentsSection(t *testing.T) {
	s := &Summary{Stream: &Stream{Exact: true, Components: []StreamComponent{
		{Name: "sentences", Kind: "spout", Tasks: 5, Emitted: 1000, Acked: 990, Failed: 10, Replayed: 10, TuplesPerS: 100, CompleteLatencyMs: 42.5},
		{Name: "count", Kind: "bolt", Tasks: 12, Executed: 7000, Emitted: 7000, TuplesPerS: 700, Capacity: 0.125, CapacityMax: 0.5},
	}}}
	var md bytes.Buffer
	require.NoError(t, Markdown(&md, s))
	assert.Contains(t, md.String(), "## Stream: components")
	assert.Contains(t, md.String(), "| sentences | spout | 5 | 100 | 1000 | 0 | 10 | 10 | 42.5 |  |  |")
	assert.Contains(t, md.String(), "| count | bolt | 12 | 700 | 7000 | 7000 | 0 | 0 |  | 0.125 | 0.500 |")
}

func TestStreamSinkDB(t *testing.T) {
	s := &Summary{Stream: &Stream{Exact: true, SinkDB: &StreamSinkDB{Exact: false, WrongWords: 2}}}
	v, err := metrics["stream_sink_db_exact"](s, "")
	require.NoError(t, err)
	assert.Zero(t, v)
	var md bytes.Buffer
	require.NoError(t, Markdown(&md, s))
	assert.Contains(t, md.String(), "Final counts exact; the db sink holds 2 wrong counts.")
	_, err = metrics["stream_sink_db_exact"](&Summary{Stream: &Stream{}}, "")
	assert.ErrorContains(t, err, "stream.sink: db")
}
