package broker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/broker/client"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    Options
		wantErr string
	}{
		{"defaults", nil, Options{Acks: client.AcksAll, Partitions: 6}, ""},
		{"everything", map[string]string{"acks": "1", "partitions": "3", "replication": "3", "min_insync": "2", "bootstrap": "local"},
			Options{Acks: client.AcksLeader, Partitions: 3, ReplicationFactor: 3, MinISR: 2, LocalOnly: true}, ""},
		{"acks 0", map[string]string{"acks": "0"}, Options{Acks: client.AcksNone, Partitions: 6}, ""},
		{"unknown key", map[string]string{"ack": "1"}, Options{}, `option "ack": unknown`},
		{"bad acks", map[string]string{"acks": "2"}, Options{}, "want all, 1 or 0"},
		{"no partitions", map[string]string{"partitions": "0"}, Options{}, "option partitions"},
		{"min above replication", map[string]string{"replication": "2", "min_insync": "3"}, Options{}, "above replication"},
		{"bad bootstrap", map[string]string{"bootstrap": "near"}, Options{}, "want local or all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestValueRoundTrip(t *testing.T) {
	k, s, ok := ParseValue(Value("us-east/3", 42))
	assert.True(t, ok)
	assert.Equal(t, "us-east/3", k)
	assert.Equal(t, int64(42), s)
	_, _, ok = ParseValue([]byte("no number"))
	assert.False(t, ok)
}

func TestSpecAddrs(t *testing.T) {
	spec := loadgen.HistorySpec{Local: []string{"http://10.0.1.10:8080"}, Remote: []string{"http://10.0.2.10:8080"}}
	all, err := specAddrs(spec, Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.1.10:9092", "10.0.2.10:9092"}, all)
	local, err := specAddrs(spec, Options{LocalOnly: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.1.10:9092"}, local)
}
