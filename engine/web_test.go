package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/topology"
)

func TestLeftRotation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const a, b = "10.0.0.11:8080", "10.0.0.12:8080"
	ts := []lb.Transition{
		{Addr: a, To: lb.StateUnchecked, At: at(0)},
		{Addr: b, To: lb.StateUnchecked, At: at(0)},
		{Addr: a, From: lb.StateUnchecked, To: lb.StateUp, At: at(10)},
		{Addr: b, From: lb.StateUnchecked, To: lb.StateUp, At: at(10)},
		{Addr: b, From: lb.StateUp, To: lb.StateDown, At: at(5000)}, // another backend
		{Addr: a, From: lb.StateUp, To: lb.StateEjected, At: at(10300)},
		{Addr: a, From: lb.StateEjected, To: lb.StateUp, At: at(26000)},
		{Addr: a, From: lb.StateUp, To: lb.StateDraining, At: at(40000)},
	}
	for _, tc := range []struct {
		name           string
		backend        string
		killed, healed time.Time
		wantAt         time.Time
		wantBy         string
	}{
		{"ejected during the fault", a, at(10000), at(25000), at(10300), lb.StateEjected},
		{"not during this fault", a, at(27000), at(30000), time.Time{}, ""},
		{"a drain is not a failover", a, at(39000), at(45000), time.Time{}, ""},
		{"already out when the fault began", b, at(6000), at(8000), at(6000), lb.StateDown + " before the kill"},
		{"after the heal does not count", a, at(10000), at(10200), time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, by := leftRotation(ts, tc.backend, tc.killed, tc.healed)
			assert.Equal(t, tc.wantAt, got)
			assert.Equal(t, tc.wantBy, by)
		})
	}
}

func TestLastAnswer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var as []answer
	for i, ms := range []int{9800, 9900, 10000, 10100, 10200, 30000} {
		as = append(as, answer{at: at(ms), sessions: int64(i)})
	}
	o := &failoverObserver{answered: map[string][]answer{"w": as}}
	for _, tc := range []struct {
		name                string
		killed, out, healed time.Time
		wantSilent          time.Time
		wantHeld            int64
	}{
		{"the last answer before the lb's decision", at(10000), at(10500), at(25000), at(10200), 4},
		{"an answer after the decision does not count", at(9950), at(10050), at(25000), at(10000), 2},
		{"never before the kill began", at(10500), at(11000), at(25000), at(10500), 4},
		{"never out: the last answer before the heal", at(10000), time.Time{}, at(25000), at(10200), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			silent, held := o.lastAnswer("w", tc.killed, tc.out, tc.healed)
			assert.Equal(t, tc.wantSilent, silent)
			assert.Equal(t, tc.wantHeld, held)
		})
	}
	silent, held := o.lastAnswer("other", at(10000), at(10500), at(25000))
	assert.Equal(t, at(10000), silent, "no probe answered: from the kill")
	assert.EqualValues(t, -1, held)
}

func TestParseGauge(t *testing.T) {
	text := "# TYPE web_sessions_in_memory gauge\nweb_sessions_in_memory 8\nweb_sessions_in_memory_other 3\n"
	assert.EqualValues(t, 8, parseGauge(text, "web_sessions_in_memory"))
	assert.EqualValues(t, -1, parseGauge("go_goroutines 9\n", "web_sessions_in_memory"))
}

func TestParseCounterByLabel(t *testing.T) {
	text := "# TYPE web_item_reads_total counter\n" +
		"web_item_reads_total{result=\"hit\"} 90\nweb_item_reads_total{result=\"miss\"} 10\n" +
		"web_session_reads_total{result=\"hit\"} 7\nweb_item_reads_total_created 5\n"
	assert.Equal(t, map[string]int64{"hit": 90, "miss": 10}, parseCounterByLabel(text, "web_item_reads_total", "result"))
	assert.Equal(t, map[string]int64{"hit": 7}, parseCounterByLabel(text, "web_session_reads_total", "result"))
}

// A node killed and restarted starts its counters again; what it counted
// before is kept.
func TestCacheObserverKeepsCountsOverRestarts(t *testing.T) {
	o := &cacheObserver{webs: []topology.NodePlan{{Name: "w1", Region: "a"}, {Name: "w2", Region: "a"}, {Name: "w3", Region: "b"}},
		base: map[string]map[string]int64{}, last: map[string]map[string]int64{}}
	o.reading("w1", map[string]int64{"web_item_reads_total/hit": 50, "web_item_reads_total/miss": 5})
	o.reading("w1", map[string]int64{"web_item_reads_total/hit": 80, "web_item_reads_total/miss": 6})
	o.reading("w1", map[string]int64{"web_item_reads_total/hit": 3}) // restarted
	o.reading("w1", map[string]int64{"web_item_reads_total/hit": 10, "web_item_reads_total/miss": 4})
	o.reading("w2", map[string]int64{"web_session_reads_total/hit": 10, "web_session_reads_total/error": 2})
	o.reading("w3", map[string]int64{"web_item_reads_total/store": 40})
	sum := &results.Summary{}
	o.addTo(sum)
	assert.Equal(t, map[string]results.CacheStats{
		"a": {Hits: 100, Misses: 10, Errors: 2, HitRatio: 100.0 / 112},
		"b": {Uncached: 40},
	}, sum.Cache)
}
