package loadgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadStream(t *testing.T) {
	h := NewHistogram()
	require.NoError(t, h.RecordValue(1500))
	line := func(m Message) string {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b) + "\n"
	}
	bucket := line(Message{Bucket: &Bucket{Second: 7, Requests: 1, Latency: compact(h.Export())}})
	badHist := NewHistogram().Export()
	badHist.Counts = []int64{-5}

	tests := []struct {
		name      string
		stream    string
		buckets   int
		final     Final
		wantError string
	}{
		{"bucket then final", bucket + line(Message{Final: &Final{Requests: 1}}), 1, Final{Requests: 1}, ""},
		{"remote error", line(Message{Final: &Final{Requests: 3, Error: "stopped early"}}), 0, Final{Requests: 3, Error: "stopped early"}, "remote: stopped early"},
		{"cut off", bucket, 1, Final{}, "unexpected EOF"},
		{"empty", "", 0, Final{}, "unexpected EOF"},
		{"garbage", "nope\n", 0, Final{}, "invalid character"},
		{"empty message", "{}\n", 0, Final{}, "neither"},
		{"bad histogram", line(Message{Bucket: &Bucket{Second: 1, Latency: badHist}}), 0, Final{}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Bucket
			final, err := readStream(strings.NewReader(tt.stream), func(b Bucket) { got = append(got, b) })
			assert.Len(t, got, tt.buckets)
			assert.Equal(t, tt.final, final)
			if tt.wantError == "" {
				require.NoError(t, err)
				var tot Totals
				require.NoError(t, tot.Add(got[0]))
				assert.InEpsilon(t, 1500, tot.Latency.Max(), 0.001)
				return
			}
			require.ErrorContains(t, err, tt.wantError)
		})
	}
}

func FuzzReadStream(f *testing.F) {
	f.Add([]byte(`{"Bucket":{"Second":1,"Requests":2,"Errors":1,"ErrorsByKind":{"5xx":1},"Latency":{"LowestTrackableValue":1,"HighestTrackableValue":60000000,"SignificantFigures":3,"Counts":[0,1,1]}}}` + "\n" + `{"Final":{"Requests":2}}`))
	f.Add([]byte(`{"Final":{"Error":"x"}}`))
	f.Add([]byte(`{"Bucket":{"Latency":{"SignificantFigures":9}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever arrives, every bucket handed on must merge cleanly.
		var tot Totals
		_, _ = readStream(bytes.NewReader(data), func(b Bucket) {
			if err := tot.Add(b); err != nil && !strings.Contains(err.Error(), "outside the histogram range") {
				t.Fatalf("validated bucket failed to merge: %v", err)
			}
		})
	})
}

func FuzzSpecJSON(f *testing.F) {
	f.Add([]byte(`{"Target":"http://127.0.0.1:8080","Workload":"api","Rate":100,"Duration":1000000000}`))
	f.Add([]byte(`{"Target":"http://[::1]:1","Workload":"browse","Rate":0.5,"Duration":1,"Timeout":-1}`))
	f.Add([]byte(`{"Target":"http://127.0.0.1:1","Workload":"api","Ramp":{"From":100,"To":0},"Duration":3000000000}`))
	f.Add([]byte(`{"Target":"http://127.0.0.1:1","Workload":"api","Step":{"From":1,"By":2,"Max":9,"Every":100000000},"Duration":3000000000}`))
	f.Add([]byte(`{"Target":"http://h:1","Workload":"session","Users":{"N":3,"Think":1000},"Duration":1000}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s AttackSpec
		if json.Unmarshal(data, &s) != nil || s.Validate() != nil {
			return
		}
		if s.timeout() <= 0 || s.Duration > MaxDuration {
			t.Fatalf("valid spec %+v: timeout %v", s, s.timeout())
		}
		if s.Users != nil {
			return
		}
		// A valid open spec always yields a sane schedule: increasing due
		// times, all within the duration.
		sched, err := s.schedule()
		if err != nil || sched.total() == 0 {
			t.Fatalf("valid spec %+v: schedule %v, %v", s, sched, err)
		}
		n := sched.total()
		prev := time.Duration(-1)
		for _, i := range []uint64{0, 1, n / 2, n - 1} {
			if i >= n {
				continue
			}
			due := sched.due(i)
			if due < prev || due <= 0 || due > s.Duration+time.Millisecond {
				t.Fatalf("valid spec %+v: due(%d) = %v after %v", s, i, due, prev)
			}
			prev = due
		}
	})
}
