package results

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// steady is a region at 100 requests/s with a 10 ms p99 for n seconds; the
// given seconds are overridden.
func steady(n int, override map[int]Second) Region {
	r := Region{}
	for t := range n {
		pt := Second{T: t, RPS: 100, P50: 4, P99: 10}
		if o, ok := override[t]; ok {
			o.T = t
			pt = o
		}
		r.Series = append(r.Series, pt)
	}
	return r
}

func failing(errors int64) Second { return Second{RPS: 100, Errors: errors, P50: 4, P99: 10} }
func slow(p99 float64) Second     { return Second{RPS: 100, P50: 4, P99: p99} }

func TestComputeRecovery(t *testing.T) {
	kill := Fault{Kind: "kill", Targets: []string{"web-a-1"}, InjectedAt: 10, HealedAt: 20}
	tests := []struct {
		name    string
		fault   Fault
		regions map[string]Region
		want    Recovery // Fault and Kind are filled in by the test
	}{
		{"errors for three seconds", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: failing(50), 12: failing(5)})},
			Recovery{DetectS: 0, RecoverS: 3, UnavailableS: 3}},
		{"p99 lingers after the errors stop", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: failing(50), 12: slow(200), 13: slow(90)})},
			Recovery{DetectS: 0, RecoverS: 4, UnavailableS: 4}},
		{"p99 within baseline + 50 ms counts as recovered", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: slow(59)})},
			Recovery{DetectS: 0, RecoverS: 1, UnavailableS: 1}},
		{"errors under the bound count as recovered", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: failing(1)})},
			Recovery{DetectS: 0, RecoverS: 1, UnavailableS: 1}},
		{"one lucky second does not count", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 12: failing(50)})},
			Recovery{DetectS: 0, RecoverS: 3, UnavailableS: 3}},
		{"silence is not health", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: {}, 12: {}})},
			Recovery{DetectS: 0, RecoverS: 3, UnavailableS: 3}},
		{"detected late, injected mid-second", Fault{Kind: "pause", InjectedAt: 10.4, HealedAt: 15},
			map[string]Region{"a": steady(30, map[int]Second{12: failing(30), 13: failing(30)})},
			Recovery{DetectS: 1.6, RecoverS: 3.6, UnavailableS: 2}},
		{"the slowest region decides", kill,
			map[string]Region{
				"a": steady(30, map[int]Second{10: failing(50)}),
				"b": steady(30, map[int]Second{10: failing(50), 11: failing(50), 12: failing(50), 13: slow(500)}),
			},
			Recovery{DetectS: 0, RecoverS: 4, UnavailableS: 4}},
		{"slow baseline: 2× is the limit", kill,
			map[string]Region{"a": func() Region {
				r := steady(30, map[int]Second{10: failing(50), 11: slow(390)})
				for i := range r.Series {
					if i != 11 {
						r.Series[i].P99 = 200
					}
				}
				return r
			}()},
			Recovery{DetectS: 0, RecoverS: 1, UnavailableS: 1}},
		{"a later failure does not undo a recovery", kill,
			map[string]Region{"a": steady(30, map[int]Second{10: failing(50), 11: failing(50), 29: failing(50)})},
			Recovery{DetectS: 0, RecoverS: 2, UnavailableS: 2}},
		{"still failing when the run ends", kill,
			map[string]Region{"a": func() Region {
				o := map[int]Second{}
				for t := 10; t < 30; t++ {
					o[t] = failing(50)
				}
				return steady(30, o)
			}()},
			Recovery{DetectS: 0, RecoverS: -1, UnavailableS: 20}},
		{"unnoticed", kill, map[string]Region{"a": steady(30, nil)}, Recovery{DetectS: -1}},
		{"never injected (run ended first)", Fault{Kind: "kill"},
			map[string]Region{"a": steady(30, map[int]Second{3: failing(50)})}, Recovery{DetectS: -1}},
		{"errors before the fault do not count", kill,
			map[string]Region{"a": steady(30, map[int]Second{5: failing(50)})}, Recovery{DetectS: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ComputeRecovery([]Fault{tc.fault}, tc.regions, RecoveryBound)
			tc.want.Fault, tc.want.Kind = faultLabel(tc.fault), tc.fault.Kind
			assert.Equal(t, []Recovery{tc.want}, got)
		})
	}
}

func TestBaselineP99(t *testing.T) {
	// Seconds 0..9 end before the fault at 10.5; second 10 contains it.
	r := steady(20, map[int]Second{0: {}, 1: slow(30), 2: slow(12), 10: slow(900)})
	got := BaselineP99([]Fault{{Kind: "kill", InjectedAt: 10.5, HealedAt: 12}}, map[string]Region{"a": r, "idle": {}})
	// p99s of seconds 1..9 (second 0 had no traffic): 30, 12, 10×7 → median 10.
	assert.Equal(t, map[string]float64{"a": 10}, got)
	assert.Nil(t, BaselineP99(nil, map[string]Region{"a": r}), "no fault, no baseline")
	assert.Nil(t, BaselineP99([]Fault{{Kind: "kill", InjectedAt: 0.3, HealedAt: 5}}, map[string]Region{"a": r}), "no second before the fault")
}

func TestSummarizeRecovery(t *testing.T) {
	recs := []Recovery{
		{Kind: "kill", DetectS: 0.2, RecoverS: 2, UnavailableS: 1.8},
		{Kind: "pause", DetectS: 1, RecoverS: 5, UnavailableS: 4},
		{Kind: "kill", DetectS: 0.6, RecoverS: 6, UnavailableS: 5.4},
		{Kind: "kill", DetectS: 0.4, RecoverS: 4, UnavailableS: 3.6},
		{Kind: "kill", DetectS: 1, RecoverS: -1, UnavailableS: 9},
		{Kind: "kill", DetectS: -1},
		{Fault: "partition a|b", DetectS: 0, RecoverS: 1, UnavailableS: 1}, // written before Kind existed
	}
	got := SummarizeRecovery(recs)
	assert.Equal(t, []RecoveryStat{
		{Kind: "kill", Count: 5, Unnoticed: 1, NeverRecovered: 1, DetectP50S: 0.5, DetectMaxS: 1,
			RecoverP50S: 4, RecoverMaxS: 6, UnavailP50S: 4.5, UnavailMaxS: 9},
		{Kind: "pause", Count: 1, DetectP50S: 1, DetectMaxS: 1, RecoverP50S: 5, RecoverMaxS: 5, UnavailP50S: 4, UnavailMaxS: 4},
		{Kind: "partition", Count: 1, RecoverP50S: 1, RecoverMaxS: 1, UnavailP50S: 1, UnavailMaxS: 1},
	}, got)
}
